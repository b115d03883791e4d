package gateway

import (
	"context"

	"github.com/voltage-ems/ems/model"
)

// Points reads the latest value of points. *model.Snapshot implements it.
type Points interface {
	// Get returns the latest sample of point and whether it is known.
	Get(point string) (model.Sample, bool)
	// Range calls fn for every known point until fn returns false.
	Range(fn func(model.Sample) bool)
}

// Executor executes commands (the EMS downlink path). Validation failures
// are *model.CommandError wrapping model.ErrUnknownPoint, ErrNotWritable,
// ErrOutOfRange, ErrBadStep, ErrOverflow or ErrInvalidValue.
type Executor interface {
	Execute(ctx context.Context, cmd model.Command) error
}

// SampleSubscriber streams samples of the points matching a glob pattern.
// The returned function cancels the subscription and closes the channel
// (or stops sending on it); it must be safe to call once.
type SampleSubscriber interface {
	SubscribeSamples(pattern string, buffer int) (<-chan model.Sample, func())
}

// EventSubscriber streams every event of the EMS; the gateway filters by
// kind prefix itself.
type EventSubscriber interface {
	SubscribeEvents(buffer int) (<-chan model.Event, func())
}

// HealthChecker reports the health of one component for /readyz. A nil
// error means ready.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// HealthFunc adapts a function to HealthChecker.
type HealthFunc func(ctx context.Context) error

// Health implements HealthChecker.
func (f HealthFunc) Health(ctx context.Context) error { return f(ctx) }

// SnapshotSamples adapts a *model.Snapshot to SampleSubscriber, for
// vendors who run the gateway over their own snapshot.
func SnapshotSamples(s *model.Snapshot) SampleSubscriber { return snapshotSamples{s} }

type snapshotSamples struct{ s *model.Snapshot }

func (a snapshotSamples) SubscribeSamples(pattern string, buffer int) (<-chan model.Sample, func()) {
	sub := a.s.Subscribe(pattern, buffer)
	return sub.C(), sub.Close
}
