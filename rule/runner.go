package rule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"

	"github.com/voltage-ems/ems/model"
)

// Runner is the default rule engine. Build it with New.
//
// Process and Tick are called from one goroutine (never concurrently with each
// other). The management methods (Rules, Add, Update, Remove, Enable, Disable,
// Replace, Stats, DryRun) are safe for concurrent use with them and with each
// other: a change compiles a complete new rule set and swaps it in atomically; a
// change that does not compile is rejected whole and the running set is kept.
type Runner struct {
	cfg config
	log *slog.Logger
	cat *pointCatalogue

	mu      sync.Mutex   // serialises management changes
	statsMu sync.RWMutex // see ruleStats
	gen     uint32       // set generations built, guarded by mu
	slots   *slotTable   // committed slot table
	cores   map[string]*core
	cur     atomic.Pointer[ruleSet]

	// owned by the Process/Tick goroutine
	st     *store
	stSet  *ruleSet
	ws     []worker
	dirty  []uint64 // bitset of rules to evaluate in this batch
	pcache pcache
	list   []int32
	res    []evalResult
	outs   []outcome
	seq    atomic.Uint64
	hooks  *hookPool
	closed atomic.Bool
}

type evalResult struct {
	skip bool
	val  bool
	err  error
}

type outcomeKind uint8

const (
	outCond outcomeKind = iota
	outMatch
)

type outcome struct {
	rule int32
	kind outcomeKind
	key  int32
	res  evalResult
}

// ruleState is the run-time state of a rule, kept across reloads that leave the rule unchanged.
type ruleState struct {
	cond      bool
	pending   bool
	since     time.Time
	fired     bool
	lastFired time.Time
	next      time.Time
	alarms    map[string]bool
	pat       []patKeyState
}

type patKeyState struct {
	dropped   uint64
	last      []bool
	partials  []partial
	lastFired time.Time
}

type partial struct {
	start time.Time
	i, n  int
}

func newRuleState() *ruleState { return &ruleState{alarms: map[string]bool{}} }

// New builds a Runner and compiles its rules. Every problem of the rules is
// returned together, wrapped in ErrInvalidRule (model.AsConfigErrors lists them).
func New(opts ...Option) (*Runner, error) {
	cfg := defaults()
	var errs []error
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r := &Runner{cfg: cfg, log: cfg.log, cat: newCatalogue(cfg.model, cfg.points)}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.slots = &slotTable{index: map[string]int32{}}
	r.cores = map[string]*core{}
	specs := make([]*Spec, len(cfg.specs))
	for i := range cfg.specs {
		s := cfg.specs[i]
		specs[i] = &s
	}
	if err := r.commit(specs); err != nil {
		return nil, err
	}
	r.st = newStore()
	r.ws = newWorkers(cfg.workers, r.st)
	if cfg.reg != nil {
		if err := cfg.reg.Register(&collector{r: r}); err != nil {
			return nil, fmt.Errorf("rule: metrics: %w", err)
		}
	}
	r.hooks = newHookPool(cfg.client, cfg.queue, r.log)
	return r, nil
}

// commit builds and swaps in a new set; it must be called with r.mu held (or before New returns).
func (r *Runner) commit(specs []*Spec) error {
	set, cores, slots, err := r.build(specs)
	if err != nil {
		return err
	}
	r.cores, r.slots = cores, slots
	r.cur.Store(set)
	return nil
}

// Close stops the webhook worker, waiting for the call in flight to end. Pending
// webhook calls are dropped and counted. Close is idempotent.
func (r *Runner) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.hooks.close()
	return nil
}

func (r *Runner) prepare(now time.Time) *ruleSet {
	set := r.cur.Load()
	if r.stSet != set {
		r.st.fit(set)
		r.stSet = set
		if n := (len(set.rules) + 63) / 64; len(r.dirty) < n {
			r.dirty = make([]uint64, n)
		}
		for _, cr := range set.rules {
			if cr.pat != nil && len(cr.state.pat) != len(cr.pat.keys) {
				cr.state.pat = make([]patKeyState, len(cr.pat.keys))
				for k := range cr.state.pat {
					cr.state.pat[k].last = make([]bool, len(cr.pat.events))
				}
			}
		}
	}
	r.st.now = now
	return set
}

