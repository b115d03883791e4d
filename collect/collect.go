package collect

import (
	"context"
	"errors"

	"github.com/voltage-ems/ems/model"
)

// Sink receives batches of samples from a Collector.
//
// Publish may block to apply backpressure; it returns when the batch has
// been accepted or ctx is done. The Sink does not retain batch after Publish
// returns: the collector may reuse the slice for its next batch. Publish is
// safe for concurrent use by several collectors.
type Sink interface {
	Publish(ctx context.Context, batch []model.Sample) error
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ctx context.Context, batch []model.Sample) error

// Publish calls f(ctx, batch).
func (f SinkFunc) Publish(ctx context.Context, batch []model.Sample) error { return f(ctx, batch) }

// Collector reads devices and publishes samples to a Sink.
//
// Run blocks until ctx is done or the collector fails for good, and returns
// nil (or ctx.Err()) after a cancellation. When Run returns, every goroutine
// the collector started has stopped. Samples carry channel point ids
// ("ch1.T.7") or instance point ids, already converted to engineering units.
// A collector is run once; Run is not called concurrently.
type Collector interface {
	Run(ctx context.Context, sink Sink) error
}

// Writer is the optional interface of collectors that can write controls
// and setpoints back to devices.
//
// Write sends cmd.Value (an engineering value) to the device point
// cmd.Point and returns when the device confirmed it, or with an error.
// A point the writer does not know fails with an error wrapping
// ErrUnknownPoint; a value outside the point's limits fails with an error
// wrapping model.ErrOutOfRange or model.ErrBadStep before anything is sent.
// Write is safe for concurrent use, also while Run is running.
type Writer interface {
	Write(ctx context.Context, cmd model.Command) error
}

// Pointer is the optional interface of collectors that can list the points
// they produce, so the EMS can validate routes before the first sample.
type Pointer interface {
	Points() []string
}

// Sentinel errors shared by collectors.
var (
	// ErrUnknownPoint is wrapped by errors for points a collector does not have.
	ErrUnknownPoint = model.ErrUnknownPoint
	// ErrNotWritable is wrapped when a command targets a T or S point.
	ErrNotWritable = model.ErrNotWritable
	// ErrClosed is returned by a collector or writer used after it stopped.
	ErrClosed = errors.New("collect: closed")
)
