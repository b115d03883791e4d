package model

import (
	"fmt"
	"strings"
	"time"
)

// EventKind names what happened. Kinds are dotted, lower-case strings so
// filters can match a family by prefix ("alarm." matches every alarm event).
type EventKind string

// Event kinds emitted by the packages of this module. Plug-ins may define
// their own kinds; keep them dotted and lower-case.
const (
	EventAlarmRaised      EventKind = "alarm.raised"
	EventAlarmCleared     EventKind = "alarm.cleared"
	EventAlarmAcked       EventKind = "alarm.acked"
	EventAlarmReset       EventKind = "alarm.reset"
	EventAlarmShelved     EventKind = "alarm.shelved"
	EventAlarmUnshelved   EventKind = "alarm.unshelved"
	EventAlarmSuppressed  EventKind = "alarm.suppressed"
	EventAlarmEscalated   EventKind = "alarm.escalated"
	EventAlarmFlood       EventKind = "alarm.flood"
	EventRuleFired        EventKind = "rule.fired"
	EventRuleError        EventKind = "rule.error"
	EventCommandExecuted  EventKind = "command.executed"
	EventCommandFailed    EventKind = "command.failed"
	EventCollectorError   EventKind = "collector.error"
	EventComponentStarted EventKind = "component.started"
	EventComponentStopped EventKind = "component.stopped"
)

// Family returns the part of the kind before the first dot ("alarm").
func (k EventKind) Family() string {
	s, _, _ := strings.Cut(string(k), ".")
	return s
}

// Severity ranks events and alarms. The zero value is Info.
type Severity uint8

// Severities from least to most urgent.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns "info", "low", "medium", "high" or "critical".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// ParseSeverity parses a severity name case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range severityNames {
		if n == l {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("model: unknown severity %q (want info, low, medium, high or critical)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Event is something that happened: an alarm transition, a rule firing, a
// command result. Events flow through the same data path as samples (to
// history, relays and the gateway stream).
//
// Attrs carries kind-specific details (alarm id, user, comment, command id,
// error text). An Event handed to a consumer must be treated as read-only;
// copy Attrs before changing it.
type Event struct {
	ID       string            `json:"id"`
	Time     time.Time         `json:"time"`
	Kind     EventKind         `json:"kind"`
	Source   string            `json:"source"`
	Point    string            `json:"point,omitempty"`
	Severity Severity          `json:"severity"`
	Message  string            `json:"message"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// String formats the event for logs.
func (e Event) String() string {
	return fmt.Sprintf("%s %s [%s] %s %s: %s", e.Time.Format(time.RFC3339Nano), e.Kind, e.Severity, e.Source, e.Point, e.Message)
}