// Process feeds a batch of samples. A batch is one instant: the samples update the
// point values in order, then each change-triggered rule that reads a point of the
// batch is evaluated once, on the latest values (in parallel when there are many),
// and the outcomes are applied in priority order (highest first, then definition
// order), so results do not depend on the number of workers. Pattern events are
// evaluated per sample, in batch order. Samples of points no rule reads are ignored;
// a bad-quality sample makes its point unknown until a usable sample arrives.
func (r *Runner) Process(ctx context.Context, batch []model.Sample) ([]Action, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	now := time.Now()
	r.statsMu.Lock() // evaluation phase; actions (which may block on devices) run after it
	set := r.prepare(now)
	st := r.st
	list := r.list[:0]
	outs := r.outs[:0]
	dirty := r.dirty
	for i := range batch {
		s := &batch[i]
		slot, ok := r.lookup(set, s.Point)
		if !ok {
			continue
		}
		st.set(slot, s.Value, s.Quality.IsBad(), now)
		for _, ri := range set.idxRules[set.idxOff[slot]:set.idxOff[slot+1]] {
			dirty[ri>>6] |= 1 << (ri & 63)
		}
		if a, b := set.patOff[slot], set.patOff[slot+1]; a < b {
			for _, pr := range set.patRefs[a:b] {
				if r.patternEvent(set, pr, now) {
					outs = append(outs, outcome{rule: pr.rule, kind: outMatch, key: pr.key})
				}
			}
		}
	}
	// The bitset yields the dirty rules in evaluation (priority) order.
	for w, word := range dirty {
		if word == 0 {
			continue
		}
		dirty[w] = 0
		for word != 0 {
			list = append(list, int32(w<<6+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	if cap(r.res) < len(list) {
		r.res = make([]evalResult, len(list))
	}
	res := r.res[:len(list)]
	r.evalAll(set, list, res)
	r.statsMu.Unlock()
	var acts []Action
	if len(outs) == 0 {
		// no pattern match: list is already in priority order
		for k, ri := range list {
			if rs := res[k]; rs.skip || !rs.val && rs.err == nil && !set.hot[ri].state.cond {
				continue // the common case: still false
			}
			acts = r.applyChange(ctx, set, set.rules[ri], res[k], now, acts)
		}
		r.list = list[:0]
		return acts, nil
	}
	for k, ri := range list {
		outs = append(outs, outcome{rule: ri, kind: outCond, res: res[k]})
	}
	slices.SortStableFunc(outs, func(a, b outcome) int { return int(a.rule) - int(b.rule) })
	for _, o := range outs {
		cr := set.rules[o.rule]
		switch o.kind {
		case outCond:
			acts = r.applyChange(ctx, set, cr, o.res, now, acts)
		case outMatch:
			acts = r.fire(ctx, set, cr, int(o.key), now, 0, acts)
		}
	}
	r.list, r.outs = list[:0], outs[:0]
	return acts, nil
}

// pentry caches the slot of a point id by the address of its bytes: collectors
// send the same id strings again and again, so a hit skips hashing and
// comparing the id. The entry keeps its string alive, so an address can not be
// reused by another string while it is cached; slots never change once given.
type pentry struct {
	s    string
	slot int32  // -1: not a point of the set of generation gen
	gen  uint32 // for negative entries
}

// pcache is an open-addressing table keyed by string address, at most half full.
// When it would grow past its limit (ids that are new strings every time), it is
// cleared instead.
type pcache struct {
	e []pentry
	n int
}

const pcacheMin, pcacheMax = 1 << 10, 1 << 17

func (r *Runner) lookup(set *ruleSet, id string) (int32, bool) {
	c := &r.pcache
	if id == "" {
		return 0, false
	}
	if c.e == nil {
		c.e = make([]pentry, pcacheMin)
	}
	data := unsafe.StringData(id)
	p := uintptr(unsafe.Pointer(data))
	mask := uintptr(len(c.e) - 1)
	i := (p>>3 ^ p>>13) * 0x9E3779B1 & mask
	for {
		e := &c.e[i]
		if e.s == "" {
			break
		}
		if len(e.s) == len(id) && unsafe.StringData(e.s) == data {
			if e.slot >= 0 {
				return e.slot, true
			}
			if e.gen == set.gen {
				return 0, false
			}
			// a negative entry of an older set: look again
			slot, ok := set.slots.index[id]
			e.slot, e.gen = slot, set.gen
			if !ok {
				e.slot = -1
			}
			return slot, ok
		}
		i = (i + 1) & mask
	}
	slot, ok := set.slots.index[id]
	if !ok {
		slot = -1
	}
	c.put(id, slot, set.gen)
	return slot, ok
}

func (c *pcache) put(id string, slot int32, gen uint32) {
	if 2*(c.n+1) > len(c.e) {
		old := c.e
		size := 2 * len(old)
		if size > pcacheMax {
			size, old = len(old), nil // clear
		}
		c.e, c.n = make([]pentry, size), 0
		for _, e := range old {
			if e.s != "" {
				c.insert(e)
			}
		}
	}
	c.insert(pentry{s: id, slot: slot, gen: gen})
}

func (c *pcache) insert(e pentry) {
	p := uintptr(unsafe.Pointer(unsafe.StringData(e.s)))
	mask := uintptr(len(c.e) - 1)
	i := (p>>3 ^ p>>13) * 0x9E3779B1 & mask
	for c.e[i].s != "" {
		i = (i + 1) & mask
	}
	c.e[i] = e
	c.n++
}

// parallelMin is the number of rules to evaluate below which Process does not fan out.
const parallelMin = 256

func (r *Runner) evalAll(set *ruleSet, list []int32, res []evalResult) {
	w := len(r.ws)
	if w == 1 || len(list) < parallelMin {
		for k, ri := range list {
			res[k] = r.evalHot(&r.ws[0], &set.hot[ri])
		}
		return
	}
	if n := len(list) / (parallelMin / 2); n < w {
		w = n
	}
	var wg sync.WaitGroup
	chunk := (len(list) + w - 1) / w
	for i := 0; i < w; i++ {
		lo, hi := i*chunk, min((i+1)*chunk, len(list))
		if lo >= hi {
			break
		}
		wk := &r.ws[i]
		wg.Go(func() {
			for k := lo; k < hi; k++ {
				res[k] = r.evalHot(wk, &set.hot[list[k]])
			}
		})
	}
	wg.Wait()
}

// evalHot is eval for the dense hot array: the fast path touches only the
// hotRule, the values and the rule's counters.
func (r *Runner) evalHot(w *worker, h *hotRule) evalResult {
	if h.fast == nil {
		return r.eval(w, h.core)
	}
	v := r.st.val
	for _, sl := range h.refs {
		if v[sl] != v[sl] { // NaN: no usable value
			return evalResult{skip: true}
		}
	}
	s := h.stats
	s.evals++
	// A fast-path condition is a fixed, small tree of closures: it cannot run
	// past a budget, so only one evaluation in latencySample is timed.
	w.n++
	if w.n%latencySample != 0 {
		if h.code != nil {
			return evalResult{val: run(h.code, v)}
		}
		return evalResult{val: h.fast(v)}
	}
	w.mark()
	var val bool
	if h.code != nil {
		val = run(h.code, v)
	} else {
		val = h.fast(v)
	}
	s.timed(w.lap())
	return evalResult{val: val}
}

// latencySample is the sampling period of fast-path latency measurements.
const latencySample = 64

// eval evaluates the condition of c. It only reads shared state, so workers may
// run it in parallel.
func (r *Runner) eval(w *worker, c *core) evalResult {
	p := c.cond
	if p == nil {
		return evalResult{val: true}
	}
	st := r.st
	for _, sl := range p.rw.refs {
		if st.val[sl] != st.val[sl] {
			return evalResult{skip: true}
		}
	}
	var val bool
	var err error
	w.mark()
	if p.fastB != nil {
		val = p.fastB(st.val)
	} else {
		var out any
		out, err = w.run(p)
		val, _ = out.(bool)
	}
	d := w.lap()
	c.stats.evals++
	c.stats.timed(d)
	if err != nil {
		return evalResult{err: errors.New(p.rw.compileErr(err).Msg)}
	}
	if d > r.cfg.budget {
		c.stats.overruns.Add(1)
		return evalResult{err: fmt.Errorf("%w: took %v, budget %v", ErrBudget, d, r.cfg.budget)}
	}
	return evalResult{val: val}
}

// evalLocked evaluates c outside the evaluation phase of Process.
func (r *Runner) evalLocked(c *core) evalResult {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return r.eval(&r.ws[0], c)
}

// worker is the evaluation context of one goroutine: a reused expr VM, an env
// map for the programs that run on the VM, and a cheap lap clock.
type worker struct {
	vm   vm.VM
	env  map[string]any
	st   *store
	base time.Time
	last time.Duration
	n    uint64
}

func newWorkers(n int, st *store) []worker {
	ws := make([]worker, n)
	for i := range ws {
		ws[i] = worker{env: map[string]any{ctxKey: st}, st: st, base: time.Now()}
	}
	return ws
}

// mark starts the lap clock.
func (w *worker) mark() { w.last = time.Since(w.base) }

// lap returns the time since the previous mark or lap.
func (w *worker) lap() time.Duration {
	now := time.Since(w.base)
	d := now - w.last
	w.last = now
	return d
}

// run runs p on the expr VM, after loading the values it reads into the env.
func (w *worker) run(p *program) (any, error) {
	for k, sl := range p.rw.refs {
		w.env[varName(k)] = w.st.val[sl]
	}
	return w.vm.Run(p.prog, w.env)
}

// applyChange moves a change-triggered rule through its states:
// false -> (rising edge) -> pending for the hold time -> fired -> (condition false) -> false.
func (r *Runner) applyChange(ctx context.Context, set *ruleSet, cr *crule, res evalResult, now time.Time, acts []Action) []Action {
	if res.skip {
		return acts
	}
	if res.err != nil {
		return r.ruleError(cr, res.err, now, acts)
	}
	st := cr.state
	switch {
	case res.val && !st.cond:
		st.cond = true
		if cr.spec.Hold > 0 {
			st.pending, st.since = true, now
			return acts
		}
		return r.fire(ctx, set, cr, 0, now, 0, acts)
	case res.val && st.pending && now.Sub(st.since) >= cr.spec.Hold:
		st.pending = false
		return r.fire(ctx, set, cr, 0, now, 0, acts)
	case !res.val && st.cond:
		st.cond, st.pending = false, false
		if st.fired {
			st.fired = false
			return r.outcomeFalse(ctx, set, cr, 0, now, 0, acts)
		}
	}
	return acts
}

func (r *Runner) ruleError(cr *crule, err error, now time.Time, acts []Action) []Action {
	cr.stats.errors.Add(1)
	r.log.Warn("rule evaluation failed", "rule", cr.spec.ID, "err", err)
	ev := &model.Event{ID: r.id("ev"), Time: now, Kind: model.EventRuleError, Source: "rule:" + cr.spec.ID,
		Severity: model.SeverityMedium, Message: err.Error(), Attrs: map[string]string{"rule": cr.spec.ID}}
	a := Action{Rule: cr.spec.ID, Type: ActionEvent, Event: ev, Time: now}
	a.fail(err)
	return append(acts, a)
}

func (r *Runner) id(prefix string) string {
	return prefix + "-" + strconv.FormatUint(r.seq.Add(1), 10)
}

// fire runs the actions of a rule whose condition (or pattern) holds, then follows
// its true, success and failure edges.
func (r *Runner) fire(ctx context.Context, set *ruleSet, cr *crule, key int, now time.Time, depth int, acts []Action) []Action {
	st := cr.state
	last := &st.lastFired
	if cr.pat != nil {
		last = &st.pat[key].lastFired
	}
	if cr.spec.Cooldown > 0 && !last.IsZero() && now.Sub(*last) < cr.spec.Cooldown {
		cr.stats.suppressed.Add(1)
		return acts
	}
	st.fired = true
	*last = now
	st.lastFired = now
	cr.stats.matches.Add(1)
	cr.stats.lastFired.Store(now.UnixNano())
	acts, ok := r.runActions(ctx, cr, cr.actions[key], key, now, acts, false)
	acts = r.follow(ctx, set, cr, EdgeTrue, now, depth, acts)
	if ok {
		return r.follow(ctx, set, cr, EdgeSuccess, now, depth, acts)
	}
	return r.follow(ctx, set, cr, EdgeFailure, now, depth, acts)
}

func (r *Runner) outcomeFalse(ctx context.Context, set *ruleSet, cr *crule, key int, now time.Time, depth int, acts []Action) []Action {
	acts, _ = r.runActions(ctx, cr, cr.elses[key], key, now, acts, false)
	return r.follow(ctx, set, cr, EdgeFalse, now, depth, acts)
}

// follow evaluates the targets of the edges of kind k.
func (r *Runner) follow(ctx context.Context, set *ruleSet, cr *crule, k EdgeKind, now time.Time, depth int, acts []Action) []Action {
	for _, ti := range cr.next[k] {
		t := set.rules[ti]
		if t.spec.Disabled {
			continue
		}
		if depth+1 > r.cfg.depth {
			acts = r.ruleError(t, fmt.Errorf("%w: %s reached from %s at depth %d (limit %d)", ErrChainDepth, t.spec.ID, cr.spec.ID, depth+1, r.cfg.depth), now, acts)
			continue
		}
		res := r.evalLocked(t.core)
		switch {
		case res.skip:
		case res.err != nil:
			acts = r.ruleError(t, res.err, now, acts)
		case res.val:
			acts = r.fire(ctx, set, t, 0, now, depth+1, acts)
		default:
			acts = r.outcomeFalse(ctx, set, t, 0, now, depth+1, acts)
		}
	}
	return acts
}

// Tick runs the time-driven work due at now: interval and cron rules, hold times
// that elapsed, and pattern timeouts (negations and within bounds). Call it about
// every 100 ms from the goroutine that calls Process.
func (r *Runner) Tick(ctx context.Context, now time.Time) ([]Action, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	set := r.prepare(now)
	outs := r.outs[:0]
	for _, ri := range set.holds {
		cr := set.rules[ri]
		if st := cr.state; st.pending && now.Sub(st.since) >= cr.spec.Hold {
			outs = append(outs, outcome{rule: ri, kind: outCond, res: evalResult{val: true}})
		}
	}
	for _, ri := range set.scheduled {
		cr := set.rules[ri]
		st := cr.state
		if st.next.IsZero() {
			st.next = cr.sched.Next(now)
			continue
		}
		if now.Before(st.next) {
			continue
		}
		for !st.next.After(now) {
			st.next = cr.sched.Next(st.next)
		}
		outs = append(outs, outcome{rule: ri, kind: outCond, res: r.evalLocked(cr.core)})
	}
	for _, ri := range set.patterns {
		cr := set.rules[ri]
		for k := range cr.state.pat {
			if cr.pat.expire(&cr.state.pat[k], now) {
				outs = append(outs, outcome{rule: ri, kind: outMatch, key: int32(k)})
			}
		}
	}
	slices.SortStableFunc(outs, func(a, b outcome) int { return int(a.rule) - int(b.rule) })
	var acts []Action
	for _, o := range outs {
		cr := set.rules[o.rule]
		switch {
		case o.kind == outMatch:
			acts = r.fire(ctx, set, cr, int(o.key), now, 0, acts)
		case cr.sched == nil: // a hold that elapsed
			cr.state.pending = false
			acts = r.fire(ctx, set, cr, 0, now, 0, acts)
		case o.res.skip:
		case o.res.err != nil:
			acts = r.ruleError(cr, o.res.err, now, acts)
		case o.res.val:
			acts = r.fire(ctx, set, cr, 0, now, 0, acts)
		default:
			acts = r.outcomeFalse(ctx, set, cr, 0, now, 0, acts)
		}
	}
	r.outs = outs[:0]
	return acts, nil
}

// runActions carries out acts. dry skips every side effect (executor, alarms state,
// webhooks, logs). It reports whether every action succeeded.
func (r *Runner) runActions(ctx context.Context, cr *crule, acts []*caction, key int, now time.Time, out []Action, dry bool) ([]Action, bool) {
	ok := true
	id := cr.spec.ID
	k := ""
	if cr.pat != nil {
		k = cr.pat.keys[key]
	}
	st := r.st
	for _, ca := range acts {
		a := Action{Rule: id, Type: ca.spec.Type, Key: k, Time: now}
		var err error
		switch ca.spec.Type {
		case ActionSet:
			var v float64
			v, err = r.evalValue(ca.value)
			if err != nil {
				break
			}
			cmd := &model.Command{ID: r.id("cmd"), Point: ca.point, Value: v, Source: "rule:" + id, Time: now}
			a.Command = cmd
			if r.cfg.exec != nil && !dry {
				cctx, cancel := context.WithTimeout(ctx, r.cfg.cmdTimeout)
				err = r.cfg.exec.Execute(cctx, *cmd)
				cancel()
				a.Executed = true
			}
		case ActionEvent:
			kind := model.EventRuleFired
			if ca.spec.Kind != "" {
				kind = model.EventKind(ca.spec.Kind)
			}
			var msg string
			msg, err = r.render(ca.msg)
			a.Event = &model.Event{ID: r.id("ev"), Time: now, Kind: kind, Source: "rule:" + id, Severity: ca.spec.Severity, Message: msg, Attrs: attrs(id, k, "")}
		case ActionRaise, ActionClear:
			name := ca.spec.Alarm
			if k != "" {
				name = k + "." + name
			}
			active := cr.state.alarms[name]
			if active == (ca.spec.Type == ActionRaise) {
				continue // already in that state
			}
			if !dry {
				if active {
					delete(cr.state.alarms, name)
				} else {
					if cr.state.alarms == nil {
						cr.state.alarms = map[string]bool{}
					}
					cr.state.alarms[name] = true
				}
			}
			kind, sev, msg := model.EventAlarmRaised, ca.spec.Severity, "alarm "+name+" raised"
			if ca.spec.Type == ActionClear {
				kind, msg = model.EventAlarmCleared, "alarm "+name+" cleared"
			}
			if ca.msg != nil {
				msg, err = r.render(ca.msg)
			}
			a.Event = &model.Event{ID: r.id("ev"), Time: now, Kind: kind, Source: "rule:" + id, Severity: sev, Message: msg, Attrs: attrs(id, k, name)}
		case ActionPublish:
			for _, p := range ca.pubs {
				if sl, ok := st.slots[p]; ok && int(sl) < len(st.meta) && st.valid(sl) {
					a.Samples = append(a.Samples, model.Sample{Point: p, Value: st.val[sl], Time: st.updatedAt(sl), Quality: model.Good})
				}
			}
		case ActionLog:
			a.Message, err = r.render(ca.msg)
			if err == nil && !dry {
				r.log.Log(ctx, logLevel(ca.spec.Level), a.Message, "rule", id)
				a.Executed = true
			}
		case ActionWebhook:
			a.Message = ca.spec.URL
			var body string
			if ca.body != nil {
				body, err = r.render(ca.body)
			} else {
				body = defaultBody(id, k, now, cr, st)
			}
			if err == nil && !dry {
				err = r.hooks.enqueue(hookJob{spec: ca.spec, body: body, stats: cr.stats, rule: id})
			}
		}
		if err != nil {
			ok = false
			a.fail(err)
		}
		if !dry && (ca.spec.Type == ActionSet && a.Executed || err != nil) {
			if err != nil {
				cr.stats.actFail.Add(1)
				r.log.Warn("rule action failed", "rule", id, "action", string(ca.spec.Type), "err", err)
			} else {
				cr.stats.actOK.Add(1)
			}
		} else if !dry && ca.spec.Type != ActionSet && ca.spec.Type != ActionWebhook {
			cr.stats.actOK.Add(1)
		}
		out = append(out, a)
	}
	return out, ok
}

func attrs(rule, key, alarm string) map[string]string {
	m := map[string]string{"rule": rule}
	if key != "" {
		m["key"] = key
	}
	if alarm != "" {
		m["alarm"] = alarm
	}
	return m
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (r *Runner) evalValue(p *program) (float64, error) {
	if !r.st.ready(p.rw.refs) {
		return 0, fmt.Errorf("%w: value %q reads a point without value", ErrMissingValue, p.rw.orig)
	}
	if p.fastN != nil {
		return p.fastN(r.st.val), nil
	}
	out, err := r.ws[0].run(p)
	if err != nil {
		return 0, errors.New(p.rw.compileErr(err).Msg)
	}
	return toFloat(out)
}

func (r *Runner) render(t *template) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.static() {
		return t.parts[0], nil
	}
	var b strings.Builder
	for i, p := range t.progs {
		b.WriteString(t.parts[i])
		if !r.st.ready(p.rw.refs) {
			b.WriteString("?")
			continue
		}
		out, err := r.ws[0].run(p)
		if err != nil {
			return "", errors.New(p.rw.compileErr(err).Msg)
		}
		b.WriteString(formatValue(out))
	}
	b.WriteString(t.parts[len(t.parts)-1])
	return b.String(), nil
}

// patternEvent evaluates one event condition of a pattern after a sample of a point
// it reads, and feeds an occurrence (rising edge) to the pattern. It reports a match.
func (r *Runner) patternEvent(set *ruleSet, pr patRef, now time.Time) bool {
	cr := set.rules[pr.rule]
	p := cr.pat.conds[pr.key][pr.event]
	ks := &cr.state.pat[pr.key]
	res := r.eval(&r.ws[0], &core{cond: p, stats: cr.stats})
	if res.skip {
		return false
	}
	if res.err != nil {
		cr.stats.errors.Add(1)
		r.log.Warn("pattern event evaluation failed", "rule", cr.spec.ID, "event", cr.pat.events[pr.event], "err", res.err)
		return false
	}
	was := ks.last[pr.event]
	ks.last[pr.event] = res.val
	if !res.val || was {
		return false
	}
	before := ks.dropped
	m := cr.pat.occur(ks, int(pr.event), now)
	if d := ks.dropped - before; d > 0 {
		cr.stats.partialsDropped.Add(d)
	}
	return m
}

const maxPartials = 64

// occur feeds an occurrence of event ev at now; it reports a completed match.
func (cp *cpattern) occur(ks *patKeyState, ev int, now time.Time) bool {
	within := cp.pat.Within
	steps := cp.steps
	kept := ks.partials[:0]
	matched := false
	for _, p := range ks.partials {
		if within > 0 && now.Sub(p.start) > within {
			if p.i == len(steps)-1 && steps[p.i].not {
				matched = true // a trailing negation that Tick has not seen expire yet
			}
			continue
		}
		if cp.without[ev] {
			continue
		}
		s := steps[p.i]
		switch {
		case s.not && s.ev == ev:
			continue // the negated event occurred
		case s.not && p.i+1 < len(steps) && steps[p.i+1].ev == ev:
			p.n++
			if p.n >= steps[p.i+1].count {
				p.i, p.n = p.i+2, 0
			}
		case !s.not && s.ev == ev:
			p.n++
			if p.n >= s.count {
				p.i, p.n = p.i+1, 0
			}
		case cp.pat.Strict:
			continue
		}
		if p.i == len(steps) {
			matched = true
		}
		kept = append(kept, p)
	}
	ks.partials = kept
	if !matched && !cp.without[ev] && steps[0].ev == ev {
		p := partial{start: now, n: 1}
		if steps[0].count <= 1 {
			p.i, p.n = 1, 0
		}
		if p.i == len(steps) {
			matched = true
		} else {
			if len(ks.partials) >= maxPartials {
				ks.partials = ks.partials[1:]
				ks.dropped++
			}
			ks.partials = append(ks.partials, p)
		}
	}
	if matched {
		ks.partials = ks.partials[:0]
	}
	return matched
}

// expire drops partial matches older than within; one waiting on a trailing
// negation completes instead. It reports a match.
func (cp *cpattern) expire(ks *patKeyState, now time.Time) bool {
	within := cp.pat.Within
	last := len(cp.steps) - 1
	kept := ks.partials[:0]
	matched := false
	for _, p := range ks.partials {
		if now.Sub(p.start) >= within {
			if p.i == last && cp.steps[last].not {
				matched = true
			}
			continue
		}
		kept = append(kept, p)
	}
	ks.partials = kept
	if matched {
		ks.partials = ks.partials[:0]
	}
	return matched
}
