package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

// Collector polls one Modbus channel (one physical link and the units
// behind it) and writes its control and setpoint points. It implements
// collect.Collector, collect.Writer and collect.Pointer.
//
// One goroutine, started by Run, owns the link: polls and writes are
// serialised on it, writes going ahead of queued polls.
type Collector struct {
	cfg      Config
	log      *slog.Logger
	met      *metrics
	onEvent  func(model.Event)
	mkLink   func(*Config) (link, error)
	read     []*boundPoint          // T and S points
	writable map[string]*boundPoint // C and A points by id
	ids      []string

	mu       sync.Mutex // guards groups' request lists and excluded (read by Plan)
	groups   []*group
	excluded []Excluded
	offReads []offRead // what the worker needs to probe the excluded points again

	// stMu guards state and the link while Run is not running: a Write
	// before Run talks to the device directly under it.
	stMu  sync.Mutex
	state int32 // stateNew, stateRunning, stateStopped
	link  link
	jobs  chan *job
	done  chan struct{} // closed when Run returns
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// Option configures a Collector.
type Option func(*options) error

type options struct {
	log     *slog.Logger
	reg     prometheus.Registerer
	onEvent func(model.Event)
	mkLink  func(*Config) (link, error)
}

// WithLogger logs link state changes and request failures to l (nil
// discards).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.log = l; return nil }
}

// WithRegisterer registers the collector's metrics on r (nil = no
// metrics). Series carry a constant "channel" label.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error { o.reg = r; return nil }
}

// WithEvents calls f with the result Event of every Write
// (model.EventCommandExecuted or model.EventCommandFailed, Source
// "modbus:<channel>", Attrs command_id, source, value, raw and error). f
// runs on the writing goroutine and must not block. Without this option
// no events are produced: the EMS emits its own command events from
// Write's return value.
func WithEvents(f func(model.Event)) Option {
	return func(o *options) error { o.onEvent = f; return nil }
}

// withLink replaces the grid-x link (tests of timing logic only).
func withLink(f func(*Config) (link, error)) Option {
	return func(o *options) error { o.mkLink = f; return nil }
}

// New validates cfg (channel settings, mappings, point table) and plans the
// reads. It does not connect; Run does.
func New(cfg Config, opts ...Option) (*Collector, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Collector{cfg: cfg.withDefaults(), onEvent: o.onEvent, mkLink: o.mkLink, jobs: make(chan *job), done: make(chan struct{})}
	c.cfg.file = cfg.file
	c.log = o.log
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.mkLink == nil {
		c.mkLink = newLink
	}
	bound, err := c.cfg.resolve()
	if err != nil {
		return nil, err
	}
	if len(bound) == 0 {
		return nil, &model.ConfigError{File: cfg.file, Field: "mappings", Msg: "channel has no points"}
	}
	c.writable = map[string]*boundPoint{}
	for _, b := range bound {
		c.ids = append(c.ids, b.id)
		if b.m.Kind.Writable() {
			c.writable[b.id] = b
		} else {
			c.read = append(c.read, b)
		}
	}
	sort.Strings(c.ids)
	reqs := planReads(&c.cfg, bound)
	byIv := map[string]*group{}
	for i := range reqs {
		r := &reqs[i]
		k := fmt.Sprintf("%d/%d/%s", r.Unit, r.Function, r.Interval)
		g := byIv[k]
		if g == nil {
			g = &group{interval: r.Interval}
			byIv[k] = g
			c.groups = append(c.groups, g)
		}
		g.reqs = append(g.reqs, r)
	}
	if c.link, err = c.mkLink(&c.cfg); err != nil {
		return nil, err
	}
	if c.met, err = newMetrics(o.reg, c.cfg.Channel); err != nil {
		return nil, fmt.Errorf("modbus: metrics: %w", err)
	}
	return c, nil
}

// Points lists every point id of the channel, sorted: the T and S points it
// publishes and the C and A points it accepts writes for.
func (c *Collector) Points() []string { return append([]string(nil), c.ids...) }

