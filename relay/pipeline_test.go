package relay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/relaytest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func samples(from, n int) []model.Sample {
	out := make([]model.Sample, n)
	for i := range out {
		out[i] = model.Sample{Point: fmt.Sprintf("pcs1.p%d", (from+i)%4), Value: float64(from + i), Time: t0.Add(time.Duration(from+i) * time.Second)}
	}
	return out
}

// run starts p.Run in the background and returns a stop function that
// cancels it and waits.
func run(t *testing.T, p *relay.Pipeline) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func mustNew(t *testing.T, a relay.Adapter, opts ...relay.Option) *relay.Pipeline {
	t.Helper()
	p, err := relay.New(a, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestPipelineDeliversInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem, relay.WithBatchSize(7))
		stop := run(t, p)
		for i := 0; i < 10; i++ {
			if err := p.Send(t.Context(), relay.Batch{Samples: samples(i*10, 10)}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		got := mem.Messages()
		if len(got) != 100 {
			t.Fatalf("delivered %d, want 100", len(got))
		}
		for i, m := range got {
			if m.Value != float64(i) || m.Kind != relay.KindSample || m.Key != m.Point {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
		if want := `{"point":"pcs1.p0","value":0,"time":"2026-01-02T03:04:05Z","quality":"good"}`; string(got[0].Payload) != want {
			t.Fatalf("payload %s, want %s", got[0].Payload, want)
		}
		st := p.Stats()
		if st.Sent != 100 || st.Accepted != 100 || st.Buffered != 0 || st.Dropped.Total() != 0 {
			t.Fatalf("stats %+v", st)
		}
		stop()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPipelineDoesNotRetainBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem)
		s := samples(0, 3)
		ev := []model.Event{{ID: "e1", Kind: model.EventAlarmRaised, Source: "alarm", Attrs: map[string]string{"a": "1"}, Time: t0}}
		if err := p.Send(t.Context(), relay.Batch{Samples: s, Events: ev}); err != nil {
			t.Fatal(err)
		}
		// The caller reuses its slices and maps right after Send.
		for i := range s {
			s[i] = model.Sample{Point: "reused", Value: -1}
		}
		ev[0].Attrs["a"] = "changed"
		ev[0] = model.Event{}
		stop := run(t, p)
		synctest.Wait()
		stop()
		p.Close()
		got := mem.Messages()
		if len(got) != 4 || got[0].Point != "pcs1.p0" || got[3].Kind != relay.KindEvent ||
			!strings.Contains(string(got[3].Payload), `"attrs":{"a":"1"}`) {
			t.Fatalf("delivered %+v", got)
		}
	})
}

func TestPipelineFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem, relay.WithPoints("pcs1.p1", "pcs1.p3"), relay.WithEventKinds("alarm.*"))
		evs := []model.Event{
			{ID: "1", Kind: model.EventAlarmRaised, Time: t0},
			{ID: "2", Kind: model.EventRuleFired, Time: t0},
			{ID: "3", Kind: model.EventAlarmCleared, Time: t0},
		}
		if err := p.Send(t.Context(), relay.Batch{Samples: samples(0, 8), Events: evs}); err != nil {
			t.Fatal(err)
		}
		stop := run(t, p)
		synctest.Wait()
		stop()
		p.Close()
		var got []string
		for _, m := range mem.Messages() {
			got = append(got, m.Point+string(m.Event))
		}
		if fmt.Sprint(got) != "[pcs1.p1 pcs1.p3 pcs1.p1 pcs1.p3 alarm.raised alarm.cleared]" {
			t.Fatalf("delivered %v", got)
		}
		if st := p.Stats(); st.Filtered != 5 {
			t.Fatalf("filtered %d, want 5", st.Filtered)
		}
	})
}

func TestPipelineRetriesFailedBatchFirstWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		var mu sync.Mutex
		var times []time.Time
		mem.FailWith(func(call int, msgs []relay.Message) error {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			if call <= 4 {
				return errors.New("peer down")
			}
			return nil
		})
		p := mustNew(t, mem, relay.WithBatchSize(5), relay.WithRetry(time.Second, 4*time.Second), relay.WithBreaker(100, time.Second))
		if err := p.Send(t.Context(), relay.Batch{Samples: samples(0, 5)}); err != nil {
			t.Fatal(err)
		}
		stop := run(t, p)
		synctest.Wait()
		// The first batch is failing; a newer batch must wait behind it.
		if err := p.Send(t.Context(), relay.Batch{Samples: samples(5, 5)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // fake time: let every retry happen
		synctest.Wait()
		stop()
		p.Close()
		got := mem.Messages()
		for i, m := range got {
			if m.Value != float64(i) {
				t.Fatalf("message %d has value %v: the failed batch was not delivered first", i, m.Value)
			}
		}
		if len(got) != 10 {
			t.Fatalf("delivered %d, want 10", len(got))
		}
		st := p.Stats()
		if st.Retries != 4 || st.Sent != 10 {
			t.Fatalf("stats %+v, want 4 retries, 10 sent", st)
		}
		// Waits: 1s, 2s, 4s, 4s (cap), each with up to half jitter.
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
		for i, w := range want {
			d := times[i+1].Sub(times[i])
			if d < w/2 || d > w {
				t.Fatalf("wait before attempt %d was %v, want in [%v, %v]", i+2, d, w/2, w)
			}
		}
	})
}

func TestPipelineBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		var down = true
		var mu sync.Mutex
		mem.FailWith(func(int, []relay.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return errors.New("peer down")
			}
			return nil
		})
		p := mustNew(t, mem, relay.WithRetry(10*time.Millisecond, 10*time.Millisecond), relay.WithBreaker(3, 10*time.Second))
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 1)})
		stop := run(t, p)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		calls, _, _ := mem.Calls()
		if calls != 3 {
			t.Fatalf("adapter called %d times in 5s, want 3 (the breaker opens after 3 failures)", calls)
		}
		if st := p.Stats(); st.Breaker != "open" || st.Pending != 1 {
			t.Fatalf("stats %+v, want breaker open and 1 pending", st)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if st := p.Stats(); st.Breaker != "closed" || st.Sent != 1 {
			t.Fatalf("stats %+v, want breaker closed and 1 sent", st)
		}
		stop()
		p.Close()
	})
}

func TestPipelinePermanentErrorDropsBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		mem.FailWith(func(call int, _ []relay.Message) error {
			if call == 1 {
				return relay.Permanent(errors.New("payload refused"))
			}
			return nil
		})
		p := mustNew(t, mem, relay.WithBatchSize(3))
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 5)})
		stop := run(t, p)
		synctest.Wait()
		stop()
		p.Close()
		st := p.Stats()
		if st.Dropped.Rejected != 3 || st.Sent != 2 || st.Retries != 0 {
			t.Fatalf("stats %+v, want 3 rejected, 2 sent", st)
		}
	})
}

func TestPipelineRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem, relay.WithRateLimit(10, 5))
		start := time.Now()
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 55)})
		stop := run(t, p)
		for mem.Len() < 55 {
			time.Sleep(10 * time.Millisecond)
		}
		elapsed := time.Since(start)
		stop()
		p.Close()
		// A burst of 5, then 50 more at 10/s: 5 s.
		if elapsed < 5*time.Second || elapsed > 5*time.Second+50*time.Millisecond {
			t.Fatalf("55 messages at 10/s burst 5 took %v, want 5s", elapsed)
		}
		_, batches, _ := mem.Calls()
		if batches != 11 {
			t.Fatalf("%d batches, want 11 of at most 5", batches)
		}
	})
}

func TestPipelineBlockPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem, relay.WithBuffer(3, 1<<20), relay.WithOverflow(relay.Block))
		done := make(chan error, 1)
		go func() { done <- p.Send(t.Context(), relay.Batch{Samples: samples(0, 10)}) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Send returned %v before the relay ran, want it blocked", err)
		default:
		}
		stop := run(t, p)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		stop()
		p.Close()
		if mem.Len() != 10 || p.Stats().Dropped.Total() != 0 {
			t.Fatalf("delivered %d, stats %+v", mem.Len(), p.Stats())
		}
		// Blocked and canceled: counted.
		p2 := mustNew(t, &relaytest.Memory{}, relay.WithBuffer(3, 1<<20), relay.WithOverflow(relay.Block))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := p2.Send(ctx, relay.Batch{Samples: samples(0, 10)}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send: %v, want deadline exceeded", err)
		}
		if st := p2.Stats(); st.Dropped.Canceled != 7 || st.Buffered != 3 {
			t.Fatalf("stats %+v, want 7 canceled and 3 buffered", st)
		}
		p2.Close()
	})
}

func TestPipelineExactDropAccounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		var mu sync.Mutex
		down := true
		mem.FailWith(func(int, []relay.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return errors.New("down")
			}
			return nil
		})
		p := mustNew(t, mem, relay.WithBuffer(100, 1<<20), relay.WithBatchSize(10),
			relay.WithRetry(time.Second, time.Second), relay.WithBreaker(1000, time.Second))
		stop := run(t, p)
		for i := 0; i < 50; i++ {
			p.Send(t.Context(), relay.Batch{Samples: samples(i*10, 10)})
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		p.Close()
		st := p.Stats()
		delivered := uint64(mem.Len())
		if st.Accepted != 500 || delivered+st.Dropped.Overflow != 500 || st.Dropped.Total() != st.Dropped.Overflow {
			t.Fatalf("accepted %d, delivered %d, dropped %+v: not exact", st.Accepted, delivered, st.Dropped)
		}
		if delivered != 110 {
			t.Fatalf("delivered %d, want 110 (the buffer bound plus the batch held for retry)", delivered)
		}
		// The first batch (held) and the newest 100 survive.
		got := mem.Messages()
		if got[0].Value != 0 || got[9].Value != 9 || got[10].Value != 400 || got[109].Value != 499 {
			t.Fatalf("delivered values %v ... %v", got[0].Value, got[len(got)-1].Value)
		}
	})
}

func TestPipelineCloseDrainsOrCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem)
		stop := run(t, p)
		synctest.Wait()
		stop()
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 20)})
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if mem.Len() != 20 {
			t.Fatalf("Close delivered %d, want 20", mem.Len())
		}
		if err := p.Send(t.Context(), relay.Batch{Samples: samples(0, 2)}); !errors.Is(err, relay.ErrClosed) {
			t.Fatalf("Send after Close: %v, want ErrClosed", err)
		}
		if st := p.Stats(); st.Dropped.Closed != 2 {
			t.Fatalf("stats %+v, want 2 closed", st)
		}
		// A peer that stays down: Close gives up after the drain timeout
		// and counts what is left.
		down := &relaytest.Memory{}
		down.FailWith(func(int, []relay.Message) error { return errors.New("down") })
		p2 := mustNew(t, down, relay.WithDrainTimeout(2*time.Second))
		stop2 := run(t, p2)
		p2.Send(t.Context(), relay.Batch{Samples: samples(0, 20)})
		synctest.Wait()
		stop2()
		start := time.Now()
		p2.Close()
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("Close took %v, want the 2s drain timeout", d)
		}
		if st := p2.Stats(); st.Dropped.Closed != 20 || st.Sent != 0 {
			t.Fatalf("stats %+v, want 20 closed", st)
		}
		if _, _, _ = down.Calls(); p2.Close() != nil {
			t.Fatal("second Close failed")
		}
	})
}

func TestPipelineSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		down := &relaytest.Memory{}
		down.FailWith(func(int, []relay.Message) error { return errors.New("down") })
		p := mustNew(t, down, relay.WithSpool(dir), relay.WithName("up1"), relay.WithBatchSize(4))
		stop := run(t, p)
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 10), Events: []model.Event{{ID: "e", Kind: model.EventRuleFired, Time: t0, Source: "rule"}}})
		synctest.Wait()
		stop()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Dropped.Total() != 0 {
			t.Fatalf("stats %+v, want nothing dropped with a spool", st)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "up1.spool")); err != nil {
		t.Fatalf("spool file: %v", err)
	}
	synctest.Test(t, func(t *testing.T) {
		mem := &relaytest.Memory{}
		p := mustNew(t, mem, relay.WithSpool(dir), relay.WithName("up1"))
		if st := p.Stats(); st.Buffered != 11 {
			t.Fatalf("buffered %d after restart, want 11", st.Buffered)
		}
		stop := run(t, p)
		synctest.Wait()
		stop()
		p.Close()
		got := mem.Messages()
		if len(got) != 11 {
			t.Fatalf("delivered %d after restart, want 11", len(got))
		}
		for i := 0; i < 10; i++ {
			if got[i].Value != float64(i) || got[i].Point != fmt.Sprintf("pcs1.p%d", i%4) || !got[i].Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("message %d: %+v", i, got[i])
			}
		}
		if got[10].Kind != relay.KindEvent || got[10].Key != "rule" {
			t.Fatalf("event after restart: %+v", got[10])
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "up1.spool")); !os.IsNotExist(err) {
		t.Fatalf("spool file still there after an empty close: %v", err)
	}
}

