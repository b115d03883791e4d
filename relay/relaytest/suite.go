package relaytest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
)

// Harness is one adapter connected to one real peer.
type Harness struct {
	// Adapter is the adapter under test, not yet connected.
	Adapter relay.Adapter
	// Received returns the payloads the peer has received so far, in
	// arrival order. Duplicates are allowed (delivery is at least once).
	Received func() [][]byte
	// Unordered is set for peers that do not keep the order of messages
	// with different keys (Kafka partitions); order is then checked per
	// key (point) only.
	Unordered bool
	// Timeout bounds each wait for delivery (default 10s).
	Timeout time.Duration
}

// Run runs the conformance suite. newHarness is called once per subtest and
// must register its cleanup (peer shutdown) with t.Cleanup; the suite
// closes the adapter itself when it is a relay.Closer.
//
// What it checks: Connect (when implemented) succeeds; a batch is delivered
// completely, payloads byte for byte; an empty batch is a no-op; messages of
// one point keep their order across batches; Send with a canceled context
// returns (with or without an error) instead of hanging; Close is
// idempotent (calling it twice returns); Send after Close fails.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	t.Run("DeliversBatch", func(t *testing.T) {
		h, ctx := setup(t, newHarness)
		msgs := Messages("dev1", 50, 0)
		if err := h.Adapter.Send(ctx, msgs); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := waitFor(t, h, len(msgs))
		assertContains(t, got, msgs)
	})
	t.Run("EmptyBatch", func(t *testing.T) {
		h, ctx := setup(t, newHarness)
		if err := h.Adapter.Send(ctx, nil); err != nil {
			t.Fatalf("Send(nil): %v", err)
		}
		msgs := Messages("dev1", 1, 0)
		if err := h.Adapter.Send(ctx, msgs); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := waitFor(t, h, 1)
		if len(got) != 1 {
			t.Fatalf("received %d payloads after an empty and a one-message batch, want 1", len(got))
		}
	})
	t.Run("OrderPerPoint", func(t *testing.T) {
		h, ctx := setup(t, newHarness)
		var all []relay.Message
		for b := 0; b < 5; b++ {
			msgs := Messages("dev2", 20, b*20)
			all = append(all, msgs...)
			if err := h.Adapter.Send(ctx, msgs); err != nil {
				t.Fatalf("Send batch %d: %v", b, err)
			}
		}
		got := waitFor(t, h, len(all))
		assertContains(t, got, all)
		assertOrder(t, got, all, h.Unordered)
	})
	t.Run("CanceledContext", func(t *testing.T) {
		h, _ := setup(t, newHarness)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = h.Adapter.Send(ctx, Messages("dev3", 10, 0))
		}()
		select {
		case <-done:
		case <-time.After(h.Timeout):
			t.Fatalf("Send with a canceled context did not return within %v", h.Timeout)
		}
	})
	t.Run("CloseTwice", func(t *testing.T) {
		h, _ := setup(t, newHarness)
		c, ok := h.Adapter.(relay.Closer)
		if !ok {
			t.Skip("adapter is not a relay.Closer")
		}
		if err := c.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		_ = c.Close() // must return; the error is the adapter's choice
	})
	t.Run("SendAfterClose", func(t *testing.T) {
		h, ctx := setup(t, newHarness)
		c, ok := h.Adapter.(relay.Closer)
		if !ok {
			t.Skip("adapter is not a relay.Closer")
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := h.Adapter.Send(ctx, Messages("dev4", 1, 0)); err == nil {
			t.Fatal("Send after Close returned nil: the pipeline would count the batch as delivered")
		}
	})
}

func setup(t *testing.T, newHarness func(t *testing.T) Harness) (Harness, context.Context) {
	t.Helper()
	h := newHarness(t)
	if h.Adapter == nil || h.Received == nil {
		t.Fatal("relaytest: Harness needs Adapter and Received")
	}
	if h.Timeout <= 0 {
		h.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*h.Timeout)
	t.Cleanup(cancel)
	if c, ok := h.Adapter.(relay.Connector); ok {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}
	if c, ok := h.Adapter.(relay.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return h, ctx
}

// Messages returns n JSON-formatted sample messages of points dev.p0 ..
// dev.p2 with sequence numbers from seq0, as the pipeline would build them.
func Messages(dev string, n, seq0 int) []relay.Message {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]relay.Message, n)
	for i := range out {
		seq := seq0 + i
		s := model.Sample{Point: fmt.Sprintf("%s.p%d", dev, seq%3), Value: float64(seq), Time: base.Add(time.Duration(seq) * time.Millisecond)}
		payload, _ := relay.JSON{}.AppendSample(nil, s)
		out[i] = relay.Message{Kind: relay.KindSample, Point: s.Point, Value: s.Value, Time: s.Time, Key: s.Point, Payload: payload}
	}
	return out
}

func waitFor(t *testing.T, h Harness, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(h.Timeout)
	for {
		got := h.Received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer received %d payloads within %v, want %d", len(got), h.Timeout, n)
		}
		time.Sleep(5 * time.Millisecond) // polling a real peer, not a timing assumption
	}
}

func assertContains(t *testing.T, got [][]byte, want []relay.Message) {
	t.Helper()
	for _, m := range want {
		found := false
		for _, g := range got {
			if bytes.Equal(g, m.Payload) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("payload %s not received (received %d payloads)", m.Payload, len(got))
		}
	}
}

// assertOrder checks that the first arrival of each wanted payload is in
// the wanted order (per point when unordered).
func assertOrder(t *testing.T, got [][]byte, want []relay.Message, perKey bool) {
	t.Helper()
	first := make(map[string]int)
	for i, g := range got {
		if _, ok := first[string(g)]; !ok {
			first[string(g)] = i
		}
	}
	last := make(map[string]int)
	for _, m := range want {
		key := ""
		if perKey {
			key = m.Key
		}
		pos := first[string(m.Payload)]
		if prev, ok := last[key]; ok && pos < prev {
			t.Fatalf("payload %s arrived before an earlier message of the same %s", m.Payload, map[bool]string{true: "point", false: "stream"}[perKey])
		}
		last[key] = pos
	}
}