// Plan returns the current read plan: the requests sent each interval,
// including splits made after "illegal data address" replies, and the
// points excluded because the device refused their addresses.
func (c *Collector) Plan() Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p Plan
	for _, g := range c.groups {
		for _, r := range g.reqs {
			rc := *r
			rc.Points = append([]PointRead(nil), r.Points...)
			p.Requests = append(p.Requests, rc)
		}
	}
	p.Excluded = append(p.Excluded, c.excluded...)
	return p
}

// offRead is an excluded point with the group it came from.
type offRead struct {
	g *group
	r Request // single-point request
}

// pointState is the worker's memory of one readable point.
type pointState struct {
	last  time.Time // last good read
	value float64
	q     model.Quality
	seen  bool // a sample was published
	off   bool // excluded from the plan
}

// Run polls until ctx is done, then closes the link. It returns nil after
// cancellation, and collect.ErrClosed if called a second time.
func (c *Collector) Run(ctx context.Context, sink collect.Sink) error {
	if sink == nil {
		return fmt.Errorf("%w: nil sink", ErrConfig)
	}
	c.stMu.Lock()
	if c.state != stateNew {
		c.stMu.Unlock()
		return collect.ErrClosed
	}
	c.state = stateRunning
	c.stMu.Unlock()
	defer func() {
		c.stMu.Lock()
		c.state = stateStopped
		_ = c.link.Close()
		c.stMu.Unlock()
		close(c.done)
	}()
	w := c.newWorker(sink)
	c.met.up(true, false)
	w.loop(ctx)
	return nil
}

// Close releases the link of a collector that is not running (one used
// for Write only, or never started). A running collector closes its link
// when Run returns; Close then only marks it stopped. Writes after Close
// fail with collect.ErrClosed.
func (c *Collector) Close() error {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	if c.state == stateNew {
		c.state = stateStopped
		close(c.done)
		return c.link.Close()
	}
	return nil
}

func (c *Collector) newWorker(sink collect.Sink) *worker {
	w := &worker{c: c, l: c.link, sink: sink, bo: backoff{min: c.cfg.BackoffMin, max: c.cfg.BackoffMax},
		states: make(map[*boundPoint]*pointState, len(c.read)), up: true, units: map[uint8]*unitState{}}
	for _, b := range c.read {
		w.states[b] = &pointState{}
	}
	return w
}

// worker is the state of the goroutine that owns the link.
type worker struct {
	c       *Collector
	l       link
	sink    collect.Sink
	bo      backoff
	up      bool
	retryAt time.Time
	states  map[*boundPoint]*pointState
	batch   []model.Sample
	due     []*group
	timer   *time.Timer
	units   map[uint8]*unitState
	// reprobeAt is when excluded points are tried again (zero: none).
	reprobeAt time.Time
}

// unitState tracks units that stopped answering.
type unitState struct {
	timeouts int       // consecutive timeouts
	skipTo   time.Time // the unit's requests are skipped until then
	bo       backoff
}

// deadAfter is how many consecutive timeouts make a unit "not answering":
// its requests are then skipped (points stay bad) for a backoff that grows
// like the link's (1 s to 60 s), so one dead unit costs the others at most
// two timeouts now and then. One slow register does not silence its unit:
// any successful request resets the count.
const deadAfter = 2

func (w *worker) unit(id uint8) *unitState {
	u := w.units[id]
	if u == nil {
		u = &unitState{bo: backoff{min: w.c.cfg.BackoffMin, max: w.c.cfg.BackoffMax}}
		w.units[id] = u
	}
	return u
}

func (w *worker) loop(ctx context.Context) {
	sched := scheduler{groups: w.c.groups}
	sched.start(time.Now())
	for ctx.Err() == nil {
		w.runJobs(ctx)
		now := time.Now()
		if !w.up && now.Before(w.retryAt) {
			w.wait(ctx, w.retryAt)
			continue
		}
		w.due = sched.due(now, w.due)
		if len(w.due) == 0 {
			w.wait(ctx, sched.wake())
			continue
		}
		for _, g := range w.due {
			w.c.met.skip(g.skipped)
			g.skipped = 0
		}
		w.batch = w.batch[:0]
		w.cycle(ctx, w.due)
		w.reprobe(ctx, time.Now())
		if w.up {
			w.checkStale(time.Now())
		}
		w.publish(ctx)
	}
}

