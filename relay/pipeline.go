package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// Pipeline is the default Relay: filter, format, buffer, rate limit,
// circuit breaker, adapter. Send only formats and buffers; Run delivers.
// Build it with New; it is safe for concurrent use.
type Pipeline struct {
	cfg     config
	adapter Adapter
	log     *slog.Logger
	ring    *ring
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[struct{}]
	metrics *metrics

	sent      atomic.Uint64
	accepted  atomic.Uint64
	filtered  atomic.Uint64
	retries   atomic.Uint64
	failures  atomic.Uint64
	connected atomic.Bool

	mu       sync.Mutex
	pending  []Message // the batch being sent or retried (the head of the queue)
	executor Executor
	running  bool
	closed   bool
	stopRun  context.CancelFunc
	runDone  chan struct{}
}

var _ Relay = (*Pipeline)(nil)

// New builds a pipeline delivering to adapter. It returns an error for an
// invalid option or an unreadable spool file, and never starts a goroutine:
// call Run to deliver.
func New(adapter Adapter, opts ...Option) (*Pipeline, error) {
	if adapter == nil {
		return nil, errors.New("relay: New: nil adapter")
	}
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.spoolEvery > 0 && cfg.spoolDir == "" {
		errs = append(errs, errors.New("relay: WithSpoolInterval needs WithSpool"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Pipeline{
		cfg:      cfg,
		adapter:  adapter,
		log:      cfg.logger,
		ring:     newRing(cfg.maxMsgs, cfg.maxBytes, cfg.overflow),
		executor: cfg.executor,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("relay", cfg.name)
	if cfg.limit != rate.Inf {
		p.limiter = rate.NewLimiter(cfg.limit, cfg.burst)
	}
	p.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.name,
		MaxRequests: 1,
		Timeout:     cfg.breakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.breakerFails },
		IsExcluded:  func(err error) bool { return IsPermanent(err) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			p.log.Info("relay: circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	if cfg.spoolDir != "" {
		if err := p.loadSpool(); err != nil {
			return nil, err
		}
	}
	if cfg.registerer != nil {
		m, err := newMetrics(p, cfg.registerer)
		if err != nil {
			return nil, err
		}
		p.metrics = m
	}
	return p, nil
}

// Name returns the relay's name.
func (p *Pipeline) Name() string { return p.cfg.name }

// SetExecutor sets the Executor handed to an adapter that implements
// Receiver. Call it before Run; the root EMS calls it with itself.
func (p *Pipeline) SetExecutor(e Executor) {
	p.mu.Lock()
	p.executor = e
	p.mu.Unlock()
}

// Send filters and formats b and buffers the messages. It never waits on
// the network; under the Block policy it waits for room until ctx is done.
// It does not retain b. It returns ErrClosed after Close, ctx.Err() when
// Block gave up, and an error wrapping ErrFormat when some items could not
// be formatted (the others are buffered); every such item is counted.
func (p *Pipeline) Send(ctx context.Context, b Batch) error {
	msgs, ferr := p.format(b)
	if len(msgs) > 0 || ferr != nil {
		p.accepted.Add(uint64(len(msgs)))
	}
	if len(msgs) > 0 {
		if err := p.ring.push(ctx, msgs); err != nil {
			return err
		}
	}
	return ferr
}

func (p *Pipeline) format(b Batch) ([]Message, error) {
	n := 0
	if !p.cfg.noSamples {
		n += len(b.Samples)
	}
	if !p.cfg.noEvents {
		n += len(b.Events)
	}
	if n == 0 {
		p.filtered.Add(uint64(b.Len()))
		return nil, nil
	}
	msgs := make([]Message, 0, n)
	arena := make([]byte, 0, 96*n)
	var bad int
	var firstErr error
	var filtered uint64
	// add formats one item into the arena and, when it formats, appends its
	// message with the payload just written.
	add := func(m Message, appendTo func([]byte) ([]byte, error)) {
		start := len(arena)
		var err error
		if arena, err = appendTo(arena); err != nil {
			arena = arena[:start]
			bad++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		m.Payload = arena[start:len(arena):len(arena)]
		msgs = append(msgs, m)
	}
	if p.cfg.noSamples {
		filtered += uint64(len(b.Samples))
	} else {
		for i := range b.Samples {
			s := b.Samples[i]
			if !p.cfg.points.match(s.Point) {
				filtered++
				continue
			}
			add(Message{Kind: KindSample, Point: s.Point, Value: s.Value, Quality: s.Quality, Time: s.Time, Key: s.Point},
				func(dst []byte) ([]byte, error) { return p.cfg.formatter.AppendSample(dst, s) })
		}
	}
	if p.cfg.noEvents {
		filtered += uint64(len(b.Events))
	} else {
		for i := range b.Events {
			e := &b.Events[i]
			if !p.cfg.eventKinds.match(string(e.Kind)) {
				filtered++
				continue
			}
			key := e.Point
			if key == "" {
				key = e.Source
			}
			add(Message{Kind: KindEvent, Point: e.Point, Event: e.Kind, Time: e.Time, Key: key},
				func(dst []byte) ([]byte, error) { return p.cfg.formatter.AppendEvent(dst, *e) })
		}
	}
	// A payload appended after arena grew was copied into the new array;
	// the earlier ones point at the old array, which stays valid.
	if filtered > 0 {
		p.filtered.Add(filtered)
	}
	if bad > 0 {
		p.ring.addDrops(func(d *Drops) { d.Format += uint64(bad) })
		p.log.Warn("relay: items not formatted", "count", bad, "err", firstErr)
		if !errors.Is(firstErr, ErrFormat) {
			firstErr = fmt.Errorf("%w: %w", ErrFormat, firstErr)
		}
		return msgs, fmt.Errorf("%d item(s) dropped: %w", bad, firstErr)
	}
	return msgs, nil
}

// Stats is a snapshot of the pipeline's counters. Accepted counts messages
// formatted by Send; each of them is later Sent, counted in Dropped, or
// still Buffered or Pending.
type Stats struct {
	Accepted      uint64 // messages formatted by Send (before the buffer)
	Filtered      uint64 // samples and events left out by the filters
	Sent          uint64 // messages the adapter accepted
	Retries       uint64 // failed attempts that were retried
	Buffered      int    // messages in the buffer
	BufferedBytes int    // their size
	Pending       int    // messages of the batch being sent or retried
	Dropped       Drops
	Breaker       string // "closed", "half-open" or "open"
	Connected     bool   // the adapter is connected (always true without Connector)
}

// Stats returns the current counters.
func (p *Pipeline) Stats() Stats {
	n, nb := p.ring.len()
	p.mu.Lock()
	pend := len(p.pending)
	p.mu.Unlock()
	return Stats{
		Accepted:      p.accepted.Load(),
		Filtered:      p.filtered.Load(),
		Sent:          p.sent.Load(),
		Retries:       p.retries.Load(),
		Buffered:      n,
		BufferedBytes: nb,
		Pending:       pend,
		Dropped:       p.ring.dropCounts(),
		Breaker:       p.breaker.State().String(),
		Connected:     p.connected.Load(),
	}
}

// Run connects the adapter (when it is a Connector, retrying with backoff),
// starts its Receiver (when it is one and an Executor is set) and delivers
// buffered messages until ctx is done or Close is called. It returns nil
// after either. A failed batch is retried first, with exponential backoff
// and jitter, until it is delivered or refused with a Permanent error.
// Run may be called again after it returned (not concurrently).
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.running {
		p.mu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	p.running = true
	p.stopRun = cancel
	done := make(chan struct{})
	p.runDone = done
	exec := p.executor
	p.mu.Unlock()
	defer func() {
		cancel()
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
		close(done)
	}()

	if err := p.connect(ctx); err != nil {
		return nil // ctx done
	}
	var wg sync.WaitGroup
	if rc, ok := p.adapter.(Receiver); ok && exec != nil {
		wg.Go(func() {
			if err := rc.Receive(ctx, exec); err != nil && ctx.Err() == nil {
				p.log.Error("relay: receiver stopped", "err", err)
			}
		})
	}
	if p.cfg.spoolEvery > 0 {
		wg.Go(func() { p.checkpoints(ctx) })
	}
	p.loop(ctx, false)
	wg.Wait()
	return nil
}

func (p *Pipeline) checkpoints(ctx context.Context) {
	t := time.NewTicker(p.cfg.spoolEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.checkpoint(); err != nil {
				p.log.Error("relay: spool checkpoint failed", "err", err)
			}
		}
	}
}

func (p *Pipeline) connect(ctx context.Context) error {
	c, ok := p.adapter.(Connector)
	if !ok {
		p.connected.Store(true)
		return nil
	}
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.sendTimeout)
		err := c.Connect(cctx)
		cancel()
		if err == nil {
			p.connected.Store(true)
			p.log.Info("relay: connected")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn("relay: connect failed", "attempt", attempt+1, "err", err)
		if err := sleep(ctx, p.backoff(attempt)); err != nil {
			return err
		}
	}
}

// loop delivers until ctx is done; with drain it returns when the buffer
// is empty too.
func (p *Pipeline) loop(ctx context.Context, drain bool) {
	max := p.cfg.batchSize
	if p.limiter != nil {
		max = min(max, p.cfg.burst)
	}
	attempt := 0
	var scratch []Message
	for ctx.Err() == nil {
		p.mu.Lock()
		batch := p.pending
		p.mu.Unlock()
		if len(batch) == 0 {
			batch = p.ring.pop(scratch[:0], max)
			if len(batch) == 0 {
				if drain {
					return
				}
				if p.ring.wait(ctx) != nil {
					return
				}
				continue
			}
			p.mu.Lock()
			p.pending = batch
			p.mu.Unlock()
			attempt = 0
		}
		if p.limiter != nil {
			if err := p.limiter.WaitN(ctx, len(batch)); err != nil {
				return
			}
		}
		err := p.attempt(ctx, batch)
		switch {
		case err == nil:
			p.sent.Add(uint64(len(batch)))
		case IsPermanent(err):
			n := uint64(len(batch))
			p.ring.addDrops(func(d *Drops) { d.Rejected += n })
			p.log.Error("relay: batch rejected", "messages", n, "err", err)
		default:
			if ctx.Err() != nil {
				return // stopping: the batch stays pending, no retry is counted
			}
			p.retries.Add(1)
			attempt++
			if !errors.Is(err, gobreaker.ErrOpenState) {
				p.log.Warn("relay: send failed, will retry", "messages", len(batch), "attempt", attempt, "err", err)
			}
			if sleep(ctx, p.backoff(attempt-1)) != nil {
				return
			}
			continue
		}
		clear(batch)
		scratch = batch
		p.mu.Lock()
		p.pending = nil
		p.mu.Unlock()
		attempt = 0
	}
}

func (p *Pipeline) attempt(ctx context.Context, batch []Message) error {
	start := time.Now()
	_, err := p.breaker.Execute(func() (struct{}, error) {
		sctx, cancel := context.WithTimeout(ctx, p.cfg.sendTimeout)
		defer cancel()
		return struct{}{}, p.adapter.Send(sctx, batch)
	})
	if p.metrics != nil && !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
		p.metrics.latency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		p.failures.Add(1)
	}
	return err
}

// backoff returns the wait before retry attempt (0-based): min*2^attempt
// capped at max, of which up to half is random.
func (p *Pipeline) backoff(attempt int) time.Duration {
	d := p.cfg.retryMin
	for i := 0; i < attempt && d < p.cfg.retryMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.retryMax)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops Run, refuses further Sends and then, with a spool, writes the
// buffer to it; without one it keeps delivering for up to the drain timeout
// and counts what is left as dropped ("closed"). It closes the adapter when
// it is a Closer. Close is idempotent.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	stop, done := p.stopRun, p.runDone
	p.mu.Unlock()
	p.ring.close()
	if stop != nil {
		stop()
		<-done
	}
	var errs []error
	if p.cfg.spoolDir != "" {
		if err := p.writeSpool(); err != nil {
			errs = append(errs, err)
		}
	} else {
		if n, _ := p.ring.len(); p.cfg.drainTimeout > 0 && n+p.Stats().Pending > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.drainTimeout)
			if p.connected.Load() || p.connect(ctx) == nil {
				p.loop(ctx, true)
			}
			cancel()
		}
		left := p.takeAll()
		if len(left) > 0 {
			n := uint64(len(left))
			p.ring.addDrops(func(d *Drops) { d.Closed += n })
			p.log.Warn("relay: closed with undelivered messages", "dropped", n)
		}
	}
	if c, ok := p.adapter.(Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.metrics != nil {
		p.metrics.unregister()
	}
	return errors.Join(errs...)
}

// takeAll removes and returns the pending batch followed by the buffer.
func (p *Pipeline) takeAll() []Message {
	p.mu.Lock()
	out := p.pending
	p.pending = nil
	p.mu.Unlock()
	return p.ring.pop(out, int(^uint(0)>>1))
}

var (
	_ Runner        = (*Pipeline)(nil)
	_ CommandSource = (*Pipeline)(nil)
	_ Closer        = (*Pipeline)(nil)
)
