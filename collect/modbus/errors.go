package modbus

import (
	"errors"
	"fmt"
)

// Sentinel errors of this package.
var (
	// ErrConfig is wrapped by configuration problems found at run time.
	ErrConfig = errors.New("modbus: invalid configuration")
	// ErrMalformed is wrapped when a device reply has the wrong size or shape.
	ErrMalformed = errors.New("modbus: malformed reply")
	// ErrVerify is wrapped when a read-back after a write shows another value.
	ErrVerify = errors.New("modbus: read-back verification failed")
)

// ExceptionError is a Modbus exception reply from a device.
type ExceptionError struct {
	Unit     uint8
	Function uint8
	Address  uint16
	Quantity uint16
	Code     uint8 // 1 illegal function, 2 illegal data address, 3 illegal data value, 4 device failure, 6 busy, ...
}

// Error implements error.
func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus: unit %d function %d address %d quantity %d: exception %d (%s)",
		e.Unit, e.Function, e.Address, e.Quantity, e.Code, exceptionName(e.Code))
}

// Exception codes with special handling.
const (
	ExceptionIllegalFunction    = 1
	ExceptionIllegalDataAddress = 2
	ExceptionIllegalDataValue   = 3
	ExceptionDeviceFailure      = 4
	ExceptionBusy               = 6
)

func exceptionName(c uint8) string {
	switch c {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 10:
		return "gateway path unavailable"
	case 11:
		return "gateway target device failed to respond"
	}
	return "unknown"
}
