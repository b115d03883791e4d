package relay

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/model"
)

func msg(i int, payload int) Message {
	return Message{Kind: KindSample, Point: "p", Payload: make([]byte, payload), Value: float64(i)}
}

func values(ms []Message) []float64 {
	out := make([]float64, len(ms))
	for i := range ms {
		out[i] = ms[i].Value
	}
	return out
}

func pushN(t *testing.T, r *ring, from, n, payload int) {
	t.Helper()
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = msg(from+i, payload)
	}
	if err := r.push(context.Background(), ms); err != nil {
		t.Fatalf("push: %v", err)
	}
}

func TestRingDropOldest(t *testing.T) {
	r := newRing(5, 1<<20, DropOldest)
	pushN(t, r, 0, 8, 1)
	if n, _ := r.len(); n != 5 {
		t.Fatalf("len %d, want 5", n)
	}
	if d := r.dropCounts(); d.Overflow != 3 || d.Total() != 3 {
		t.Fatalf("drops %+v, want 3 overflow", d)
	}
	got := values(r.pop(nil, 100))
	if fmt.Sprint(got) != "[3 4 5 6 7]" {
		t.Fatalf("popped %v, want the 5 newest", got)
	}
}

func TestRingDropNewest(t *testing.T) {
	r := newRing(5, 1<<20, DropNewest)
	pushN(t, r, 0, 8, 1)
	if d := r.dropCounts(); d.Overflow != 3 {
		t.Fatalf("drops %+v, want 3 overflow", d)
	}
	if got := values(r.pop(nil, 100)); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("popped %v, want the 5 oldest", got)
	}
}

func TestRingByteBound(t *testing.T) {
	// Each message counts payload 9 + point 1 = 10 bytes.
	r := newRing(100, 35, DropOldest)
	pushN(t, r, 0, 5, 9)
	n, b := r.len()
	if n != 3 || b != 30 {
		t.Fatalf("len %d bytes %d, want 3 and 30", n, b)
	}
	if d := r.dropCounts(); d.Overflow != 2 {
		t.Fatalf("drops %+v, want 2 overflow", d)
	}
	// One message bigger than the whole bound is dropped as oversize and
	// evicts nothing.
	pushN(t, r, 10, 1, 100)
	if d := r.dropCounts(); d.Oversize != 1 || d.Overflow != 2 {
		t.Fatalf("drops %+v, want 1 oversize, 2 overflow", d)
	}
	if n, _ := r.len(); n != 3 {
		t.Fatalf("len %d after oversize, want 3", n)
	}
}

func TestRingWrapAndGrow(t *testing.T) {
	r := newRing(3000, 1<<30, DropOldest)
	next, want := 0, 0
	for round := 0; round < 50; round++ {
		pushN(t, r, next, 97, 1)
		next += 97
		for _, v := range values(r.pop(nil, 61)) {
			if v != float64(want) {
				t.Fatalf("round %d: popped %v, want %d", round, v, want)
			}
			want++
		}
	}
	rest := values(r.pop(nil, 1<<30))
	for _, v := range rest {
		if v != float64(want) {
			t.Fatalf("popped %v, want %d", v, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d in total, pushed %d", want, next)
	}
	if n, b := r.len(); n != 0 || b != 0 {
		t.Fatalf("len %d bytes %d after draining, want 0 0", n, b)
	}
}

func TestRingBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRing(2, 1<<20, Block)
		pushN(t, r, 0, 2, 1)
		done := make(chan error, 1)
		go func() { done <- r.push(context.Background(), []Message{msg(2, 1), msg(3, 1)}) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("push into a full Block buffer returned %v, want it to wait", err)
		default:
		}
		if got := values(r.pop(nil, 1)); fmt.Sprint(got) != "[0]" {
			t.Fatalf("popped %v", got)
		}
		synctest.Wait()
		if got := values(r.pop(nil, 1)); fmt.Sprint(got) != "[1]" {
			t.Fatalf("popped %v", got)
		}
		if err := <-done; err != nil {
			t.Fatalf("push: %v", err)
		}
		if got := values(r.pop(nil, 10)); fmt.Sprint(got) != "[2 3]" {
			t.Fatalf("popped %v", got)
		}
		if d := r.dropCounts(); d.Total() != 0 {
			t.Fatalf("drops %+v under Block, want none", d)
		}
	})
}

func TestRingBlockCanceledAndClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRing(1, 1<<20, Block)
		pushN(t, r, 0, 1, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := r.push(ctx, []Message{msg(1, 1), msg(2, 1), msg(3, 1)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("push: %v, want deadline exceeded", err)
		}
		if d := r.dropCounts(); d.Canceled != 3 {
			t.Fatalf("drops %+v, want 3 canceled", d)
		}
		done := make(chan error, 1)
		go func() { done <- r.push(context.Background(), []Message{msg(4, 1), msg(5, 1)}) }()
		synctest.Wait()
		r.close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked push after close: %v, want ErrClosed", err)
		}
		if d := r.dropCounts(); d.Closed != 2 {
			t.Fatalf("drops %+v, want 2 closed", d)
		}
	})
}

// BenchmarkBuffer measures one push and one pop of a 64-byte message
// through the ring, in batches of 100 as the pipeline moves them.
func BenchmarkBuffer(b *testing.B) {
	for _, policy := range []Overflow{DropOldest, Block} {
		b.Run(policy.String(), func(b *testing.B) {
			r := newRing(10000, 16<<20, policy)
			batch := make([]Message, 100)
			for i := range batch {
				batch[i] = Message{Kind: KindSample, Point: "pcs1.active_power", Key: "pcs1.active_power", Payload: make([]byte, 64)}
			}
			ctx := context.Background()
			var dst []Message
			b.ReportAllocs()
			for b.Loop() {
				_ = r.push(ctx, batch)
				dst = r.pop(dst[:0], 100)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/msg")
		})
	}
}

// BenchmarkBufferOverflow measures pushes into a full DropOldest buffer
// (each push evicts one message).
func BenchmarkBufferOverflow(b *testing.B) {
	r := newRing(1000, 16<<20, DropOldest)
	m := []Message{{Kind: KindSample, Point: "p", Payload: make([]byte, 64)}}
	for range 1000 {
		_ = r.push(context.Background(), m)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.push(context.Background(), m)
	}
	if d := r.dropCounts(); d.Overflow != uint64(b.N) {
		b.Fatalf("overflow %d, want %d", d.Overflow, b.N)
	}
}

// BenchmarkSend measures Pipeline.Send of a 100-sample batch (filter, JSON
// format, buffer) without delivery: the DropOldest buffer evicts.
func BenchmarkSend(b *testing.B) {
	p, err := New(nopAdapter{}, WithBuffer(10000, 64<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	batch := Batch{Samples: make([]model.Sample, 100)}
	now := time.Now()
	for i := range batch.Samples {
		batch.Samples[i] = model.Sample{Point: fmt.Sprintf("pcs1.p%d", i), Value: float64(i) * 1.25, Time: now}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Send(ctx, batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Samples)), "ns/sample")
}

type nopAdapter struct{}

func (nopAdapter) Send(context.Context, []Message) error { return nil }
