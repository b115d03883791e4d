package model

import (
	"fmt"
	"time"
)

// Sample is one value of one point at one time.
//
// Point is a stable, human-readable identifier: "pcs1.active_power" for an
// instance point, "ch1.T.7" for a channel point (see ChannelPointID).
// The zero Quality is Good, so a Sample literal without a quality is good.
type Sample struct {
	Point   string    `json:"point"`
	Value   float64   `json:"value"`
	Time    time.Time `json:"time"`
	Quality Quality   `json:"quality"`
}

// String formats the sample for logs: point=value@time(quality).
func (s Sample) String() string {
	return fmt.Sprintf("%s=%g@%s(%s)", s.Point, s.Value, s.Time.Format(time.RFC3339Nano), s.Quality)
}

// Status is the coarse state of a Quality: good, uncertain or bad.
type Status uint8

// The three statuses, in the OPC UA sense.
const (
	StatusGood Status = iota
	StatusUncertain
	StatusBad
)

// String returns "good", "uncertain" or "bad".
func (s Status) String() string {
	switch s {
	case StatusGood:
		return "good"
	case StatusUncertain:
		return "uncertain"
	case StatusBad:
		return "bad"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Reason says why a sample is not good.
type Reason uint8

// Reasons a sample can carry.
const (
	ReasonNone        Reason = iota
	ReasonCommFailure        // the device did not answer or the reply was malformed
	ReasonOutOfRange         // the value is outside the point's configured limits
	ReasonStale              // the value was not refreshed for too long
	ReasonSubstituted        // the value was set by hand or by logic, not measured
	ReasonOverflow           // the raw value did not fit its data type
	ReasonConfig             // the point is misconfigured (e.g. a failed computed expression)
)

var reasonNames = [...]string{"", "comm_failure", "out_of_range", "stale", "substituted", "overflow", "config"}

// String returns the snake_case name of the reason, "" for ReasonNone.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Quality is a Status plus a Reason packed in one byte. The zero value is
// Good. Build others with Bad and Uncertain.
type Quality uint8

// Good is the quality of a normal, fresh, measured value.
const Good Quality = 0

// Bad returns a bad quality for the given reason.
func Bad(r Reason) Quality { return Quality(uint8(StatusBad)<<6 | uint8(r)&0x3f) }

// Uncertain returns an uncertain quality for the given reason.
func Uncertain(r Reason) Quality { return Quality(uint8(StatusUncertain)<<6 | uint8(r)&0x3f) }

// Status returns the coarse status of q.
func (q Quality) Status() Status { return Status(q >> 6) }

// Reason returns why q is not good (ReasonNone for Good).
func (q Quality) Reason() Reason { return Reason(q & 0x3f) }

// IsGood reports whether q has status good.
func (q Quality) IsGood() bool { return q.Status() == StatusGood }

// IsBad reports whether q has status bad.
func (q Quality) IsBad() bool { return q.Status() == StatusBad }

// String returns "good", "bad:comm_failure", "uncertain:stale" and so on.
func (q Quality) String() string {
	if q.Reason() == ReasonNone {
		return q.Status().String()
	}
	return q.Status().String() + ":" + q.Reason().String()
}

// MarshalText implements encoding.TextMarshaler.
func (q Quality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what String returns.
func (q *Quality) UnmarshalText(b []byte) error {
	v, err := ParseQuality(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// ParseQuality parses what Quality.String returns.
func ParseQuality(s string) (Quality, error) {
	status, reason, _ := cut(s, ':')
	var st Status
	switch status {
	case "good", "":
		st = StatusGood
	case "uncertain":
		st = StatusUncertain
	case "bad":
		st = StatusBad
	default:
		return 0, fmt.Errorf("model: invalid quality %q: status must be good, uncertain or bad", s)
	}
	var r Reason
	if reason != "" {
		found := false
		for i, n := range reasonNames {
			if i > 0 && n == reason {
				r, found = Reason(i), true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("model: invalid quality %q: unknown reason %q", s, reason)
		}
	}
	return Quality(uint8(st)<<6 | uint8(r)), nil
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
