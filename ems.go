package ems

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/internal/pipeline"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/rule"
)

// Sentinel errors of the EMS.
var (
	// ErrNoRoute is wrapped by the CommandError of a command to an instance
	// action that has no downlink route.
	ErrNoRoute = errors.New("ems: action has no downlink route")
	// ErrNoWriter is wrapped when the collector owning a point cannot write.
	ErrNoWriter = errors.New("ems: the collector of this point cannot write")
	// ErrRunning is returned by Run when the EMS is already running.
	ErrRunning = errors.New("ems: already running")
	// ErrClosed is returned by Run and Publish after Close.
	ErrClosed = errors.New("ems: closed")
)

// EMS is a running energy-management system: collectors, the data path,
// and the alarm, rule, history, relay and gateway components. Build it with
// New; run it with Run. Its methods are safe for concurrent use.
type EMS struct {
	cfg      config
	log      *slog.Logger
	snapshot *model.Snapshot
	router   *model.Router
	pipe     *pipeline.Pipeline
	metrics  *metrics

	pubMu sync.Mutex // serialises routing, snapshot update and fan-out of collector batches

	writers map[string]collect.Writer // point id -> writer
	byName  map[string]collect.Writer // collector name -> writer
	tables  map[string]*model.Point   // channel point id -> point-table row

	alarms   *alarm.Engine // the default engine, when used
	rules    *rule.Runner  // the default engine, when used
	histDB   *history.DB   // the default store, when used
	gw       *gateway.Server
	gwLn     net.Listener
	events   *eventHub
	cmdSeq   atomic.Uint64
	closers  []io.Closer // in creation order; closed in reverse
	runState atomic.Int32
	runStop  context.CancelFunc
	runDone  chan struct{}
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

const (
	stateIdle int32 = iota
	stateRunning
	stateClosed
)

// New builds an EMS from options. Without options it has no collector, the
// default alarm and rule engines with no definitions, an in-memory history
// store, no relay and no gateway. When New fails it closes what it created
// and leaves the collectors and relays it was given open.
func New(opts ...Option) (*EMS, error) {
	cfg := config{queues: map[string]queueConf{}, tick: 100 * time.Millisecond, restartMin: time.Second, restartMax: time.Minute}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &EMS{cfg: cfg, log: log, snapshot: model.NewSnapshot(), writers: map[string]collect.Writer{}, byName: map[string]collect.Writer{}, tables: map[string]*model.Point{}, events: newEventHub()}
	ok := false
	defer func() {
		if !ok {
			e.releaseDefaults()
		}
	}()
	for _, t := range cfg.tables {
		for i := range t.Points {
			p := &t.Points[i]
			e.tables[model.ChannelPointID(t.Channel, p.Kind, p.ID)] = p
		}
	}
	if cfg.model != nil {
		if err := cfg.model.Compile(cfg.tables...); err != nil {
			return nil, fmt.Errorf("ems: device model: %w", err)
		}
		r, err := cfg.model.Router(cfg.keepChannel)
		if err != nil {
			return nil, fmt.Errorf("ems: device model: %w", err)
		}
		e.router = r
		e.snapshot.Declare(cfg.model.Points())
	}
	for _, nc := range cfg.collectors {
		w, isW := nc.c.(collect.Writer)
		if !isW {
			continue
		}
		e.byName[nc.name] = w
		if p, ok := nc.c.(collect.Pointer); ok {
			for _, id := range p.Points() {
				if _, dup := e.writers[id]; !dup {
					e.writers[id] = w
				}
			}
		}
	}
	if err := e.defaults(); err != nil {
		return nil, err
	}
	var err error
	if e.metrics, err = newMetrics(cfg.registerer, e); err != nil {
		return nil, err
	}
	e.pipe = pipeline.New(e.consumers()...)
	if cfg.gatewayOn {
		if err := e.buildGateway(); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

// defaults creates the default alarm, rule and history components the
// options did not replace.
func (e *EMS) defaults() error {
	cfg := &e.cfg
	switch {
	case cfg.alarmSet && len(cfg.alarmOpts) > 0:
		return errors.New("ems: WithAlarmOptions configures the default alarm engine; it cannot be combined with WithAlarmer")
	case cfg.rulesSet && len(cfg.ruleOpts) > 0:
		return errors.New("ems: WithRuleOptions configures the default rule engine; it cannot be combined with WithRuleEngine")
	case cfg.historySet && len(cfg.historyOpts) > 0:
		return errors.New("ems: WithHistoryOptions configures the default history store; it cannot be combined with WithHistory")
	}
	sub := func(name string) string {
		if cfg.dataDir == "" {
			return ""
		}
		return filepath.Join(cfg.dataDir, name)
	}
	if !cfg.historySet {
		hopts := []history.Option{history.WithLogger(e.log.With("component", "history"))}
		if cfg.registerer != nil {
			hopts = append(hopts, history.WithMetrics(cfg.registerer))
		}
		db, err := history.Open(sub("history"), append(hopts, cfg.historyOpts...)...)
		if err != nil {
			return fmt.Errorf("ems: default history store: %w", err)
		}
		e.histDB, cfg.history = db, db
		e.closers = append(e.closers, db)
	}
	if !cfg.alarmSet {
		aopts := []alarm.Option{alarm.WithLogger(e.log.With("component", "alarm"))}
		if cfg.model != nil {
			aopts = append(aopts, alarm.WithModel(cfg.model))
		}
		if d := sub("alarm"); d != "" {
			aopts = append(aopts, alarm.WithDataDir(d))
		}
		if cfg.registerer != nil {
			aopts = append(aopts, alarm.WithMetrics(cfg.registerer))
		}
		a, err := alarm.New(append(aopts, cfg.alarmOpts...)...)
		if err != nil {
			return fmt.Errorf("ems: default alarm engine: %w", err)
		}
		e.alarms, cfg.alarmer = a, a
		e.closers = append(e.closers, a)
	}
	if !cfg.rulesSet {
		ropts := []rule.Option{rule.WithLogger(e.log.With("component", "rule")), rule.WithExecutor(e)}
		if cfg.model != nil {
			ropts = append(ropts, rule.WithModel(cfg.model))
		}
		if cfg.registerer != nil {
			ropts = append(ropts, rule.WithMetrics(cfg.registerer))
		}
		r, err := rule.New(append(ropts, cfg.ruleOpts...)...)
		if err != nil {
			return fmt.Errorf("ems: default rule engine: %w", err)
		}
		e.rules, cfg.rules = r, r
		e.closers = append(e.closers, r)
	}
	return nil
}

func (e *EMS) queue(name string, size int, policy Policy) (int, Policy) {
	if q, ok := e.cfg.queues[name]; ok {
		return q.size, q.policy
	}
	return size, policy
}

type alarmTicker interface {
	Tick(ctx context.Context, now time.Time) ([]model.Event, error)
}

// consumers builds the data-path stages for the configured components.
func (e *EMS) consumers() []*pipeline.Consumer {
	var cs []*pipeline.Consumer
	if a := e.cfg.alarmer; a != nil {
		var tick func(context.Context, time.Time) ([]model.Event, error)
		if t, ok := a.(alarmTicker); ok {
			tick = t.Tick
		}
		cs = append(cs, engineConsumer(e, ConsumerAlarm, a.Process, tick, e.emit))
	}
	if r := e.cfg.rules; r != nil {
		var tick func(context.Context, time.Time) ([]rule.Action, error)
		if t, ok := r.(rule.Ticker); ok {
			tick = t.Tick
		}
		cs = append(cs, engineConsumer(e, ConsumerRule, r.Process, tick, e.applyActions))
	}
	if h := e.cfg.history; h != nil {
		size, pol := e.queue(ConsumerHistory, 256, Block)
		cs = append(cs, &pipeline.Consumer{Name: ConsumerHistory, Size: size, Policy: pol, Samples: true,
			Handle: func(ctx context.Context, b *pipeline.Batch) {
				e.componentResult(ConsumerHistory, h.Write(ctx, b.Samples))
			}})
	}
	for _, nr := range e.cfg.relays {
		name := "relay:" + nr.name
		size, pol := e.queue(name, 256, DropOldest)
		r := nr.r
		cs = append(cs, &pipeline.Consumer{Name: name, Size: size, Policy: pol, Samples: true, Events: true,
			Handle: func(ctx context.Context, b *pipeline.Batch) {
				e.componentResult(name, r.Send(ctx, relay.Batch{Samples: b.Samples, Events: b.Events}))
			}})
		if cs, ok := r.(relay.CommandSource); ok {
			cs.SetExecutor(e)
		}
	}
	return cs
}

// engineConsumer is the data-path stage of an engine (alarm or rule): its
// output for each batch, and for each tick when the engine has ticks, is
// handed to apply. Process and tick run on the consumer's one goroutine.
func engineConsumer[T any](e *EMS, name string,
	process func(context.Context, []model.Sample) (T, error),
	tick func(context.Context, time.Time) (T, error),
	apply func(context.Context, T),
) *pipeline.Consumer {
	size, pol := e.queue(name, 256, Block)
	c := &pipeline.Consumer{Name: name, Size: size, Policy: pol, Samples: true,
		Handle: func(ctx context.Context, b *pipeline.Batch) {
			out, err := process(ctx, b.Samples)
			e.componentResult(name, err)
			apply(ctx, out)
		}}
	if tick != nil {
		c.Interval = e.cfg.tick
		c.Tick = func(ctx context.Context, now time.Time) {
			out, err := tick(ctx, now)
			e.componentResult(name, err)
			apply(ctx, out)
		}
	}
	return c
}

func (e *EMS) componentResult(name string, err error) {
	if err == nil {
		return
	}
	e.metrics.componentErrors.WithLabelValues(name).Inc()
	e.log.Warn("component error", "component", name, "err", err)
}

// emit hands events to the event subscribers (directly: delivery never
// blocks, a slow subscriber loses its oldest events) and into the data path
// for the consumers of events (relays).
func (e *EMS) emit(ctx context.Context, evs []model.Event) {
	if len(evs) == 0 {
		return
	}
	e.events.deliver(evs)
	if e.gw != nil {
		for i := range evs {
			e.gw.InvalidateEvent(evs[i])
		}
	}
	if len(e.cfg.relays) == 0 {
		return
	}
	b := pipeline.NewBatch(0)
	b.Events = append(make([]model.Event, 0, len(evs)), evs...)
	_ = e.pipe.Publish(context.WithoutCancel(ctx), b)
}

// applyActions carries out what the rule engine asked the caller to do.
func (e *EMS) applyActions(ctx context.Context, acts []rule.Action) {
	var evs []model.Event
	for i := range acts {
		a := &acts[i]
		if a.Event != nil {
			evs = append(evs, *a.Event)
		}
		switch a.Type {
		case rule.ActionSet:
			if !a.Executed && a.Command != nil {
				cmd := *a.Command
				if cmd.Source == "" {
					cmd.Source = "rule:" + a.Rule
				}
				_ = e.Execute(ctx, cmd) // the result is an Event either way
			}
		case rule.ActionPublish:
			for _, nr := range e.cfg.relays {
				e.componentResult("relay:"+nr.name, nr.r.Send(ctx, relay.Batch{Samples: a.Samples}))
			}
		}
	}
	e.emit(ctx, evs)
}

// Publish is the collect.Sink of the EMS: collectors (and programs that
// produce samples themselves) hand it batches. The batch is copied, routed
// to instance points, applied to the snapshot and queued for every
// consumer; the caller may reuse it when Publish returns. Publish blocks
// while a Block-policy consumer's queue is full, until ctx ends.
func (e *EMS) Publish(ctx context.Context, batch []model.Sample) error {
	if len(batch) == 0 {
		return nil
	}
	if e.runState.Load() == stateClosed {
		return ErrClosed
	}
	e.pubMu.Lock()
	defer e.pubMu.Unlock()
	b := pipeline.NewBatch(len(batch) + len(batch)/4)
	if e.router != nil {
		b.Samples = e.router.Route(batch, b.Samples)
	} else {
		b.Samples = append(b.Samples, batch...)
	}
	e.snapshot.Update(b.Samples)
	e.metrics.samplesIn.Add(float64(len(batch)))
	return e.pipe.Publish(ctx, b)
}

// Snapshot returns the latest-value snapshot of every point.
func (e *EMS) Snapshot() *model.Snapshot { return e.snapshot }

// SubscribeSamples delivers the samples of points matching pattern (see
// model.MatchPoint) on a channel of the given capacity; when the reader
// falls behind the oldest samples are dropped. Call cancel when done; it
// closes the channel.
func (e *EMS) SubscribeSamples(pattern string, buffer int) (<-chan model.Sample, func()) {
	sub := e.snapshot.Subscribe(pattern, buffer)
	return sub.C(), sub.Close
}

// SubscribeEvents delivers every event of the EMS (alarms, rules, commands)
// on a channel of the given capacity; when the reader falls behind the
// oldest events are dropped and counted. Call cancel when done; it closes
// the channel.
func (e *EMS) SubscribeEvents(buffer int) (<-chan model.Event, func()) {
	return e.events.subscribe(buffer)
}

// Alarms returns the default alarm engine, or nil when WithAlarmer
// replaced it.
func (e *EMS) Alarms() *alarm.Engine { return e.alarms }

// Rules returns the default rule engine, or nil when WithRuleEngine
// replaced it.
func (e *EMS) Rules() *rule.Runner { return e.rules }

// History returns the history store in use (nil when disabled).
func (e *EMS) History() HistoryStore { return e.cfg.history }

// EventsDropped returns how many events were dropped because an event
// subscriber did not keep up (over all subscribers).
func (e *EMS) EventsDropped() uint64 { return e.events.dropped.Load() }

// QueueStats returns the counters of every data-path consumer.
func (e *EMS) QueueStats() []ConsumerStats { return e.pipe.Stats() }

// GatewayAddr returns the address the HTTP gateway listens on, or "" when
// there is no gateway.
func (e *EMS) GatewayAddr() string {
	if e.gwLn == nil {
		return ""
	}
	return e.gwLn.Addr().String()
}

type runner interface {
	Run(ctx context.Context) error
}

// Run starts the collectors, the data path and the components, and blocks
// until ctx is done. It then stops the collectors, drains every queue
// (alarm and rule first, so the events they emit while draining still reach
// history and the relays), stops the components and closes them in reverse
// order of creation. Run returns nil after a cancellation; an EMS runs once.
func (e *EMS) Run(ctx context.Context) error {
	if !e.runState.CompareAndSwap(stateIdle, stateRunning) {
		if e.runState.Load() == stateClosed {
			return ErrClosed
		}
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	e.closeMu.Lock()
	e.runStop, e.runDone = cancel, make(chan struct{})
	e.closeMu.Unlock()
	defer close(e.runDone)
	defer cancel()

	// Consumers outlive ctx: they drain after it ends.
	drainCtx, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDrain()
	e.pipe.Start(drainCtx)

	var compWG sync.WaitGroup
	compCtx, stopComps := context.WithCancel(context.WithoutCancel(ctx))
	startRunner := func(name string, r runner) {
		compWG.Add(1)
		go func() {
			defer compWG.Done()
			if err := r.Run(compCtx); err != nil && compCtx.Err() == nil {
				e.log.Error("component stopped", "component", name, "err", err)
			}
		}()
	}
	for _, nr := range e.cfg.relays {
		if r, ok := nr.r.(runner); ok {
			startRunner("relay:"+nr.name, r)
		}
	}
	if r, ok := e.cfg.history.(runner); ok {
		startRunner("history", r)
	}
	if e.gw != nil {
		compWG.Add(1)
		go func() {
			defer compWG.Done()
			if err := e.gw.Serve(compCtx, e.gwLn); err != nil && compCtx.Err() == nil {
				e.log.Error("gateway stopped", "err", err)
			}
		}()
	}

	var collWG sync.WaitGroup
	for _, nc := range e.cfg.collectors {
		collWG.Add(1)
		go func() {
			defer collWG.Done()
			e.runCollector(ctx, nc)
		}()
	}
	e.emit(ctx, []model.Event{{Time: time.Now(), Kind: model.EventComponentStarted, Source: "ems", Message: "EMS started"}})
	e.log.Info("ems running", "collectors", len(e.cfg.collectors), "relays", len(e.cfg.relays), "gateway", e.GatewayAddr())

	<-ctx.Done()
	collWG.Wait()
	e.emit(drainCtx, []model.Event{{Time: time.Now(), Kind: model.EventComponentStopped, Source: "ems", Message: "EMS stopping"}})
	e.pipe.CloseConsumers(ConsumerAlarm, ConsumerRule)
	e.pipe.Close()
	stopComps()
	compWG.Wait()
	e.runState.Store(stateClosed)
	e.closeMu.Lock()
	e.closeComponentsLocked()
	err := e.closeErr
	e.closeMu.Unlock()
	e.log.Info("ems stopped")
	return err
}

// runCollector runs one collector, restarting it with backoff when it fails.
func (e *EMS) runCollector(ctx context.Context, nc namedCollector) {
	backoff := e.cfg.restartMin
	for {
		start := time.Now()
		err := nc.c.Run(ctx, e)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("Run returned without cancellation")
		}
		e.metrics.collectorErrors.WithLabelValues(nc.name).Inc()
		e.log.Error("collector failed; restarting", "collector", nc.name, "err", err, "backoff", backoff)
		e.emit(ctx, []model.Event{{Time: time.Now(), Kind: model.EventCollectorError, Source: "collector:" + nc.name, Severity: model.SeverityHigh, Message: err.Error()}})
		if time.Since(start) > e.cfg.restartMax {
			backoff = e.cfg.restartMin
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, e.cfg.restartMax)
	}
}

// Close stops a running EMS (as if Run's context ended) and waits for it,
// or releases the components of an EMS that never ran. It is safe to call
// more than once.
func (e *EMS) Close() error {
	if e.runState.CompareAndSwap(stateIdle, stateClosed) {
		e.closeMu.Lock()
		defer e.closeMu.Unlock()
		e.pipe.Close()
		e.closeComponentsLocked()
		return e.closeErr
	}
	e.closeMu.Lock()
	stop, done := e.runStop, e.runDone
	e.closeMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	return e.closeErr
}

// releaseDefaults undoes a New that failed: it closes what New created
// (the default components, the gateway listener) and leaves the caller's
// collectors and relays alone, so they can be passed to New again.
func (e *EMS) releaseDefaults() {
	if e.gwLn != nil {
		_ = e.gwLn.Close()
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		_ = e.closers[i].Close()
	}
}

func (e *EMS) closeComponentsLocked() {
	if e.closed {
		return
	}
	e.closed = true
	if e.gwLn != nil {
		_ = e.gwLn.Close()
	}
	e.events.close()
	var errs []error
	for _, nr := range e.cfg.relays {
		if c, ok := nr.r.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i].Close())
	}
	e.closeErr = errors.Join(errs...)
}

// Execute carries out a command: an instance action is checked against
// the action's limits and routed to its channel point; the channel point
// is checked against its point-table row (kind, min, max, step); the
// command goes to the Writer of the collector owning the point. An Event
// (command.executed or command.failed) is emitted either way. Errors are
// *model.CommandError values wrapping model.ErrUnknownPoint,
// model.ErrNotWritable, model.ErrOutOfRange, model.ErrBadStep,
// model.ErrInvalidValue, ErrNoRoute, ErrNoWriter, or the device's error.
func (e *EMS) Execute(ctx context.Context, cmd model.Command) error {
	if cmd.ID == "" {
		cmd.ID = "cmd-" + strconv.FormatInt(time.Now().UnixMilli(), 36) + "-" + strconv.FormatUint(e.cmdSeq.Add(1), 10)
	}
	if cmd.Time.IsZero() {
		cmd.Time = time.Now()
	}
	target, err := e.execute(ctx, cmd)
	ev := model.Event{ID: cmd.ID, Time: time.Now(), Source: "ems", Point: cmd.Point,
		Attrs: map[string]string{"command_id": cmd.ID, "source": cmd.Source, "value": strconv.FormatFloat(cmd.Value, 'g', -1, 64)}}
	if target != "" && target != cmd.Point {
		ev.Attrs["target"] = target
	}
	if err != nil {
		ev.Kind, ev.Severity = model.EventCommandFailed, model.SeverityMedium
		ev.Message = err.Error()
		ev.Attrs["error"] = err.Error()
		e.metrics.commands.WithLabelValues("failed").Inc()
	} else {
		ev.Kind = model.EventCommandExecuted
		ev.Message = fmt.Sprintf("%s set to %g", cmd.Point, cmd.Value)
		e.metrics.commands.WithLabelValues("executed").Inc()
	}
	if e.runState.Load() != stateClosed {
		e.emit(ctx, []model.Event{ev})
	}
	return err
}

func (e *EMS) execute(ctx context.Context, cmd model.Command) (string, error) {
	fail := func(err error, reason string) error {
		return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: err, Reason: reason}
	}
	if cmd.Point == "" {
		return "", fail(model.ErrUnknownPoint, "empty point id")
	}
	target := cmd.Point
	if m := e.cfg.model; m != nil {
		if m.IsAction(cmd.Point) {
			ch, act, routed := m.Downlink(cmd.Point)
			if err := act.Check(cmd.Point, cmd.Value); err != nil {
				return "", err
			}
			if !routed {
				return "", fail(ErrNoRoute, "add a downlink route for this action")
			}
			target = ch
		} else if m.HasPoint(cmd.Point) {
			return "", fail(model.ErrNotWritable, "a measurement, not an action")
		}
	}
	if p, ok := e.tables[target]; ok {
		if err := p.Validate(target, cmd.Value); err != nil {
			return target, err
		}
	} else if _, k, _, err := model.ParseChannelPointID(target); err == nil && !k.Writable() {
		return target, fail(model.ErrNotWritable, "point kind is "+k.String())
	}
	w := e.writers[target]
	if w == nil {
		if name, _, ok := strings.Cut(target, "."); ok {
			w = e.byName[name]
		}
	}
	if w == nil {
		if _, known := e.snapshot.Get(target); known {
			return target, fail(ErrNoWriter, "no collector can write "+target)
		}
		return target, fail(model.ErrUnknownPoint, "no collector owns "+target)
	}
	out := cmd
	out.Point = target
	if err := w.Write(ctx, out); err != nil {
		var ce *model.CommandError
		if errors.As(err, &ce) {
			return target, err
		}
		return target, fail(err, "device write failed")
	}
	return target, nil
}

// eventHub fans events out to subscribers without blocking.
type eventHub struct {
	mu      sync.Mutex
	subs    map[*eventSub]struct{}
	closed  bool
	dropped atomic.Uint64 // events dropped for slow subscribers, all subscribers
}

type eventSub struct {
	ch      chan model.Event
	dropped atomic.Uint64
}

func newEventHub() *eventHub { return &eventHub{subs: map[*eventSub]struct{}{}} }

func (h *eventHub) subscribe(buffer int) (<-chan model.Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	s := &eventSub{ch: make(chan model.Event, buffer)}
	h.mu.Lock()
	if h.closed {
		close(s.ch)
		h.mu.Unlock()
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}

func (h *eventHub) deliver(evs []model.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, ev := range evs {
			for {
				select {
				case s.ch <- ev:
				default:
					select {
					case <-s.ch:
						s.dropped.Add(1)
						h.dropped.Add(1)
					default:
					}
					continue
				}
				break
			}
		}
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}
