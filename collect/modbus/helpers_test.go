package modbus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// row builds a mapping through ParseMapping (the CSV path): kv pairs of
// field name and value.
func row(t testing.TB, k model.Kind, kv ...string) Mapping {
	t.Helper()
	f := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	m, err := ParseMapping("test_mapping.csv", 1, k, f, nil)
	if err != nil {
		t.Fatalf("mapping %v: %v", kv, err)
	}
	return m
}

// table is a point table and its mappings built in code.
type table struct {
	points   []model.Point
	mappings []Mapping
}

func (tb *table) add(t testing.TB, p model.Point, kv ...string) {
	t.Helper()
	tb.points = append(tb.points, p)
	kv = append([]string{"point_id", strconv.FormatUint(uint64(p.ID), 10)}, kv...)
	tb.mappings = append(tb.mappings, row(t, p.Kind, kv...))
}

// recSink records every batch and signals each publish.
type recSink struct {
	mu     sync.Mutex
	latest map[string]model.Sample
	all    []model.Sample
	ch     chan struct{}
}

func newRecSink() *recSink {
	return &recSink{latest: map[string]model.Sample{}, ch: make(chan struct{}, 1)}
}

func (s *recSink) Publish(_ context.Context, batch []model.Sample) error {
	s.mu.Lock()
	for _, x := range batch {
		s.latest[x.Point] = x
		s.all = append(s.all, x)
	}
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
	return nil
}

func (s *recSink) get(id string) (model.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.latest[id]
	return x, ok
}

// waitFor blocks until cond holds on the latest samples, failing the test
// after d. It wakes on every publish (no sleeping).
func (s *recSink) waitFor(t testing.TB, d time.Duration, what string, cond func(get func(string) (model.Sample, bool)) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if cond(s.get) {
			return
		}
		select {
		case <-s.ch:
		case <-deadline.C:
			s.mu.Lock()
			latest := fmt.Sprint(s.latest)
			s.mu.Unlock()
			t.Fatalf("timed out waiting for %s; latest: %s", what, latest)
		}
	}
}

// run starts c.Run in a goroutine and stops it at cleanup.
func run(t testing.TB, c *Collector, sink *recSink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
