package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	gx "github.com/grid-x/modbus"
)

// link is one physical connection served by one worker goroutine. It is a
// grid-x/modbus client plus the handler's unit selection and Close.
type link interface {
	gx.Client
	setUnit(id uint8)
	Close() error
	// closeOnTimeout reports whether a timed-out request leaves the
	// stream unusable (RTU framing has no transaction id to resync on).
	closeOnTimeout() bool
}

type slaveCloser interface {
	SetSlave(byte)
	Close() error
}

type gridLink struct {
	gx.Client
	h        slaveCloser
	rtuFrame bool
}

func (g *gridLink) setUnit(id uint8)     { g.h.SetSlave(id) }
func (g *gridLink) Close() error         { return g.h.Close() }
func (g *gridLink) closeOnTimeout() bool { return g.rtuFrame }

// newLink builds the grid-x/modbus client for the configured transport.
// It does not connect: the first request dials.
func newLink(c *Config) (link, error) {
	dial := (&net.Dialer{Timeout: c.Timeout}).DialContext
	idle := max(time.Minute, 3*c.Interval)
	switch c.Transport {
	case TransportTCP:
		var opts []gx.TCPClientHandlerOption
		if c.TLS != nil {
			tc, err := c.TLS.tlsConfig(c.Address)
			if err != nil {
				return nil, err
			}
			opts = append(opts, gx.WithTLSConfig(tc))
		}
		h := gx.NewTCPClientHandler(c.Address, opts...)
		h.Timeout = c.Timeout
		h.IdleTimeout = idle
		h.Dial = dial
		if c.RecoveryTimeout > 0 {
			h.LinkRecoveryTimeout = c.RecoveryTimeout
			h.ProtocolRecoveryTimeout = c.RecoveryTimeout
		}
		return &gridLink{Client: gx.NewClient(h), h: h}, nil
	case TransportRTUOverTCP:
		h := gx.NewRTUOverTCPClientHandler(c.Address)
		h.Timeout = c.Timeout
		h.IdleTimeout = idle
		h.Dial = dial
		return &gridLink{Client: gx.NewClient(h), h: h, rtuFrame: true}, nil
	case TransportRTU:
		h := gx.NewRTUClientHandler(c.Address)
		h.Timeout = c.Timeout
		h.IdleTimeout = idle
		h.BaudRate = c.Serial.BaudRate
		h.DataBits = c.Serial.DataBits
		h.Parity = c.Serial.Parity
		h.StopBits = c.Serial.StopBits
		return &gridLink{Client: gx.NewClient(h), h: h, rtuFrame: true}, nil
	}
	return nil, fmt.Errorf("%w: unknown transport %q", ErrConfig, c.Transport)
}

// errClass sorts request errors by what the worker does about them.
type errClass uint8

const (
	classNone      errClass = iota
	classException          // the device answered with an exception
	classTimeout            // no reply in time; the connection may stay
	classLink               // could not connect: the link is down
	classProtocol           // a complete but wrong reply (size, transaction or unit id): the TCP stream is in sync
	classTransport          // connection broken: close and redial
	classCanceled           // our context ended
)

// classify sorts err and converts grid-x exceptions to *ExceptionError.
func classify(err error, unit, fc uint8, addr, qty uint16) (errClass, error) {
	if err == nil {
		return classNone, nil
	}
	var gxe *gx.Error
	if errors.As(err, &gxe) {
		return classException, &ExceptionError{Unit: unit, Function: fc, Address: addr, Quantity: qty, Code: gxe.ExceptionCode}
	}
	var ee *ExceptionError
	if errors.As(err, &ee) {
		return classException, err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classCanceled, err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return classLink, err
	}
	// A failed TLS handshake is a link problem too: back off, don't hammer.
	if strings.HasPrefix(err.Error(), "modbus: connect:") || strings.Contains(err.Error(), "tls: ") || strings.Contains(err.Error(), "x509: ") || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
		return classLink, err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "serial: timeout") {
		return classTimeout, err
	}
	var dse *gx.DataSizeError
	if errors.As(err, &dse) || errors.Is(err, ErrMalformed) {
		return classProtocol, err
	}
	for _, s := range []string{"does not match", "response data is empty", "length in response"} {
		if strings.Contains(err.Error(), s) {
			return classProtocol, err
		}
	}
	return classTransport, err
}

// exceptionCode returns the exception code of err, or 0.
func exceptionCode(err error) uint8 {
	var ee *ExceptionError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 0
}

// errNotNumeric marks a string point whose text is not a number.
var errNotNumeric = errors.New("modbus: string value is not a number")

// parseNumber turns the text of a string point into a sample value.
func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errNotNumeric, s)
	}
	return v, nil
}
