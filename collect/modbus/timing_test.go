package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	gx "github.com/grid-x/modbus"

	"github.com/voltage-ems/ems/model"
)

// fakeLink is a link for timing tests inside a synctest bubble, where real
// sockets cannot be used: reads of a unit take a configured (fake) time,
// or fail as a refused connection.
type fakeLink struct {
	gx.Client
	mu       sync.Mutex
	unit     uint8
	delay    map[uint8]time.Duration
	down     bool
	attempts []time.Time
	writes   []time.Time
	dead     map[uint8]bool // units that never answer: reads time out after 1 s
	perUnit  map[uint8]int
}

func (f *fakeLink) setUnit(id uint8)     { f.unit = id }
func (f *fakeLink) Close() error         { return nil }
func (f *fakeLink) closeOnTimeout() bool { return false }

func (f *fakeLink) ReadHoldingRegisters(ctx context.Context, addr, qty uint16) ([]byte, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	if f.perUnit == nil {
		f.perUnit = map[uint8]int{}
	}
	f.perUnit[f.unit]++
	down, d, dead := f.down, f.delay[f.unit], f.dead[f.unit]
	f.mu.Unlock()
	if down {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	if dead {
		time.Sleep(time.Second)
		return nil, fmt.Errorf("modbus: read response: %w", readTimeout{})
	}
	time.Sleep(d)
	return make([]byte, 2*qty), nil
}

func fakeCollector(t *testing.T, fl *fakeLink, cfg Config) *Collector {
	t.Helper()
	cfg.Channel, cfg.Address = "pcs", "fake"
	c, err := New(cfg, withLink(func(*Config) (link, error) { return fl, nil }))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A slow unit on the same link delays the fast unit's polls past
// StaleAfter intervals: its points are published uncertain:stale, then
// good again on the next read. Ticks missed meanwhile are skipped.
func TestStaleWhenStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tb table
		tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
		tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "2", "function_code", "3", "register_address", "0")
		fl := &fakeLink{delay: map[uint8]time.Duration{2: time.Second}}
		c := fakeCollector(t, fl, Config{Interval: 100 * time.Millisecond, StaleAfter: 3, Points: tb.points, Mappings: tb.mappings})
		sink := newRecSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, sink) }()
		time.Sleep(3500 * time.Millisecond)
		cancel()
		<-done
		var seq []model.Quality
		for _, s := range sink.all {
			if s.Point == "pcs.T.1" {
				seq = append(seq, s.Quality)
			}
		}
		// good (t=0), stale (t=1s, after the slow read), good (t=1s next
		// cycle), stale (t=2s) ...
		stale, good := 0, 0
		for i, q := range seq {
			switch q {
			case model.Uncertain(model.ReasonStale):
				stale++
				if i > 0 && seq[i-1] != model.Good {
					t.Errorf("stale twice in a row: %v", seq)
				}
			case model.Good:
				good++
			default:
				t.Errorf("unexpected quality %v", q)
			}
		}
		if stale < 2 || good < 3 {
			t.Errorf("T.1 qualities %v", seq)
		}
		// 3.5 s with 1.0 s cycles: 4 cycles; the 100 ms ticks in between
		// were skipped, not caught up.
		fl.mu.Lock()
		n := len(fl.attempts)
		fl.mu.Unlock()
		if n != 8 {
			t.Errorf("%d reads, want 8 (4 cycles x 2 units)", n)
		}
	})
}

// While the device refuses connections the worker retries with
// exponential backoff (1 s, 2 s, 4 s ... capped at 60 s, ±20% jitter),
// and every point is bad; the first success brings them back.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tb table
		tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
		fl := &fakeLink{down: true}
		c := fakeCollector(t, fl, Config{Interval: 100 * time.Millisecond, Points: tb.points, Mappings: tb.mappings})
		sink := newRecSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, sink) }()
		time.Sleep(5 * time.Minute)
		fl.mu.Lock()
		at := append([]time.Time(nil), fl.attempts...)
		fl.down = false
		fl.mu.Unlock()
		if s, _ := sink.get("pcs.T.1"); s.Quality != model.Bad(model.ReasonCommFailure) {
			t.Errorf("while down: %v", s)
		}
		base := 1.0
		for i := 1; i < len(at); i++ {
			gap := at[i].Sub(at[i-1]).Seconds()
			if gap < 0.8*base-0.11 || gap > min(1.2*base, 60)+0.11 {
				t.Errorf("attempt %d after %.2fs, want about %.0fs", i, gap, base)
			}
			base = min(base*2, 60)
		}
		if len(at) < 8 || len(at) > 12 {
			t.Errorf("%d attempts in 5 minutes", len(at))
		}
		time.Sleep(61 * time.Second)
		if s, _ := sink.get("pcs.T.1"); !s.Quality.IsGood() {
			t.Errorf("after recovery: %v", s)
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
}

