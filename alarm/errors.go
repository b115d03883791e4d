package alarm

import "errors"

// Sentinel errors of the alarm engine. Operations wrap them with the alarm
// id, so test with errors.Is.
var (
	// ErrUnknownAlarm is returned by operations on an alarm id the engine
	// does not know.
	ErrUnknownAlarm = errors.New("alarm: unknown alarm")
	// ErrInvalidTransition is returned when an operation does not apply in
	// the alarm's current state (acknowledging a normal alarm, resetting an
	// alarm that is still active, ...).
	ErrInvalidTransition = errors.New("alarm: invalid transition")
	// ErrDuplicateDefinition is returned when a definition id is added twice.
	ErrDuplicateDefinition = errors.New("alarm: duplicate definition")
	// ErrUnknownDefinition is returned by Update/Remove of a definition id
	// that does not exist.
	ErrUnknownDefinition = errors.New("alarm: unknown definition")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("alarm: engine closed")
	// ErrBadOption is wrapped by New for an invalid option value.
	ErrBadOption = errors.New("alarm: invalid option")
)
