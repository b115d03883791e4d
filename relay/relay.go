package relay

import (
	"context"
	"errors"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Relay forwards samples and events to an external system.
//
// Send must not block on the network (a relay owns a buffer for that) and
// must not retain b's slices after it returns. It is safe for concurrent use.
type Relay interface {
	Send(ctx context.Context, b Batch) error
}

// Batch is the unit handed to a Relay: samples and events of one pass of
// the data path. Either slice may be empty.
type Batch struct {
	Samples []model.Sample
	Events  []model.Event
}

// Len returns the number of samples plus events.
func (b Batch) Len() int { return len(b.Samples) + len(b.Events) }

// MessageKind says whether a Message carries a sample or an event.
type MessageKind uint8

// Message kinds.
const (
	KindSample MessageKind = iota + 1
	KindEvent
)

// String returns "sample" or "event".
func (k MessageKind) String() string {
	switch k {
	case KindSample:
		return "sample"
	case KindEvent:
		return "event"
	}
	return "unknown"
}

// Message is one formatted item on its way to a transport. The pipeline
// fills every field but Topic and Headers; adapters derive their topic,
// key or node from Point, Event and Kind, and send Payload as it is.
//
// A Message handed to an Adapter is read-only: the pipeline may hand the
// same Message again after a failed attempt.
type Message struct {
	Kind    MessageKind
	Point   string          // the sample's point, or the event's point (may be empty)
	Value   float64         // the sample's value (0 for events)
	Quality model.Quality   // the sample's quality
	Event   model.EventKind // the event's kind (empty for samples)
	Time    time.Time       // the sample's or event's time
	Key     string          // ordering key: the point, or the event source when it has none
	Topic   string          // optional topic set by the user; adapters use their template when empty
	Payload []byte          // the formatted bytes
	Headers map[string]string
}

// size is what a message counts against a buffer's byte bound.
func (m *Message) size() int {
	n := len(m.Payload) + len(m.Point) + len(m.Key) + len(m.Topic) + len(m.Event)
	for k, v := range m.Headers {
		n += len(k) + len(v)
	}
	return n
}

// Adapter is a transport: it delivers a batch of messages to one external
// system. Send returns nil only when every message was accepted by the
// peer (as far as the protocol can tell); on an error the pipeline sends
// the whole batch again later, so adapters deliver at least once. An error
// wrapped with Permanent is not retried: the batch is dropped and counted.
//
// Send is called from one goroutine at a time.
type Adapter interface {
	Send(ctx context.Context, msgs []Message) error
}

// Connector is the optional interface of adapters that hold a connection.
// The pipeline calls Connect from Run, retrying with backoff until it
// succeeds, before the first Send.
type Connector interface {
	Connect(ctx context.Context) error
}

// Closer is the optional interface of adapters that hold resources.
// Pipeline.Close calls it last.
type Closer interface {
	Close() error
}

// Receiver is the optional interface of adapters that take commands from
// the peer (an MQTT write topic, for instance). Receive blocks until ctx is
// done, handing every accepted command to exec, and returns nil after a
// cancellation. The pipeline runs it from Run when it has an Executor.
type Receiver interface {
	Receive(ctx context.Context, exec Executor) error
}

// Executor executes a command on the site: it routes and validates it and
// writes it to the device. Errors are *model.CommandError values wrapping
// model.ErrUnknownPoint, model.ErrNotWritable, model.ErrOutOfRange, ... or
// a transport error. The root *ems.EMS implements it.
type Executor interface {
	Execute(ctx context.Context, cmd model.Command) error
}

// ExecutorFunc adapts a function to the Executor interface.
type ExecutorFunc func(ctx context.Context, cmd model.Command) error

// Execute calls f(ctx, cmd).
func (f ExecutorFunc) Execute(ctx context.Context, cmd model.Command) error { return f(ctx, cmd) }

// Sentinel errors of the relay package.
var (
	ErrClosed       = errors.New("relay: closed")
	ErrRunning      = errors.New("relay: already running")
	ErrFormat       = errors.New("relay: cannot format")
	ErrNotConnected = errors.New("relay: not connected")
)

// permanentError marks an error the pipeline must not retry.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the pipeline drops the batch (counted as
// "rejected") instead of retrying it. Use it for errors that a retry cannot
// fix: a payload the peer refuses, an authorization failure. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or an error it wraps) was made by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Runner is implemented by relays that deliver in the background, as
// Pipeline does: the EMS runs Run in its own goroutine for the life of the
// site and cancels ctx to stop it.
type Runner interface {
	Run(ctx context.Context) error
}

// CommandSource is implemented by relays that can take commands from their
// peer (Pipeline, when its adapter is a Receiver). The EMS calls
// SetExecutor with itself before Run.
type CommandSource interface {
	SetExecutor(e Executor)
}
