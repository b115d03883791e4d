package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func batchOf(start, n int) *Batch {
	b := NewBatch(n)
	for i := 0; i < n; i++ {
		b.Samples = append(b.Samples, model.Sample{Point: "p", Value: float64(start + i)})
	}
	return b
}

// TestBlockLosesNothingDropOldestCounts runs a Block consumer and a
// stalled DropOldest consumer. The Block consumer must see every sample in
// order; the DropOldest consumer must keep the batch in its handler plus
// the newest batches that fit its queue, and count exactly the rest.
func TestBlockLosesNothingDropOldestCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gateBlock, gateDrop := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		var blockSeen, dropSeen []float64
		block := &Consumer{Name: "history", Policy: Block, Size: 2, Samples: true, Handle: func(_ context.Context, b *Batch) {
			<-gateBlock
			mu.Lock()
			for _, s := range b.Samples {
				blockSeen = append(blockSeen, s.Value)
			}
			mu.Unlock()
		}}
		drop := &Consumer{Name: "relay", Policy: DropOldest, Size: 3, Samples: true, Handle: func(_ context.Context, b *Batch) {
			<-gateDrop
			mu.Lock()
			for _, s := range b.Samples {
				dropSeen = append(dropSeen, s.Value)
			}
			mu.Unlock()
		}}
		p := New(block, drop)
		p.Start(context.Background())
		const batches, size = 20, 10
		published := make(chan struct{})
		go func() {
			for i := 0; i < batches; i++ {
				if err := p.Publish(context.Background(), batchOf(i*size, size)); err != nil {
					t.Errorf("publish: %v", err)
				}
			}
			close(published)
		}()
		synctest.Wait()
		// The publisher is blocked by the Block consumer: one batch in its
		// handler and 2 queued; nothing has been dropped for it.
		if st := block.Stats(); st.Depth != 2 || st.Dropped != 0 {
			t.Fatalf("block stats while stalled = %+v", st)
		}
		close(gateBlock)
		<-published
		synctest.Wait()
		// The stalled DropOldest consumer holds batch 0 in its handler and
		// the newest 3 batches in its queue; the other 16 were dropped.
		if st := drop.Stats(); st.Dropped != 16*size || st.Depth != 3 {
			t.Fatalf("drop stats = %+v, want 160 dropped, depth 3", st)
		}
		close(gateDrop)
		p.Close()
		if len(blockSeen) != batches*size {
			t.Fatalf("block consumer saw %d samples, want %d", len(blockSeen), batches*size)
		}
		for i, v := range blockSeen {
			if v != float64(i) {
				t.Fatalf("block consumer order broken at %d: %g", i, v)
			}
		}
		var want []float64
		for v := 0; v < size; v++ {
			want = append(want, float64(v))
		}
		for v := 17 * size; v < batches*size; v++ {
			want = append(want, float64(v))
		}
		if len(dropSeen) != len(want) {
			t.Fatalf("drop consumer saw %v, want %v", dropSeen, want)
		}
		for i := range want {
			if dropSeen[i] != want[i] {
				t.Fatalf("drop consumer saw %v, want %v", dropSeen, want)
			}
		}
		if st := drop.Stats(); st.Processed != uint64(len(dropSeen)) || st.Processed+st.Dropped != batches*size {
			t.Fatalf("drop consumer counters %+v do not add up to %d", st, batches*size)
		}
	})
}

func TestBlockHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		c := &Consumer{Name: "h", Policy: Block, Size: 1, Samples: true, Handle: func(context.Context, *Batch) { <-gate }}
		p := New(c)
		p.Start(context.Background())
		_ = p.Publish(context.Background(), batchOf(0, 1)) // in the handler
		_ = p.Publish(context.Background(), batchOf(1, 1)) // queued
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.Publish(ctx, batchOf(2, 5))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("publish to a full Block queue = %v, want deadline exceeded", err)
		}
		if st := c.Stats(); st.Dropped != 5 {
			t.Fatalf("dropped = %d, want 5", st.Dropped)
		}
		close(gate)
		p.Close()
		if err := p.Publish(context.Background(), batchOf(0, 3)); !errors.Is(err, ErrClosed) {
			t.Fatalf("publish after close = %v", err)
		}
		if st := c.Stats(); st.Dropped != 8 || st.Processed != 2 {
			t.Fatalf("stats after close = %+v", st)
		}
	})
}

func TestTicksAndSelection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ticks, samples, events, streamed int
		c := &Consumer{Name: "alarm", Size: 4, Samples: true, Interval: 100 * time.Millisecond,
			Handle: func(_ context.Context, b *Batch) { samples += len(b.Samples); events += len(b.Events) },
			Tick:   func(context.Context, time.Time) { ticks++ }}
		e := &Consumer{Name: "stream", Size: 4, Events: true, Handle: func(_ context.Context, b *Batch) { streamed += len(b.Events) }}
		p := New(c, e)
		p.Start(context.Background())
		_ = p.Publish(context.Background(), batchOf(0, 3))
		ev := NewBatch(0)
		ev.Events = []model.Event{{Kind: model.EventAlarmRaised}}
		_ = p.Publish(context.Background(), ev)
		time.Sleep(time.Second + time.Millisecond)
		p.CloseConsumers("alarm")
		p.CloseConsumers("stream")
		if ticks != 10 || samples != 3 || events != 0 || streamed != 1 {
			t.Fatalf("ticks=%d samples=%d events=%d streamed=%d, want 10, 3, 0, 1", ticks, samples, events, streamed)
		}
	})
}