func (w *worker) publish(ctx context.Context) {
	if len(w.batch) == 0 {
		return
	}
	if err := w.sink.Publish(ctx, w.batch); err != nil && ctx.Err() == nil {
		w.c.met.publishFailed()
		w.c.log.Warn("modbus: sink refused batch", "channel", w.c.cfg.Channel, "samples", len(w.batch), "err", err)
	}
	w.batch = w.batch[:0]
}

// wait sleeps until t (forever when t is zero: a write-only channel),
// running a write that arrives meanwhile.
func (w *worker) wait(ctx context.Context, t time.Time) {
	var tc <-chan time.Time
	if !t.IsZero() {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		if w.timer == nil {
			w.timer = time.NewTimer(d)
		} else {
			w.timer.Reset(d)
		}
		defer w.timer.Stop()
		tc = w.timer.C
	}
	select {
	case <-ctx.Done():
	case <-tc:
	case j := <-w.c.jobs:
		w.exec(j)
	}
}

// runJobs runs the writes queued now, without blocking.
func (w *worker) runJobs(ctx context.Context) {
	for {
		select {
		case j := <-w.c.jobs:
			w.exec(j)
		default:
			return
		}
	}
}

// cycle polls the due groups, filling w.batch.
func (w *worker) cycle(ctx context.Context, due []*group) {
	for _, g := range due {
		w.c.mu.Lock()
		reqs := g.reqs
		w.c.mu.Unlock()
		for _, r := range reqs {
			w.runJobs(ctx)
			if ctx.Err() != nil {
				return
			}
			if !w.up && time.Now().Before(w.retryAt) {
				return
			}
			if u := w.unit(r.Unit); u.timeouts >= deadAfter && time.Now().Before(u.skipTo) {
				w.markBad(r.Points, model.Bad(model.ReasonCommFailure), time.Now())
				continue
			}
			w.poll(ctx, g, r)
		}
	}
}

// poll reads one request and decodes its points.
func (w *worker) poll(ctx context.Context, g *group, r *Request) {
	data, err := w.readReq(ctx, r)
	now := time.Now()
	if err == nil {
		w.linkOK()
		if u := w.unit(r.Unit); u.timeouts > 0 {
			if u.timeouts >= deadAfter {
				w.c.log.Info("modbus: unit answers again", "channel", w.c.cfg.Channel, "unit", r.Unit)
			}
			u.timeouts = 0
			u.bo.reset()
		}
		w.decode(r, data, now)
		return
	}
	class, err := classify(err, r.Unit, r.Function, r.Address, r.Quantity)
	switch class {
	case classCanceled:
		return
	case classException:
		w.linkOK()
		if exceptionCode(err) == ExceptionIllegalDataAddress {
			w.split(ctx, g, r, now)
			return
		}
		w.c.log.Warn("modbus: request refused", "channel", w.c.cfg.Channel, "err", err)
		w.markBad(r.Points, model.Bad(model.ReasonCommFailure), now)
	case classTimeout:
		w.c.log.Warn("modbus: request timed out", "channel", w.c.cfg.Channel, "unit", r.Unit, "err", err)
		u := w.unit(r.Unit)
		if u.timeouts++; u.timeouts >= deadAfter {
			d := u.bo.next()
			u.skipTo = now.Add(d)
			w.c.log.Warn("modbus: unit not answering, skipping it", "channel", w.c.cfg.Channel, "unit", r.Unit, "retry_in", d)
		}
		w.markBad(r.Points, model.Bad(model.ReasonCommFailure), now)
		if w.l.closeOnTimeout() {
			_ = w.l.Close()
		}
	case classLink:
		w.linkDown(err, now)
	case classProtocol:
		// A complete but wrong reply: the TCP stream is still in sync (RTU
		// framing may not be, so that link is reset).
		w.c.log.Warn("modbus: bad reply", "channel", w.c.cfg.Channel, "unit", r.Unit, "err", err)
		if w.l.closeOnTimeout() {
			_ = w.l.Close()
		}
		w.markBad(r.Points, model.Bad(model.ReasonCommFailure), now)
	default:
		w.c.log.Warn("modbus: request failed, reconnecting", "channel", w.c.cfg.Channel, "unit", r.Unit, "err", err)
		_ = w.l.Close()
		w.markBad(r.Points, model.Bad(model.ReasonCommFailure), now)
	}
}

