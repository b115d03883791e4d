package model

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Point is one row of a channel's point table: how raw device values map to
// engineering values and, for C and A points, what may be written.
//
// Conversion: engineering = raw × Scale + Offset, and for writes
// raw = (engineering − Offset) / Scale, rounded to the nearest integer for
// integer data types. Reverse inverts boolean values (S and C points).
type Point struct {
	ID       uint32   `json:"point_id" yaml:"point_id"`
	Kind     Kind     `json:"kind" yaml:"-"`
	Name     string   `json:"signal_name" yaml:"signal_name"`
	Unit     string   `json:"unit,omitempty" yaml:"unit,omitempty"`
	Scale    float64  `json:"scale" yaml:"scale"`
	Offset   float64  `json:"offset" yaml:"offset"`
	Reverse  bool     `json:"reverse,omitempty" yaml:"reverse,omitempty"`
	DataType DataType `json:"data_type" yaml:"data_type"`

	// Control (C) points.
	OnValue  float64 `json:"on_value,omitempty" yaml:"on_value,omitempty"`
	OffValue float64 `json:"off_value,omitempty" yaml:"off_value,omitempty"`
	PulseMS  int     `json:"pulse_ms,omitempty" yaml:"pulse_ms,omitempty"`

	// Adjustment (A) points. Min and Max bound the engineering value; Step,
	// when non-zero, is the resolution a setpoint must be a multiple of
	// (counted from Min). HasMin/HasMax say whether the bound was given.
	Min    float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max    float64 `json:"max,omitempty" yaml:"max,omitempty"`
	Step   float64 `json:"step,omitempty" yaml:"step,omitempty"`
	HasMin bool    `json:"-" yaml:"-"`
	HasMax bool    `json:"-" yaml:"-"`
}

// ChannelPointID returns the stable id of a channel point: "ch1.T.7".
func ChannelPointID(channel string, k Kind, id uint32) string {
	return channel + "." + k.String() + "." + strconv.FormatUint(uint64(id), 10)
}

// ParseChannelPointID splits "ch1.T.7" into its channel, kind and number.
func ParseChannelPointID(s string) (channel string, k Kind, id uint32, err error) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return "", 0, 0, fmt.Errorf("model: %q is not a channel point id (want channel.K.N)", s)
	}
	j := strings.LastIndexByte(s[:i], '.')
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("model: %q is not a channel point id (want channel.K.N)", s)
	}
	k, err = ParseKind(s[j+1 : i])
	if err != nil || len(s[j+1:i]) != 1 {
		return "", 0, 0, fmt.Errorf("model: %q is not a channel point id: bad kind %q", s, s[j+1:i])
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return "", 0, 0, fmt.Errorf("model: %q is not a channel point id: bad number %q", s, s[i+1:])
	}
	return s[:j], k, uint32(n), nil
}

// Engineering converts a raw device value to its engineering value.
// For Bool points it applies Reverse and returns 0 or 1 unscaled.
func (p *Point) Engineering(raw float64) float64 {
	if p.DataType == Bool || p.Kind == Signal || p.Kind == Control {
		on := raw != 0
		if p.Reverse {
			on = !on
		}
		if on {
			return 1
		}
		return 0
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	return raw*scale + p.Offset
}

// Sentinel errors of command validation. Validation errors wrap one of these
// inside a *CommandError.
var (
	ErrUnknownPoint = errors.New("unknown point")
	ErrNotWritable  = errors.New("point is not writable (only C and A points accept commands)")
	ErrOutOfRange   = errors.New("value out of range")
	ErrBadStep      = errors.New("value is not a multiple of the point's step")
	ErrOverflow     = errors.New("value does not fit the raw data type")
	ErrInvalidValue = errors.New("invalid value")
)

// CommandError is returned when a command fails validation or execution.
// Err is one of the sentinel errors above or a transport error.
type CommandError struct {
	Point  string
	Value  float64
	Reason string
	Err    error
}

// Error implements error.
func (e *CommandError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("command %s=%g: %v: %s", e.Point, e.Value, e.Err, e.Reason)
	}
	return fmt.Sprintf("command %s=%g: %v", e.Point, e.Value, e.Err)
}

// Unwrap returns the underlying sentinel or transport error.
func (e *CommandError) Unwrap() error { return e.Err }

// Validate checks an engineering value written to p: the kind must be C or A;
// a C value must be 0 or 1 (off/on); an A value must be finite, within
// Min/Max when set, and a multiple of Step from Min (with a tolerance of
// 1e-9 of the step).
func (p *Point) Validate(pointID string, v float64) error {
	fail := func(err error, format string, a ...any) error {
		return &CommandError{Point: pointID, Value: v, Err: err, Reason: fmt.Sprintf(format, a...)}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fail(ErrInvalidValue, "not a finite number")
	}
	switch p.Kind {
	case Control:
		if v != 0 && v != 1 {
			return fail(ErrOutOfRange, "a control point takes 0 (off) or 1 (on)")
		}
		return nil
	case Adjustment:
	default:
		return fail(ErrNotWritable, "point kind is %s", p.Kind)
	}
	if p.HasMin && v < p.Min {
		return fail(ErrOutOfRange, "below min %g", p.Min)
	}
	if p.HasMax && v > p.Max {
		return fail(ErrOutOfRange, "above max %g", p.Max)
	}
	if p.Step > 0 {
		base := 0.0
		if p.HasMin {
			base = p.Min
		}
		n := (v - base) / p.Step
		if math.Abs(n-math.Round(n)) > 1e-9*math.Max(1, math.Abs(n)) {
			return fail(ErrBadStep, "step is %g", p.Step)
		}
	}
	return nil
}

// Raw converts a validated engineering value to the raw value sent to the
// device: for C points the OnValue/OffValue (default 1/0) after Reverse; for
// other points (v − Offset) / Scale, rounded half away from zero for integer
// data types and checked against the data type's range.
func (p *Point) Raw(v float64) (float64, error) {
	if p.Kind == Control || p.DataType == Bool {
		on := v != 0
		if p.Reverse {
			on = !on
		}
		if p.Kind == Control && (p.OnValue != 0 || p.OffValue != 0) {
			if on {
				return p.OnValue, nil
			}
			return p.OffValue, nil
		}
		if on {
			return 1, nil
		}
		return 0, nil
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	raw := (v - p.Offset) / scale
	if p.DataType.IsInteger() {
		raw = math.Round(raw)
	} else if p.DataType == Float32 {
		raw = float64(float32(raw))
	}
	lo, hi := p.DataType.Range()
	if raw < lo || raw > hi || math.IsInf(raw, 0) || math.IsNaN(raw) {
		return 0, &CommandError{Value: v, Err: ErrOverflow, Reason: fmt.Sprintf("raw %g outside %s range", raw, p.DataType)}
	}
	return raw, nil
}
