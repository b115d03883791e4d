package collecttest

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

// Config describes the collector under test.
type Config struct {
	// New returns a fresh, unstarted collector. Required.
	New func(t *testing.T) collect.Collector
	// MinBatches is how many batches the collector must publish before the
	// suite cancels it (default 2). The collector must publish them without
	// outside stimulus.
	MinBatches int
	// WritablePoint is a point the collector's Writer accepts, with
	// WriteValue a valid value for it. Leave empty to skip the positive
	// write check.
	WritablePoint string
	WriteValue    float64
	// ReadOnlyPoint, when set, is a T or S point a write must reject with
	// model.ErrNotWritable.
	ReadOnlyPoint string
	// Timeout bounds each wait for the collector (default 10s).
	Timeout time.Duration
}

type recSink struct {
	mu      sync.Mutex
	batches [][]model.Sample
	notify  chan struct{}
}

func (r *recSink) Publish(ctx context.Context, batch []model.Sample) error {
	cp := append([]model.Sample(nil), batch...)
	// Scribble over the caller's slice: a Sink may reuse or overwrite memory
	// it was handed once Publish returns, so the collector must not read it
	// back.
	for i := range batch {
		batch[i] = model.Sample{Point: "", Value: math.NaN()}
	}
	r.mu.Lock()
	r.batches = append(r.batches, cp)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recSink) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("collecttest: Config.New is required")
	}
	if cfg.MinBatches <= 0 {
		cfg.MinBatches = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	t.Run("PublishesAndStopsOnCancel", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		c := cfg.New(t)
		sink := &recSink{notify: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, sink) }()
		deadline := time.NewTimer(cfg.Timeout)
		defer deadline.Stop()
		for sink.count() < cfg.MinBatches {
			select {
			case <-sink.notify:
			case err := <-done:
				cancel()
				t.Fatalf("Run returned before cancellation: %v", err)
			case <-deadline.C:
				cancel()
				t.Fatalf("got %d batches within %v, want %d", sink.count(), cfg.Timeout, cfg.MinBatches)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run after cancel returned %v, want nil or context.Canceled", err)
			}
		case <-deadline.C:
			t.Fatal("Run did not return after cancellation")
		}
		n := sink.count()
		sink.mu.Lock()
		defer sink.mu.Unlock()
		known := map[string]bool{}
		if p, ok := c.(collect.Pointer); ok {
			for _, id := range p.Points() {
				known[id] = true
			}
		}
		for bi, b := range sink.batches {
			for _, s := range b {
				if s.Point == "" {
					t.Fatalf("batch %d has a sample without a point (did the collector read back a published batch?)", bi)
				}
				if len(known) > 0 && !known[s.Point] {
					t.Errorf("batch %d: point %q is not in Points()", bi, s.Point)
				}
				if s.Time.IsZero() {
					t.Errorf("batch %d: %s has no time", bi, s.Point)
				}
				if s.Quality.IsGood() && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) {
					t.Errorf("batch %d: %s is %g with good quality", bi, s.Point, s.Value)
				}
			}
		}
		if n < cfg.MinBatches {
			t.Errorf("got %d batches", n)
		}
	})
	t.Run("CancelledBeforeRun", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		c := cfg.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, collect.SinkFunc(func(context.Context, []model.Sample) error { return nil }))
		}()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(cfg.Timeout):
			t.Fatal("Run with a cancelled context did not return")
		}
	})
	t.Run("SinkErrorsDoNotStopCollector", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		c := cfg.New(t)
		calls := make(chan struct{}, 64)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, collect.SinkFunc(func(context.Context, []model.Sample) error {
				select {
				case calls <- struct{}{}:
				default:
				}
				return errors.New("sink full")
			}))
		}()
		for i := 0; i < cfg.MinBatches; i++ {
			select {
			case <-calls:
			case err := <-done:
				cancel()
				t.Fatalf("collector stopped on a sink error: %v", err)
			case <-time.After(cfg.Timeout):
				cancel()
				t.Fatal("no publish")
			}
		}
		cancel()
		<-done
	})
	t.Run("Writer", func(t *testing.T) {
		c := cfg.New(t)
		w, ok := c.(collect.Writer)
		if !ok {
			t.Skip("collector does not implement collect.Writer")
		}
		ctx := context.Background()
		err := w.Write(ctx, model.Command{Point: "collecttest.no.such.point", Value: 1})
		if !errors.Is(err, collect.ErrUnknownPoint) {
			t.Errorf("write to unknown point: err = %v, want collect.ErrUnknownPoint", err)
		}
		if cfg.ReadOnlyPoint != "" {
			if err := w.Write(ctx, model.Command{Point: cfg.ReadOnlyPoint, Value: 1}); !errors.Is(err, collect.ErrNotWritable) {
				t.Errorf("write to read-only %s: err = %v, want ErrNotWritable", cfg.ReadOnlyPoint, err)
			}
		}
		if cfg.WritablePoint != "" {
			if err := w.Write(ctx, model.Command{Point: cfg.WritablePoint, Value: math.NaN()}); err == nil {
				t.Errorf("write of NaN to %s succeeded", cfg.WritablePoint)
			}
			if err := w.Write(ctx, model.Command{Point: cfg.WritablePoint, Value: cfg.WriteValue}); err != nil {
				t.Errorf("write %s=%g: %v", cfg.WritablePoint, cfg.WriteValue, err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if cfg.WritablePoint != "" {
			if err := w.Write(cctx, model.Command{Point: cfg.WritablePoint, Value: cfg.WriteValue}); err == nil {
				t.Errorf("write with a cancelled context succeeded")
			}
		}
	})
}