func (f *fakeLink) WriteSingleRegister(ctx context.Context, addr, v uint16) ([]byte, error) {
	f.mu.Lock()
	f.writes = append(f.writes, time.Now())
	f.mu.Unlock()
	return []byte{0, 0, 0, 0}, nil
}

// A write goes ahead of the polls still queued in a cycle: with 20 slow
// requests (100 ms each) in the cycle, it is sent after at most the one in
// flight, not after the whole cycle.
func TestWriteGoesAheadOfPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tb table
		for i := 0; i < 20; i++ {
			tb.add(t, model.Point{ID: uint32(i + 1), Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", fmt.Sprint(i*100))
		}
		tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1}, "slave_id", "1", "function_code", "6", "register_address", "5000")
		fl := &fakeLink{delay: map[uint8]time.Duration{1: 100 * time.Millisecond}}
		c := fakeCollector(t, fl, Config{Interval: 10 * time.Second, Points: tb.points, Mappings: tb.mappings})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, newRecSink()) }()
		time.Sleep(250 * time.Millisecond) // the cycle is in its third request
		t0 := time.Now()
		if err := c.Write(ctx, model.Command{Point: "pcs.A.1", Value: 5}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 100*time.Millisecond {
			t.Errorf("write waited %v behind polls", d)
		}
		fl.mu.Lock()
		polled := len(fl.attempts)
		fl.mu.Unlock()
		if polled > 4 {
			t.Errorf("%d polls ran before the write", polled)
		}
		cancel()
		<-done
	})
}

// readTimeout is a timed-out read as grid-x reports it.
type readTimeout struct{}

func (readTimeout) Error() string   { return "i/o timeout" }
func (readTimeout) Timeout() bool   { return true }
func (readTimeout) Temporary() bool { return true }

// A unit that stopped answering is skipped with a growing backoff, so the
// other unit on the link keeps being read at its interval and stays fresh.
func TestDeadUnitBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tb table
		tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
		tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "2", "function_code", "3", "register_address", "0")
		tb.add(t, model.Point{ID: 3, Kind: model.Telemetry}, "slave_id", "2", "function_code", "3", "register_address", "500")
		fl := &fakeLink{dead: map[uint8]bool{2: true}}
		c := fakeCollector(t, fl, Config{Interval: 200 * time.Millisecond, Timeout: time.Second, StaleAfter: 3, Points: tb.points, Mappings: tb.mappings})
		sink := newRecSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, sink) }()
		time.Sleep(2 * time.Minute)
		cancel()
		<-done
		fl.mu.Lock()
		dead := fl.perUnit[2]
		fl.mu.Unlock()
		// 1+2+4+8+16+32+60 s of backoff plus the timeouts: a handful of
		// attempts in 2 minutes, not one per cycle.
		if dead < 5 || dead > 20 {
			t.Errorf("dead unit polled %d times in 2 minutes", dead)
		}
		good, notGood := 0, 0
		for _, s := range sink.all {
			switch {
			case s.Point == "pcs.T.1" && s.Quality.IsGood():
				good++
			case s.Point == "pcs.T.1":
				notGood++
			case s.Quality.IsGood():
				t.Errorf("dead unit point good: %v", s)
			}
		}
		if good < 400 || notGood > 2*dead {
			t.Errorf("live unit: %d good, %d not good samples; dead unit polled %d times", good, notGood, dead)
		}
	})
}

// A channel with only C and A points has nothing to poll: Run idles
// (no busy loop) and serves writes.
func TestWriteOnlyChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tb table
		tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1}, "slave_id", "1", "function_code", "6", "register_address", "7")
		fl := &fakeLink{}
		c := fakeCollector(t, fl, Config{Points: tb.points, Mappings: tb.mappings})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, newRecSink()) }()
		synctest.Wait() // Run is durably blocked, not spinning
		if err := c.Write(ctx, model.Command{Point: "pcs.A.1", Value: 3}); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
		if len(fl.writes) != 1 {
			t.Errorf("%d writes", len(fl.writes))
		}
	})
}