// readReq sends one read, retrying "server busy" replies with backoff, and
// checks the reply size.
func (w *worker) readReq(ctx context.Context, r *Request) ([]byte, error) {
	var data []byte
	err := w.withBusyRetry(ctx, func() error {
		w.l.setUnit(r.Unit)
		t0 := time.Now()
		var err error
		switch r.Function {
		case 1:
			data, err = w.l.ReadCoils(ctx, r.Address, r.Quantity)
		case 2:
			data, err = w.l.ReadDiscreteInputs(ctx, r.Address, r.Quantity)
		case 3:
			data, err = w.l.ReadHoldingRegisters(ctx, r.Address, r.Quantity)
		case 4:
			data, err = w.l.ReadInputRegisters(ctx, r.Address, r.Quantity)
		default:
			err = fmt.Errorf("%w: function code %d is not a read", ErrConfig, r.Function)
		}
		w.c.met.request(r.Unit, r.Function, time.Since(t0))
		if err != nil {
			cl, e := classify(err, r.Unit, r.Function, r.Address, r.Quantity)
			w.c.met.fail(cl, exceptionCode(e))
			return e
		}
		if len(data) != r.expectBytes() {
			w.c.met.malformed()
			return fmt.Errorf("%w: unit %d fc %d addr %d: %d bytes for %d items, want %d", ErrMalformed, r.Unit, r.Function, r.Address, len(data), r.Quantity, r.expectBytes())
		}
		return nil
	})
	return data, err
}