func TestPipelineCorruptSpool(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.spool")
	os.WriteFile(path, []byte("{\"ems_relay_spool\":1}\n{\"k\":1,\"t\":\"2026-01-01T00:00:00Z\",\"b\":\"eA==\"}\n{not json\n"), 0o600)
	_, err := relay.New(&relaytest.Memory{}, relay.WithSpool(dir), relay.WithName("r"))
	var ce *model.ConfigError
	if !errors.As(err, &ce) || ce.Line != 3 || ce.File != path {
		t.Fatalf("New with a corrupt spool: %v, want a ConfigError at %s:3", err, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("corrupt spool was removed: %v", err)
	}
}

func TestPipelineFormatErrorCounted(t *testing.T) {
	p := mustNew(t, &relaytest.Memory{}, relay.WithFormatter(relay.LineProtocol{}))
	defer p.Close()
	s := samples(0, 3)
	s[1].Value = nan()
	err := p.Send(t.Context(), relay.Batch{Samples: s})
	if !errors.Is(err, relay.ErrFormat) {
		t.Fatalf("Send: %v, want ErrFormat", err)
	}
	if st := p.Stats(); st.Dropped.Format != 1 || st.Buffered != 2 {
		t.Fatalf("stats %+v, want 1 format drop and 2 buffered", st)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	bad := []relay.Option{
		relay.WithName("a b"), relay.WithPoints("[x"), relay.WithEventKinds("[x"), relay.WithFormatter(nil),
		relay.WithBuffer(0, 1), relay.WithBuffer(1, 0), relay.WithOverflow(9), relay.WithSpool(""),
		relay.WithRateLimit(0, 1), relay.WithRateLimit(1, 0), relay.WithBreaker(0, time.Second),
		relay.WithBreaker(1, 0), relay.WithRetry(0, 1), relay.WithRetry(2, 1), relay.WithBatchSize(0),
		relay.WithSendTimeout(0), relay.WithDrainTimeout(-1),
	}
	for i, o := range bad {
		if _, err := relay.New(&relaytest.Memory{}, o); err == nil {
			t.Errorf("option %d accepted, want an error", i)
		}
	}
	if _, err := relay.New(nil); err == nil {
		t.Error("nil adapter accepted")
	}
	_, err := relay.New(&relaytest.Memory{}, relay.WithBuffer(0, 0), relay.WithBatchSize(-1))
	if err == nil || !strings.Contains(err.Error(), "max messages") || !strings.Contains(err.Error(), "WithBatchSize") {
		t.Errorf("New reported %v, want every bad option", err)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		a := &relaytest.Memory{}
		pa := mustNew(t, a, relay.WithName("a"), relay.WithMetrics(reg), relay.WithBuffer(2, 1<<20))
		pb := mustNew(t, &relaytest.Memory{}, relay.WithName("b"), relay.WithMetrics(reg))
		if _, err := relay.New(&relaytest.Memory{}, relay.WithName("a"), relay.WithMetrics(reg)); err == nil {
			t.Fatal("a second relay named a registered on the same registry")
		}
		pa.Send(t.Context(), relay.Batch{Samples: samples(0, 5)})
		stop := run(t, pa)
		synctest.Wait()
		stop()
		got := gather(t, reg)
		want := map[string]float64{
			`ems_relay_dropped_messages_total{reason="overflow",relay="a"}`: 3,
			`ems_relay_dropped_messages_total{reason="overflow",relay="b"}`: 0,
			`ems_relay_dropped_messages_total{reason="closed",relay="a"}`:   0,
			`ems_relay_sent_messages_total{relay="a"}`:                      2,
			`ems_relay_sent_messages_total{relay="b"}`:                      0,
			`ems_relay_buffered_messages{relay="a"}`:                        0,
			`ems_relay_breaker_state{relay="a"}`:                            0,
			`ems_relay_send_duration_seconds_count{relay="a"}`:              1,
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		pa.Close()
		pb.Close()
		if n := len(gather(t, reg)); n != 0 {
			t.Fatalf("%d metrics left after Close, want 0", n)
		}
	})
}

func TestPipelineConnectRetriesAndReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &recvAdapter{}
		a.ConnectWith(func(call int) error {
			if call < 3 {
				return errors.New("refused")
			}
			return nil
		})
		var got []model.Command
		var mu sync.Mutex
		p := mustNew(t, a, relay.WithRetry(time.Second, time.Second))
		p.SetExecutor(relay.ExecutorFunc(func(_ context.Context, c model.Command) error {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			return nil
		}))
		stop := run(t, p)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, _, connects := a.Calls(); connects != 3 {
			t.Fatalf("Connect called %d times, want 3", connects)
		}
		mu.Lock()
		if len(got) != 1 || got[0].Point != "bms1.setpoint" {
			t.Fatalf("executed %v", got)
		}
		mu.Unlock()
		if !p.Stats().Connected {
			t.Fatal("not connected")
		}
		stop()
		p.Close()
	})
}

