package model

import (
	"fmt"
	"strings"
)

// Kind is one of the four point kinds of EMS practice.
type Kind uint8

// The four point kinds. The zero value is not a valid kind.
const (
	Telemetry  Kind = iota + 1 // T, analog input (遥测, YC)
	Signal                     // S, digital input (遥信, YX)
	Control                    // C, digital output (遥控, YK)
	Adjustment                 // A, analog setpoint output (遥调, YT)
)

// Kinds lists the valid kinds in T, S, C, A order.
var Kinds = []Kind{Telemetry, Signal, Control, Adjustment}

// String returns the one-letter code: "T", "S", "C" or "A".
func (k Kind) String() string {
	switch k {
	case Telemetry:
		return "T"
	case Signal:
		return "S"
	case Control:
		return "C"
	case Adjustment:
		return "A"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Name returns the long lower-case name: "telemetry", "signal", "control", "adjustment".
func (k Kind) Name() string {
	switch k {
	case Telemetry:
		return "telemetry"
	case Signal:
		return "signal"
	case Control:
		return "control"
	case Adjustment:
		return "adjustment"
	}
	return k.String()
}

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool { return k >= Telemetry && k <= Adjustment }

// Writable reports whether points of this kind accept commands (C and A).
func (k Kind) Writable() bool { return k == Control || k == Adjustment }

// ParseKind parses a kind case-insensitively from its letter (T/S/C/A), its
// Chinese-pinyin abbreviation (YC/YX/YK/YT) or its name (telemetry, signal,
// control, adjustment; also measurement, status, setpoint).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "yc", "telemetry", "measurement":
		return Telemetry, nil
	case "s", "yx", "signal", "status":
		return Signal, nil
	case "c", "yk", "control":
		return Control, nil
	case "a", "yt", "adjustment", "setpoint":
		return Adjustment, nil
	}
	return 0, fmt.Errorf("model: unknown point kind %q (want T, S, C, A, YC, YX, YK, YT or a kind name)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("model: invalid kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseKind.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