// withBusyRetry runs f again while it fails with exception 6 (busy).
func (w *worker) withBusyRetry(ctx context.Context, f func() error) error {
	wait := w.c.cfg.BusyBackoff
	for i := 0; ; i++ {
		err := f()
		if err == nil || exceptionCode(err) != ExceptionBusy || i >= w.c.cfg.BusyRetries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (w *worker) linkOK() {
	if w.up {
		return
	}
	w.up = true
	w.bo.reset()
	w.c.met.up(true, true)
	w.c.log.Info("modbus: link up", "channel", w.c.cfg.Channel)
}

// linkDown marks every readable point bad and schedules the reconnect.
func (w *worker) linkDown(err error, now time.Time) {
	_ = w.l.Close()
	d := w.bo.next()
	w.retryAt = now.Add(d)
	if w.up {
		w.c.log.Warn("modbus: link down", "channel", w.c.cfg.Channel, "retry_in", d, "err", err)
	}
	w.up = false
	w.c.met.up(false, false)
	for b, st := range w.states {
		if !st.off {
			w.setBad(b, st, model.Bad(model.ReasonCommFailure), now)
		}
	}
}

func (w *worker) markBad(pts []PointRead, q model.Quality, now time.Time) {
	for i := range pts {
		b := pts[i].b
		w.setBad(b, w.states[b], q, now)
	}
}

// setBad publishes q for the point once per change (with its last value).
func (w *worker) setBad(b *boundPoint, st *pointState, q model.Quality, now time.Time) {
	if st.seen && st.q == q {
		return
	}
	st.q, st.seen = q, true
	w.batch = append(w.batch, model.Sample{Point: b.id, Value: st.value, Time: now, Quality: q})
}

// decode turns a good reply into samples.
func (w *worker) decode(r *Request, data []byte, now time.Time) {
	good := 0
	for i := range r.Points {
		p := &r.Points[i]
		st := w.states[p.b]
		raw, err := decodePoint(r, p, data)
		if err != nil {
			q := model.Bad(model.ReasonCommFailure)
			if errors.Is(err, errNotNumeric) || errors.Is(err, ErrConfig) {
				q = model.Bad(model.ReasonConfig)
			}
			w.setBad(p.b, st, q, now)
			continue
		}
		if math.IsNaN(raw) || math.IsInf(raw, 0) {
			w.setBad(p.b, st, model.Bad(model.ReasonOutOfRange), now)
			continue
		}
		v := p.b.point.Engineering(raw)
		st.value, st.q, st.last, st.seen = v, model.Good, now, true
		w.batch = append(w.batch, model.Sample{Point: p.ID, Value: v, Time: now})
		good++
	}
	w.c.met.good(good)
}

// checkStale marks points not refreshed for StaleAfter intervals.
func (w *worker) checkStale(now time.Time) {
	n := time.Duration(w.c.cfg.StaleAfter)
	for _, g := range w.c.groups {
		limit := n * g.interval
		for _, r := range g.reqs {
			for i := range r.Points {
				b := r.Points[i].b
				st := w.states[b]
				if st.q == model.Good && st.seen && now.Sub(st.last) > limit {
					w.setBad(b, st, model.Uncertain(model.ReasonStale), now)
				}
			}
		}
	}
}

// split handles "illegal data address" for r: it bisects r over its
// points until every part reads or is a single refused point, replaces r
// in its group with the parts that read, and excludes the refused points.
func (w *worker) split(ctx context.Context, g *group, r *Request, now time.Time) {
	var good []Request
	var datas [][]byte
	var bad []PointRead
	var fatal error
	var probe func(q Request, data []byte, err error)
	probe = func(q Request, data []byte, err error) {
		if fatal != nil {
			bad = append(bad, q.Points...) // not probed: handled below
			return
		}
		if err == nil {
			good, datas = append(good, q), append(datas, data)
			return
		}
		if exceptionCode(err) != ExceptionIllegalDataAddress {
			fatal = err
			bad = append(bad, q.Points...)
			return
		}
		if len(q.Points) == 1 {
			bad = append(bad, q.Points...)
			return
		}
		h := len(q.Points) / 2
		for _, part := range [][]PointRead{q.Points[:h], q.Points[h:]} {
			s := subRequest(&q, part, "split after illegal data address")
			d, e := w.readReq(ctx, &s)
			probe(s, d, e)
		}
	}
	probe(*r, nil, &ExceptionError{Code: ExceptionIllegalDataAddress})
	if fatal != nil {
		// Could not finish probing: keep the plan, fail the points now.
		w.markBad(r.Points, model.Bad(model.ReasonCommFailure), now)
		return
	}
	for i := range good {
		w.decode(&good[i], datas[i], now)
	}
	w.c.mu.Lock()
	var reqs []*Request
	for _, x := range g.reqs {
		if x != r {
			reqs = append(reqs, x)
			continue
		}
		for i := range good {
			reqs = append(reqs, &good[i])
		}
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Address < reqs[j].Address })
	g.reqs = reqs
	for _, p := range bad {
		w.c.excluded = append(w.c.excluded, Excluded{Point: p.ID, Unit: r.Unit, Function: r.Function, Address: p.b.m.Address,
			Reason: "device answered illegal data address (exception 2)"})
		w.c.offReads = append(w.c.offReads, offRead{g: g, r: subRequest(r, []PointRead{p}, "read alone after a reprobe")})
	}
	if w.reprobeAt.IsZero() {
		w.reprobeAt = now.Add(w.c.cfg.ReprobeInterval)
	}
	w.c.mu.Unlock()
	for _, p := range bad {
		st := w.states[p.b]
		st.off = true
		w.setBad(p.b, st, model.Bad(model.ReasonConfig), now)
		w.c.log.Warn("modbus: point excluded: device refused its address", "channel", w.c.cfg.Channel, "point", p.ID, "unit", r.Unit, "address", p.b.m.Address)
	}
}

// reprobe reads each excluded point alone once ReprobeInterval has passed
// since the exclusions; a point the device now answers for goes back into
// its group as a request of its own.
func (w *worker) reprobe(ctx context.Context, now time.Time) {
	if w.reprobeAt.IsZero() || now.Before(w.reprobeAt) || !w.up || w.c.cfg.ReprobeInterval < 0 {
		return
	}
	w.c.mu.Lock()
	offs := append([]offRead(nil), w.c.offReads...)
	w.c.mu.Unlock()
	var back []int
	for i := range offs {
		o := &offs[i]
		data, err := w.readReq(ctx, &o.r)
		if err != nil {
			continue
		}
		back = append(back, i)
		st := w.states[o.r.Points[0].b]
		st.off = false
		w.decode(&o.r, data, time.Now())
		w.c.log.Info("modbus: excluded point answers again", "channel", w.c.cfg.Channel, "point", o.r.Points[0].ID)
	}
	w.c.mu.Lock()
	for j := len(back) - 1; j >= 0; j-- {
		i := back[j]
		r := offs[i].r
		g := offs[i].g
		g.reqs = append(g.reqs, &r)
		sort.SliceStable(g.reqs, func(a, b int) bool { return g.reqs[a].Address < g.reqs[b].Address })
		w.c.offReads = append(w.c.offReads[:i], w.c.offReads[i+1:]...)
		w.c.excluded = append(w.c.excluded[:i], w.c.excluded[i+1:]...)
	}
	remaining := len(w.c.offReads)
	w.c.mu.Unlock()
	w.reprobeAt = time.Time{}
	if remaining > 0 {
		w.reprobeAt = now.Add(w.c.cfg.ReprobeInterval)
	}
}

// job is one write handed to the worker.
type job struct {
	ctx  context.Context
	b    *boundPoint
	raw  float64
	done chan error
}

// Write validates cmd against the point table (kind, min/max/step,
// data-type range), converts it to raw and sends it ahead of queued polls.
// A C point with pulse_ms > 0 commanded on is written on, held pulse_ms,
// then written off (the off write is sent even if ctx ends during the
// hold). With the mapping's verify flag the value is read back and
// compared. Write returns when the device confirmed, or with an error:
// *model.CommandError wrapping collect.ErrUnknownPoint, model.ErrNotWritable,
// model.ErrOutOfRange, model.ErrBadStep, model.ErrOverflow,
// *ExceptionError, ErrVerify or a transport error.
func (c *Collector) Write(ctx context.Context, cmd model.Command) (err error) {
	raw := math.NaN()
	defer func() { c.emit(cmd, raw, err) }()
	b := c.writable[cmd.Point]
	if b == nil {
		if c.isReadable(cmd.Point) {
			return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: collect.ErrNotWritable, Reason: "T and S points are read only"}
		}
		return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: collect.ErrUnknownPoint, Reason: "not a point of channel " + c.cfg.Channel}
	}
	if err := b.point.Validate(cmd.Point, cmd.Value); err != nil {
		return err
	}
	raw, err = b.point.Raw(cmd.Value)
	if err != nil {
		raw = math.NaN()
		var ce *model.CommandError
		if errors.As(err, &ce) {
			ce.Point = cmd.Point
		}
		return err
	}
	if err := c.submit(ctx, b, raw); err != nil {
		return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: err}
	}
	if b.m.Kind == model.Control && b.point.PulseMS > 0 && cmd.Value == 1 {
		off, err := b.point.Raw(0)
		if err != nil {
			return err
		}
		t := time.NewTimer(time.Duration(b.point.PulseMS) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		// The pulse must end even when the caller gave up.
		offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.cfg.Timeout+time.Second)
		defer cancel()
		if err := c.submit(offCtx, b, off); err != nil {
			return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: err, Reason: "pulse off write failed"}
		}
	}
	return nil
}

