package history

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error the store returns that a caller may act on
// wraps one of these (test with errors.Is).
var (
	// ErrInvalidQuery: the query itself is wrong (see *QueryError).
	ErrInvalidQuery = errors.New("history: invalid query")
	// ErrLimit: the query matches more points or returns more samples than
	// the configured limits allow (see *LimitError).
	ErrLimit = errors.New("history: query limit exceeded")
	// ErrOutOfOrder: samples older than the out-of-order window were rejected
	// (see *OutOfOrderError).
	ErrOutOfOrder = errors.New("history: sample out of order")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("history: store closed")
	// ErrCorrupt: stored data failed its checksum or did not decode
	// (see *CorruptError).
	ErrCorrupt = errors.New("history: corrupt data")
	// ErrInvalidOption: an Option passed to Open is invalid.
	ErrInvalidOption = errors.New("history: invalid option")
)

// QueryError says which field of a Query is invalid and why.
type QueryError struct {
	Field  string // "from", "step", "aggregation", "points"
	Value  string // the offending value
	Reason string
}

// Error implements error.
func (e *QueryError) Error() string {
	return fmt.Sprintf("history: invalid query: %s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidQuery.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

// LimitError reports which query limit was exceeded.
type LimitError struct {
	What  string // "points" or "samples"
	Limit int
	Got   int // how many there were (at least), when known
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("history: query limit exceeded: more than %d %s (at least %d); narrow the points, the time range or use a coarser step", e.Limit, e.What, e.Got)
}

// Unwrap returns ErrLimit.
func (e *LimitError) Unwrap() error { return ErrLimit }

// OutOfOrderError reports samples rejected by Write because they were older
// than the out-of-order window allows. The other samples of the batch were
// stored.
type OutOfOrderError struct {
	Rejected int           // number of samples rejected
	Point    string        // the first rejected sample's point
	Time     time.Time     // and its time
	Window   time.Duration // the configured window
}

// Error implements error.
func (e *OutOfOrderError) Error() string {
	return fmt.Sprintf("history: %d sample(s) out of order, first %s at %s: older than the %s out-of-order window allows or already compacted into a block",
		e.Rejected, e.Point, e.Time.UTC().Format(time.RFC3339Nano), e.Window)
}

// Unwrap returns ErrOutOfOrder.
func (e *OutOfOrderError) Unwrap() error { return ErrOutOfOrder }

// CorruptError reports stored data that failed its checksum or decoding.
type CorruptError struct {
	File   string // block file or WAL segment
	Offset int64
	Point  string // series, when known
	Err    error  // what failed
}

// Error implements error.
func (e *CorruptError) Error() string {
	s := fmt.Sprintf("history: corrupt data in %s at offset %d", e.File, e.Offset)
	if e.Point != "" {
		s += " (series " + e.Point + ")"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns ErrCorrupt and the underlying error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
