package ems_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/rule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const simYAML = `
interval: 1s
seed: 1
devices:
  - name: bess
    points:
      - {name: A.1, kind: A, min: -1000, max: 1000}
      - {name: T.1, wave: follow, source: bess.A.1}
      - {name: T.2, wave: integrate, source: bess.T.1, gain: -1.3888889e-05, value: 50, min: 0, max: 100}
      - {name: C.1, kind: C}
`

const modelYAML = `
templates:
  - name: Battery
    measurements: [{name: power, unit: kW}, {name: soc, unit: "%"}, {name: energy_kwh, expr: "self.soc / 100 * props.capacity_kwh"}]
    actions: [{name: power_setpoint, unit: kW, min: -500, max: 500, step: 0.5}, {name: start, kind: C}, {name: unrouted}]
    properties: [{name: capacity_kwh, default: 2000}]
instances: [{name: bat1, template: Battery}]
uplinks: [{from: bess.T.1, to: bat1.power}, {from: bess.T.2, to: bat1.soc}]
downlinks: [{from: bat1.power_setpoint, to: bess.A.1}, {from: bat1.start, to: bess.C.1}]
`

func newSite(t *testing.T, opts ...ems.Option) (*ems.EMS, *collect.Simulator) {
	t.Helper()
	cfg, err := collect.ParseSimConfig([]byte(simYAML), "sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := collect.NewSimulator(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseModel([]byte(modelYAML), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	table := &model.PointTable{Channel: "bess", Points: []model.Point{
		{Kind: model.Telemetry, ID: 1, DataType: model.Int32, Scale: 0.1},
		{Kind: model.Telemetry, ID: 2, DataType: model.Uint16, Scale: 0.1},
		{Kind: model.Adjustment, ID: 1, DataType: model.Int16, Scale: 0.1, Min: -1000, HasMin: true, Max: 1000, HasMax: true},
		{Kind: model.Control, ID: 1, DataType: model.Bool, Scale: 1},
	}}
	e, err := ems.New(append([]ems.Option{ems.WithCollector("bess", sim), ems.WithModel(m), ems.WithPointTables(table)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e, sim
}

func TestSiteEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		e, sim := newSite(t, ems.WithMetrics(reg))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.Run(ctx) }()
		events, stop := e.SubscribeEvents(64)
		defer stop()
		samples, stopS := e.SubscribeSamples("bat1.", 1024)
		defer stopS()

		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		soc, ok := e.Snapshot().Get("bat1.soc")
		if !ok || soc.Value != 50 {
			t.Fatalf("bat1.soc = %+v, %v; want 50 routed from bess.T.2", soc, ok)
		}
		if en, _ := e.Snapshot().Get("bat1.energy_kwh"); en.Value != 1000 {
			t.Errorf("computed energy = %v, want 1000", en)
		}
		if _, ok := e.Snapshot().Get("bess.T.2"); ok {
			t.Error("routed channel point kept without WithChannelPoints")
		}
		if len(samples) == 0 {
			t.Error("sample subscription got nothing")
		}

		// A good command is routed to the channel point and reaches the device.
		if err := e.Execute(ctx, model.Command{Point: "bat1.power_setpoint", Value: 250, Source: "test"}); err != nil {
			t.Fatal(err)
		}
		if v, _ := sim.Value("bess.A.1"); v != 250 {
			t.Fatalf("device setpoint = %g, want 250", v)
		}
		// Bad commands fail with typed errors and never reach the device.
		bad := []struct {
			point string
			value float64
			want  error
		}{
			{"bat1.power_setpoint", 600, model.ErrOutOfRange}, // action max 500
			{"bat1.power_setpoint", 100.25, model.ErrBadStep}, // step 0.5
			{"bat1.soc", 10, model.ErrNotWritable},            // a measurement
			{"bess.T.1", 10, model.ErrNotWritable},            // a T channel point
			{"bat1.unrouted", 1, ems.ErrNoRoute},              // no downlink
			{"nope.x", 1, model.ErrUnknownPoint},              // unknown
			{"bat1.start", 2, model.ErrOutOfRange},            // C takes 0/1
			{"bess.A.1", 1001, model.ErrOutOfRange},           // point table max
		}
		for _, b := range bad {
			err := e.Execute(ctx, model.Command{Point: b.point, Value: b.value})
			var ce *model.CommandError
			if !errors.Is(err, b.want) || !errors.As(err, &ce) {
				t.Errorf("Execute(%s=%g) = %v, want CommandError wrapping %v", b.point, b.value, err, b.want)
			}
		}
		if v, _ := sim.Value("bess.A.1"); v != 250 {
			t.Fatalf("a rejected command reached the device: setpoint = %g", v)
		}
		synctest.Wait()
		var executed, failed int
	drain:
		for {
			select {
			case ev := <-events:
				switch ev.Kind {
				case model.EventCommandExecuted:
					executed++
					if ev.Attrs["target"] != "bess.A.1" {
						t.Errorf("executed event target = %q", ev.Attrs["target"])
					}
				case model.EventCommandFailed:
					failed++
				}
			default:
				break drain
			}
		}
		if executed != 1 || failed != len(bad) {
			t.Errorf("events: %d executed, %d failed; want 1 and %d", executed, failed, len(bad))
		}
		if got := (counterVec(t, reg, "ems_commands_total", "failed")); got != float64(len(bad)) {
			t.Errorf("ems_commands_total{failed} = %g", got)
		}

		// The battery discharges at 250 kW: SOC falls.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if soc, _ := e.Snapshot().Get("bat1.soc"); soc.Value >= 48.0 || soc.Value < 47.8 {
			t.Errorf("SOC after 10 min at 250 kW = %g, want ~47.9", soc.Value)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, st := range e.QueueStats() {
			if st.Dropped != 0 || st.Depth != 0 {
				t.Errorf("consumer %s: %+v", st.Name, st)
			}
		}
		if err := e.Run(context.Background()); !errors.Is(err, ems.ErrClosed) {
			t.Errorf("second Run = %v", err)
		}
	})
}

