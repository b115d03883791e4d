package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Policy is what a consumer's queue does when it is full.
type Policy uint8

const (
	// Block makes the publisher wait until there is room (or its context
	// ends): nothing is lost, and a slow consumer slows collection down.
	Block Policy = iota
	// DropOldest discards the oldest queued batch to make room and counts
	// its samples and events as dropped; the publisher never waits.
	DropOldest
)

// String returns "block" or "drop_oldest".
func (p Policy) String() string {
	if p == DropOldest {
		return "drop_oldest"
	}
	return "block"
}

// Batch is what flows through the data path: samples, events, or both.
type Batch struct {
	Samples []model.Sample
	Events  []model.Event
	Time    time.Time // when the batch entered the data path

	refs atomic.Int32
	pool *sync.Pool
}

// NewBatch returns a batch from the pool with room for n samples.
func NewBatch(n int) *Batch {
	b := batchPool.Get().(*Batch)
	if cap(b.Samples) < n {
		b.Samples = make([]model.Sample, 0, n)
	}
	b.Samples = b.Samples[:0]
	b.Events = nil
	b.pool = &batchPool
	return b
}

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// Retain adds n references.
func (b *Batch) Retain(n int32) { b.refs.Add(n) }

// Release drops one reference; the last one returns the batch to its pool.
func (b *Batch) Release() {
	if b.refs.Add(-1) == 0 && b.pool != nil {
		clear(b.Samples)
		b.Samples = b.Samples[:0]
		b.Events = nil
		b.pool.Put(b)
	}
}

// Handler processes one batch. It must not retain the batch after it returns.
type Handler func(ctx context.Context, b *Batch)

// Ticker is called every Tick interval from the consumer's goroutine, never
// concurrently with its Handler.
type Ticker func(ctx context.Context, now time.Time)

// Consumer is a named stage with its own queue and goroutine.
type Consumer struct {
	Name     string
	Policy   Policy
	Size     int // queue capacity in batches
	Handle   Handler
	Tick     Ticker
	Interval time.Duration // tick interval; 0 = no ticks
	// Samples/Events select what the consumer receives.
	Samples, Events bool

	q         chan *Batch
	mu        sync.RWMutex // read-held while enqueuing, write-held to close q
	closed    bool
	done      chan struct{}
	processed atomic.Uint64 // samples handled
	events    atomic.Uint64 // events handled
	dropped   atomic.Uint64 // samples dropped
	droppedEv atomic.Uint64 // events dropped
	lagNanos  atomic.Int64  // age of the last batch when it was handled
}