func (c *Collector) isReadable(id string) bool {
	for _, b := range c.read {
		if b.id == id {
			return true
		}
	}
	return false
}

// submit hands a write to the worker and waits for its result. Before
// Run, the write goes to the device directly.
func (c *Collector) submit(ctx context.Context, b *boundPoint, raw float64) error {
	j := &job{ctx: ctx, b: b, raw: raw, done: make(chan error, 1)}
	c.stMu.Lock()
	switch c.state {
	case stateStopped:
		c.stMu.Unlock()
		return collect.ErrClosed
	case stateNew:
		defer c.stMu.Unlock()
		w := &worker{c: c, l: c.link, up: true}
		w.exec(j)
		return <-j.done
	}
	c.stMu.Unlock()
	select {
	case c.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return collect.ErrClosed
	}
	select {
	case err := <-j.done:
		return err
	case <-c.done:
		return collect.ErrClosed
	}
}

// exec runs one write on the worker.
func (w *worker) exec(j *job) {
	if err := j.ctx.Err(); err != nil {
		j.done <- err
		return
	}
	m := &j.b.m
	var payload []byte
	var err error
	switch m.Function {
	case 5, 15:
		if j.raw != 0 {
			payload = []byte{1}
		} else {
			payload = []byte{0}
		}
	default:
		payload, err = EncodeRegisters(nil, j.raw, m.DataType, m.ByteOrder)
		if err != nil {
			j.done <- err
			return
		}
	}
	ctx := j.ctx
	err = w.withBusyRetry(ctx, func() error {
		w.l.setUnit(m.Unit)
		t0 := time.Now()
		var err error
		switch m.Function {
		case 5:
			v := uint16(0)
			if payload[0] != 0 {
				v = 0xFF00
			}
			_, err = w.l.WriteSingleCoil(ctx, m.Address, v)
		case 15:
			_, err = w.l.WriteMultipleCoils(ctx, m.Address, 1, payload)
		case 6:
			_, err = w.l.WriteSingleRegister(ctx, m.Address, binary.BigEndian.Uint16(payload))
		case 16:
			_, err = w.l.WriteMultipleRegisters(ctx, m.Address, uint16(len(payload)/2), payload)
		}
		w.c.met.request(m.Unit, m.Function, time.Since(t0))
		if err != nil {
			cl, e := classify(err, m.Unit, m.Function, m.Address, uint16(max(1, len(payload)/2)))
			w.c.met.fail(cl, exceptionCode(e))
			if cl == classTransport || ((cl == classTimeout || cl == classProtocol) && w.l.closeOnTimeout()) {
				_ = w.l.Close()
			}
			return e
		}
		return nil
	})
	if err == nil && m.Verify {
		err = w.verify(ctx, m, payload)
	}
	if err == nil {
		w.linkOK()
	}
	j.done <- err
}