type recvAdapter struct{ relaytest.Memory }

func (r *recvAdapter) Receive(ctx context.Context, exec relay.Executor) error {
	if err := exec.Execute(ctx, model.Command{Point: "bms1.setpoint", Value: 1}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// gather flattens a registry into "name{labels}" -> value (histograms as
// name_count).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[mf.GetName()+key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[mf.GetName()+key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"+key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestPipelineSpoolCheckpointSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		down := &relaytest.Memory{}
		down.FailWith(func(int, []relay.Message) error { return errors.New("down") })
		p := mustNew(t, down, relay.WithSpool(dir), relay.WithSpoolInterval(time.Second), relay.WithName("ck"), relay.WithBatchSize(4))
		stop := run(t, p)
		p.Send(t.Context(), relay.Batch{Samples: samples(0, 10)})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		// The process "crashes": Run stops, Close is never reached before a
		// new process starts from the same spool directory.
		stop()
		p2 := mustNew(t, &relaytest.Memory{}, relay.WithSpool(dir), relay.WithName("ck"))
		if st := p2.Stats(); st.Buffered != 10 {
			t.Fatalf("buffered %d from the checkpoint, want 10 (4 pending + 6 buffered)", st.Buffered)
		}
		p2.Close()
		p.Close()
	})
	if _, err := relay.New(&relaytest.Memory{}, relay.WithSpoolInterval(time.Second)); err == nil {
		t.Fatal("WithSpoolInterval without WithSpool accepted")
	}
}

// FuzzSpool feeds arbitrary spool files to New: it loads them or reports
// a ConfigError naming the file, and never panics or loses the file.
func FuzzSpool(f *testing.F) {
	f.Add([]byte("{\"ems_relay_spool\":1}\n{\"k\":1,\"p\":\"a.b\",\"v\":1,\"t\":\"2026-01-01T00:00:00Z\",\"b\":\"eA==\"}\n"))
	f.Add([]byte("{\"ems_relay_spool\":1}\n{\"k\":3}\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.spool")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := relay.New(&relaytest.Memory{}, relay.WithSpool(dir), relay.WithName("f"), relay.WithBuffer(100, 1<<20))
		if err != nil {
			var ce *model.ConfigError
			if !errors.As(err, &ce) || ce.File != path {
				t.Fatalf("error %v is not a ConfigError naming %s", err, path)
			}
			if _, serr := os.Stat(path); serr != nil {
				t.Fatalf("a rejected spool file was removed: %v", serr)
			}
			return
		}
		st := p.Stats()
		if st.Accepted != uint64(st.Buffered)+st.Dropped.Total() {
			t.Fatalf("loaded %d, buffered %d, dropped %+v", st.Accepted, st.Buffered, st.Dropped)
		}
		p.Close()
	})
}