// Stats are a consumer's counters.
type Stats struct {
	Name            string        `json:"name"`
	Policy          string        `json:"policy"`
	Processed       uint64        `json:"processed_samples"`
	ProcessedEvents uint64        `json:"processed_events"`
	Dropped         uint64        `json:"dropped_samples"`
	DroppedEvents   uint64        `json:"dropped_events"`
	Depth           int           `json:"queue_depth"`
	Capacity        int           `json:"queue_capacity"`
	Lag             time.Duration `json:"lag"`
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("pipeline: closed")

// Pipeline fans batches out to consumers.
type Pipeline struct {
	consumers []*Consumer
	started   bool
}

// New returns a pipeline over the consumers; queue sizes below 1 become 1.
func New(consumers ...*Consumer) *Pipeline {
	p := &Pipeline{}
	for _, c := range consumers {
		if c.Size < 1 {
			c.Size = 1
		}
		c.q = make(chan *Batch, c.Size)
		c.done = make(chan struct{})
		p.consumers = append(p.consumers, c)
	}
	return p
}

// Consumers returns the consumers in the order given to New.
func (p *Pipeline) Consumers() []*Consumer { return p.consumers }

// Start starts one goroutine per consumer. They run until Close has been
// called and their queue is drained.
func (p *Pipeline) Start(ctx context.Context) {
	p.started = true
	for _, c := range p.consumers {
		go func() {
			defer close(c.done)
			c.loop(ctx)
		}()
	}
}

func (c *Consumer) loop(ctx context.Context) {
	var tick <-chan time.Time
	if c.Interval > 0 && c.Tick != nil {
		t := time.NewTicker(c.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case b, ok := <-c.q:
			if !ok {
				return
			}
			c.lagNanos.Store(int64(time.Since(b.Time)))
			c.Handle(ctx, b)
			c.processed.Add(uint64(len(b.Samples)))
			c.events.Add(uint64(len(b.Events)))
			b.Release()
		case now := <-tick:
			c.Tick(ctx, now)
		}
	}
}

// Publish hands b to every consumer that wants it, taking ownership of b:
// the caller must not touch b afterwards. Under the Block policy it waits
// for room until ctx ends; then the batch is dropped for that consumer and
// counted, and Publish returns ctx.Err().
//
// A consumer that has been closed no longer receives batches; what it would
// have received is counted as dropped and Publish returns ErrClosed.
func (p *Pipeline) Publish(ctx context.Context, b *Batch) error {
	if b.Time.IsZero() {
		b.Time = time.Now()
	}
	// One reference for the publisher, released at the end, so that the
	// batch is not recycled while it is still being fanned out.
	b.refs.Store(1)
	var err error
	for _, c := range p.consumers {
		if !(c.Samples && len(b.Samples) > 0 || c.Events && len(b.Events) > 0) {
			continue
		}
		c.mu.RLock()
		if c.closed {
			c.dropped.Add(uint64(len(b.Samples)))
			c.droppedEv.Add(uint64(len(b.Events)))
			err = ErrClosed
		} else {
			b.Retain(1)
			if e := c.enqueue(ctx, b); e != nil {
				err = e
			}
		}
		c.mu.RUnlock()
	}
	b.Release()
	return err
}

func (c *Consumer) enqueue(ctx context.Context, b *Batch) error {
	select {
	case c.q <- b:
		return nil
	default:
	}
	if c.Policy == Block {
		select {
		case c.q <- b:
			return nil
		case <-ctx.Done():
			c.drop(b)
			return ctx.Err()
		}
	}
	for {
		select {
		case c.q <- b:
			return nil
		default:
		}
		select {
		case old := <-c.q:
			c.drop(old)
		default:
		}
	}
}

func (c *Consumer) drop(b *Batch) {
	c.dropped.Add(uint64(len(b.Samples)))
	c.droppedEv.Add(uint64(len(b.Events)))
	b.Release()
}

// Stats returns the counters of every consumer.
func (p *Pipeline) Stats() []Stats {
	out := make([]Stats, len(p.consumers))
	for i, c := range p.consumers {
		out[i] = c.Stats()
	}
	return out
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	return Stats{
		Name: c.Name, Policy: c.Policy.String(),
		Processed: c.processed.Load(), ProcessedEvents: c.events.Load(),
		Dropped: c.dropped.Load(), DroppedEvents: c.droppedEv.Load(),
		Depth: len(c.q), Capacity: cap(c.q), Lag: time.Duration(c.lagNanos.Load()),
	}
}

// CloseConsumers stops the named consumers from accepting batches, lets
// them drain their queues and waits for their goroutines to return. Close
// the producers of events (alarm, rule) before the consumers of events
// (history, relays) so that nothing they emit while draining is lost.
func (p *Pipeline) CloseConsumers(names ...string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var closing []*Consumer
	for _, c := range p.consumers {
		if !want[c.Name] {
			continue
		}
		c.mu.Lock()
		if !c.closed {
			c.closed = true
			close(c.q)
			closing = append(closing, c)
		}
		c.mu.Unlock()
	}
	for _, c := range closing {
		if p.started {
			<-c.done
		} else {
			for b := range c.q {
				b.Release()
			}
		}
	}
}

// Close closes every consumer still open, in the order given to New.
func (p *Pipeline) Close() {
	for _, c := range p.consumers {
		p.CloseConsumers(c.Name)
	}
}