func counterVec(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// slowRelay blocks until released, to fill its queue.
type slowRelay struct {
	gate    chan struct{}
	mu      sync.Mutex
	samples int
}

func (r *slowRelay) Send(_ context.Context, b relay.Batch) error {
	<-r.gate
	r.mu.Lock()
	r.samples += len(b.Samples)
	r.mu.Unlock()
	return nil
}

// TestBackpressure: history (Block) loses nothing while a stalled relay
// (DropOldest) drops, and processed + dropped equals what was published.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &slowRelay{gate: make(chan struct{})}
		var hist atomic.Int64
		e, err := ems.New(ems.WithAlarmer(nil), ems.WithRuleEngine(nil),
			ems.WithHistory(historyFunc(func(b []model.Sample) { hist.Add(int64(len(b))) })),
			ems.WithRelay("cloud", r), ems.WithQueue("relay:cloud", 4, ems.DropOldest))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.Run(ctx) }()
		const batches, size = 100, 10
		batch := make([]model.Sample, size)
		for i := 0; i < batches; i++ {
			for j := range batch {
				batch[j] = model.Sample{Point: fmt.Sprintf("p%d", j), Value: float64(i)}
			}
			if err := e.Publish(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		close(r.gate)
		cancel()
		<-done
		if hist.Load() != batches*size {
			t.Errorf("history got %d samples, want %d", hist.Load(), batches*size)
		}
		var st struct{ processed, dropped uint64 }
		for _, s := range e.QueueStats() {
			if s.Name == "relay:cloud" {
				st.processed, st.dropped = s.Processed, s.Dropped
			}
		}
		if st.dropped == 0 || st.processed+st.dropped != batches*size || int(st.processed) != r.samples {
			t.Errorf("relay processed %d + dropped %d (relay saw %d), want sum %d with drops", st.processed, st.dropped, r.samples, batches*size)
		}
	})
}

type historyFunc func([]model.Sample)

func (f historyFunc) Write(_ context.Context, b []model.Sample) error { f(b); return nil }
func (f historyFunc) Query(context.Context, ems.HistoryQuery) ([]ems.HistorySeries, error) {
	return nil, nil
}

// flaky fails its first Run, then runs normally.
type flaky struct{ runs atomic.Int32 }

