package rule

import "errors"

// Sentinel errors of the rule package. The gateway maps them to HTTP statuses.
var (
	// ErrUnknownRule is returned by management methods for a rule id that is not loaded.
	ErrUnknownRule = errors.New("rule: unknown rule")
	// ErrDuplicateRule is returned when adding a rule whose id is already loaded.
	ErrDuplicateRule = errors.New("rule: duplicate rule id")
	// ErrInvalidRule wraps the model.ConfigErrors of a rejected rule or rule set.
	ErrInvalidRule = errors.New("rule: invalid rule")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("rule: engine closed")
	// ErrChainDepth is reported (as a rule.error event) when a chain is deeper than the limit.
	ErrChainDepth = errors.New("rule: chain depth limit exceeded")
	// ErrBudget is reported (as a rule.error event) when an evaluation runs past its budget.
	ErrBudget = errors.New("rule: evaluation budget exceeded")
	// ErrMissingValue is returned by DryRun when a point the rule reads has no value.
	ErrMissingValue = errors.New("rule: missing point value")
)

// invalid wraps config errors so that errors.Is(err, ErrInvalidRule) holds and
// model.AsConfigErrors(err) still finds every ConfigError.
type invalidError struct{ errs error }

func (e *invalidError) Error() string   { return ErrInvalidRule.Error() + ":\n" + e.errs.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalidRule, e.errs} }

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &invalidError{errs: err}
}