// verify reads a written value back and compares it with what was sent.
func (w *worker) verify(ctx context.Context, m *Mapping, payload []byte) error {
	w.l.setUnit(m.Unit)
	switch m.Function {
	case 5, 15:
		got, err := w.l.ReadCoils(ctx, m.Address, 1)
		if err != nil {
			_, e := classify(err, m.Unit, 1, m.Address, 1)
			return fmt.Errorf("%w: %w", ErrVerify, e)
		}
		if len(got) != 1 || got[0]&1 != payload[0] {
			return fmt.Errorf("%w: coil %d reads %v, wrote %d", ErrVerify, m.Address, got, payload[0])
		}
	default:
		n := uint16(len(payload) / 2)
		got, err := w.l.ReadHoldingRegisters(ctx, m.Address, n)
		if err != nil {
			_, e := classify(err, m.Unit, 3, m.Address, n)
			return fmt.Errorf("%w: %w", ErrVerify, e)
		}
		if string(got) != string(payload) {
			return fmt.Errorf("%w: register %d reads % x, wrote % x", ErrVerify, m.Address, got, payload)
		}
	}
	return nil
}

// emit reports the result of a Write to the WithEvents callback.
func (c *Collector) emit(cmd model.Command, raw float64, err error) {
	if c.onEvent == nil {
		return
	}
	e := model.Event{Time: time.Now(), Kind: model.EventCommandExecuted, Source: "modbus:" + c.cfg.Channel, Point: cmd.Point,
		Attrs: map[string]string{"command_id": cmd.ID, "source": cmd.Source, "value": strconv.FormatFloat(cmd.Value, 'g', -1, 64)}}
	if !math.IsNaN(raw) {
		e.Attrs["raw"] = strconv.FormatFloat(raw, 'g', -1, 64)
	}
	if err != nil {
		e.Kind, e.Severity = model.EventCommandFailed, model.SeverityMedium
		e.Message = fmt.Sprintf("write %s=%g failed: %v", cmd.Point, cmd.Value, err)
		e.Attrs["error"] = err.Error()
	} else {
		e.Message = fmt.Sprintf("wrote %s=%g", cmd.Point, cmd.Value)
	}
	c.onEvent(e)
}

// Interface checks.
var (
	_ collect.Collector = (*Collector)(nil)
	_ collect.Writer    = (*Collector)(nil)
	_ collect.Pointer   = (*Collector)(nil)
)