func (f *flaky) Run(ctx context.Context, sink collect.Sink) error {
	if f.runs.Add(1) == 1 {
		return errors.New("serial port vanished")
	}
	_ = sink.Publish(ctx, []model.Sample{{Point: "x.T.1", Value: 1, Time: time.Now()}})
	<-ctx.Done()
	return nil
}

func TestCollectorRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flaky{}
		reg := prometheus.NewRegistry()
		e, err := ems.New(ems.WithCollector("x", f), ems.WithMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		events, stop := e.SubscribeEvents(16)
		defer stop()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.Run(ctx) }()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if f.runs.Load() != 2 {
			t.Fatalf("runs = %d, want 2 (restarted after ~1 s)", f.runs.Load())
		}
		if _, ok := e.Snapshot().Get("x.T.1"); !ok {
			t.Fatal("restarted collector's sample missing")
		}
		found := false
		for len(events) > 0 {
			if ev := <-events; ev.Kind == model.EventCollectorError && ev.Source == "collector:x" {
				found = true
			}
		}
		if !found {
			t.Error("no collector.error event")
		}
		if got := (counterVec(t, reg, "ems_collector_errors_total", "x")); got != 1 {
			t.Errorf("collector errors = %g", got)
		}
		cancel()
		<-done
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	bad := map[string][]ems.Option{
		"empty collector name":          {ems.WithCollector("", &flaky{})},
		"duplicate collector":           {ems.WithCollector("a", &flaky{}), ems.WithCollector("a", &flaky{})},
		"bad queue":                     {ems.WithQueue("history", 0, ems.Block)},
		"bad tick":                      {ems.WithTickInterval(0)},
		"bad model":                     {ems.WithModel(&model.Model{Uplinks: []model.Route{{From: "ch1.T.1", To: "nope.x"}}})},
		"nil model":                     {ems.WithModel(nil)},
		"bad restart":                   {ems.WithCollectorRestart(time.Second, time.Millisecond)},
		"alarm options without default": {ems.WithAlarmer(nil), ems.WithAlarmOptions(alarm.WithMaxShelve(time.Hour))},
		"bad alarm definitions":         {ems.WithAlarmOptions(alarm.WithDefinitionsYAML(strings.NewReader("alarms: [{id: x}]"), "a.yaml"))},
		"bad rules":                     {ems.WithRuleOptions(rule.WithRulesYAML([]byte("rules: [{id: r, condition: 'nope +'}]"), "r.yaml"))},
	}
	for name, opts := range bad {
		e, err := ems.New(opts...)
		if err == nil {
			_ = e.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
	e, err := ems.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEventSubscriberDropsOldest: a subscriber that does not read loses
// its oldest events, counted, and never blocks the command path.
func TestEventSubscriberDropsOldest(t *testing.T) {
	e, err := ems.New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	slow, stop := e.SubscribeEvents(2)
	for i := 0; i < 5; i++ {
		_ = e.Execute(context.Background(), model.Command{ID: fmt.Sprint(i), Point: "nope.x", Value: 1})
	}
	if d := e.EventsDropped(); d != 3 {
		t.Fatalf("dropped = %d, want 3", d)
	}
	for _, want := range []string{"3", "4"} {
		if ev := <-slow; ev.ID != want || ev.Kind != model.EventCommandFailed {
			t.Fatalf("got %s %s, want the newest events (id %s)", ev.Kind, ev.ID, want)
		}
	}
	stop()
	if _, open := <-slow; open {
		t.Fatal("channel open after cancel")
	}
}

type closeCounter struct {
	slowRelay
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// TestFailedNewLeavesCallerPartsOpen: when New fails (here: the gateway's
// port is taken) the relay it was given is not closed, so the caller can
// retry New with it.
func TestFailedNewLeavesCallerPartsOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := &closeCounter{}
	_, err = ems.New(ems.WithRelay("up", r), ems.WithGateway(ln.Addr().String(), gateway.WithAnonymous(gateway.RoleViewer)))
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("New with a busy port = %v, want EADDRINUSE", err)
	}
	if r.closed.Load() != 0 {
		t.Fatal("failed New closed the caller's relay")
	}
	e, err := ems.New(ems.WithRelay("up", r))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if r.closed.Load() != 1 {
		t.Fatalf("Close closed the relay %d times, want 1", r.closed.Load())
	}
}
