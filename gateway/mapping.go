package gateway

import (
	"errors"
	"net/http"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/rule"
)

// mappers map the sentinel and typed errors of the alarm, rule and history
// packages to HTTP statuses; StatusOf consults them before its own table.
var mappers = []statusMapper{mapAlarm, mapRule, mapHistory}

func mapAlarm(err error) (int, string, bool) {
	switch {
	case errors.Is(err, alarm.ErrUnknownAlarm):
		return http.StatusNotFound, "unknown_alarm", true
	case errors.Is(err, alarm.ErrUnknownDefinition):
		return http.StatusNotFound, "unknown_definition", true
	case errors.Is(err, alarm.ErrInvalidTransition):
		return http.StatusConflict, "invalid_transition", true
	case errors.Is(err, alarm.ErrDuplicateDefinition):
		return http.StatusConflict, "duplicate_definition", true
	case errors.Is(err, alarm.ErrClosed):
		return http.StatusServiceUnavailable, "closed", true
	}
	return 0, "", false
}

func mapRule(err error) (int, string, bool) {
	var pe *rule.PatternError
	switch {
	case errors.Is(err, rule.ErrUnknownRule):
		return http.StatusNotFound, "unknown_rule", true
	case errors.Is(err, rule.ErrDuplicateRule):
		return http.StatusConflict, "duplicate_rule", true
	case errors.Is(err, rule.ErrInvalidRule), errors.As(err, &pe):
		return http.StatusUnprocessableEntity, "invalid_rule", true
	case errors.Is(err, rule.ErrMissingValue):
		return http.StatusUnprocessableEntity, "missing_value", true
	case errors.Is(err, rule.ErrClosed):
		return http.StatusServiceUnavailable, "closed", true
	}
	return 0, "", false
}

func mapHistory(err error) (int, string, bool) {
	switch {
	case errors.Is(err, history.ErrInvalidQuery):
		return http.StatusBadRequest, "invalid_query", true
	case errors.Is(err, history.ErrLimit):
		return http.StatusUnprocessableEntity, "limit_exceeded", true
	case errors.Is(err, history.ErrClosed):
		return http.StatusServiceUnavailable, "closed", true
	case errors.Is(err, history.ErrCorrupt):
		return http.StatusInternalServerError, "corrupt_data", true
	}
	return 0, "", false
}
