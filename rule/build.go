package rule

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
)

// ruleSet is an immutable compiled rule set; a reload builds a new one and swaps it in.
type ruleSet struct {
	rules     []*crule  // in evaluation order: priority descending, then definition order
	hot       []hotRule // the same order: what evaluation needs, densely packed
	byID      map[string]*crule
	specs     []*Spec // definition order
	slots     *slotTable
	idxOff    []int32 // slot -> change-triggered rules reading it: idxRules[idxOff[s]:idxOff[s+1]]
	idxRules  []int32
	patOff    []int32 // slot -> pattern events reading it: patRefs[patOff[s]:patOff[s+1]]
	patRefs   []patRef
	scheduled []int32 // interval and cron rules
	holds     []int32 // rules with a hold time
	patterns  []int32 // pattern rules with a within bound
	retention map[int32]window
	gen       uint32 // build generation, for the point lookup cache
}

// hotRule is the part of a rule the evaluation loop touches, kept in one dense
// array so that evaluating thousands of rules does not chase pointers.
type hotRule struct {
	code  []instr // slices of one shared array
	fast  fastBool
	refs  []int32 // slices of one shared array
	stats *ruleStats
	state *ruleState
	core  *core
}

type patRef struct {
	rule, key, event int32
}

// crule is a compiled rule within a set.
type crule struct {
	*core
	idx  int32
	next map[EdgeKind][]int32
}

// core is the compiled, set-independent part of a rule; it is reused by a reload
// when the rule did not change.
type core struct {
	spec    *Spec
	fp      string
	cond    *program
	sched   schedule
	actions [][]*caction // per partition key (one entry when not partitioned)
	elses   [][]*caction
	pat     *cpattern
	state   *ruleState
	stats   *ruleStats
}

type caction struct {
	spec  ActionSpec
	point string
	value *program
	msg   *template
	body  *template
	pubs  []string
}

type cpattern struct {
	pat     *Pattern
	keys    []string     // partition keys; one "" when not partitioned
	events  []string     // event names
	conds   [][]*program // [key][event]
	steps   []pstep
	without []bool // by event
}

type pstep struct {
	ev    int
	not   bool
	count int
}

type schedule interface{ Next(time.Time) time.Time }

type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

func fingerprint(s *Spec) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// build validates and compiles specs into a new set. Nothing of r changes when it fails.
// It must be called with r.mu held.
func (r *Runner) build(specs []*Spec) (*ruleSet, map[string]*core, *slotTable, error) {
	var errs model.ConfigErrors
	ids := map[string]bool{}
	flat := make([]Spec, len(specs))
	for i, s := range specs {
		s.validate(&errs)
		if ids[s.ID] && s.ID != "" {
			errs = append(errs, s.errf("id", s.ID, "duplicate rule id"))
		}
		ids[s.ID] = true
		flat[i] = *s
	}
	errs = append(errs, chainErrors(flat)...)
	if len(errs) > 0 {
		return nil, nil, nil, invalid(errs)
	}
	slots := r.slots.clone()
	cores := make(map[string]*core, len(specs))
	for _, s := range specs {
		fp := fingerprint(s)
		if old := r.cores[s.ID]; old != nil && old.fp == fp {
			cores[s.ID] = old
			continue
		}
		c, cerrs := r.compile(s, slots)
		errs = append(errs, cerrs...)
		if c != nil {
			c.fp = fp
			if old := r.cores[s.ID]; old != nil {
				c.stats = old.stats
			}
			cores[s.ID] = c
		}
	}
	// New statistics come from one slab, so that rules evaluated together have
	// their counters side by side.
	var fresh []*core
	for _, s := range specs {
		if c := cores[s.ID]; c != nil && c.stats == nil {
			fresh = append(fresh, c)
		}
	}
	slab := make([]ruleStats, len(fresh))
	for i, c := range fresh {
		c.stats = &slab[i]
	}
	fresh = fresh[:0]
	for _, s := range specs {
		if c := cores[s.ID]; c != nil && c.state == nil {
			fresh = append(fresh, c)
		}
	}
	states := make([]ruleState, len(fresh))
	for i, c := range fresh {
		c.state = &states[i]
	}
	if len(errs) > 0 {
		return nil, nil, nil, invalid(errs)
	}
	r.gen++
	set := &ruleSet{byID: map[string]*crule{}, specs: specs, slots: slots, retention: map[int32]window{}, gen: r.gen}
	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(specs[b].Priority, specs[a].Priority) })
	for _, i := range order {
		c := cores[specs[i].ID]
		cr := &crule{core: c, idx: int32(len(set.rules)), next: map[EdgeKind][]int32{}}
		set.rules = append(set.rules, cr)
		set.byID[c.spec.ID] = cr
	}
	var nrefs int
	for _, cr := range set.rules {
		if cr.cond != nil {
			nrefs += len(cr.cond.rw.refs)
		}
	}
	refs := make([]int32, 0, nrefs)
	var ncode int
	for _, cr := range set.rules {
		if cr.cond != nil {
			ncode += len(cr.cond.code)
		}
	}
	code := make([]instr, 0, ncode)
	set.hot = make([]hotRule, len(set.rules))
	for i, cr := range set.rules {
		h := hotRule{stats: cr.stats, state: cr.state, core: cr.core}
		if cr.cond != nil {
			start := len(refs)
			refs = append(refs, cr.cond.rw.refs...)
			h.refs = refs[start:len(refs):len(refs)]
			h.fast = cr.cond.fastB
			if c := cr.cond.code; c != nil {
				start := len(code)
				code = append(code, c...)
				h.code = code[start:len(code):len(code)]
			}
		}
		set.hot[i] = h
	}
	index := make([][]int32, len(slots.ids))
	patIndex := make([][]patRef, len(slots.ids))
	for _, cr := range set.rules {
		for _, e := range cr.spec.Next {
			cr.next[e.On] = append(cr.next[e.On], set.byID[e.Rule].idx)
		}
		addWins := func(p *program) {
			for _, w := range p.wins {
				old := set.retention[w.slot]
				old.span = max(old.span, w.span)
				old.count = max(old.count, w.count)
				set.retention[w.slot] = old
			}
		}
		for _, ks := range [][][]*caction{cr.actions, cr.elses} {
			for _, acts := range ks {
				for _, a := range acts {
					if a.value != nil {
						addWins(a.value)
					}
				}
			}
		}
		if cr.cond != nil {
			addWins(cr.cond)
		}
		if cr.spec.Disabled {
			continue
		}
		switch {
		case cr.pat != nil:
			for k, evs := range cr.pat.conds {
				for e, p := range evs {
					addWins(p)
					for _, sl := range p.rw.refs {
						patIndex[sl] = append(patIndex[sl], patRef{cr.idx, int32(k), int32(e)})
					}
				}
			}
			if cr.pat.pat.Within > 0 {
				set.patterns = append(set.patterns, cr.idx)
			}
		case cr.sched != nil:
			set.scheduled = append(set.scheduled, cr.idx)
		case cr.spec.Trigger.Kind == TriggerChain:
		default:
			for _, sl := range cr.cond.rw.refs {
				index[sl] = append(index[sl], cr.idx)
			}
			if cr.spec.Hold > 0 {
				set.holds = append(set.holds, cr.idx)
			}
		}
	}
	set.idxOff, set.idxRules = csr(index)
	set.patOff, set.patRefs = csr(patIndex)
	return set, cores, slots, nil
}

// csr packs per-slot lists into one array with offsets.
func csr[T any](lists [][]T) ([]int32, []T) {
	off := make([]int32, len(lists)+1)
	var n int
	for _, l := range lists {
		n += len(l)
	}
	flat := make([]T, 0, n)
	for i, l := range lists {
		off[i] = int32(len(flat))
		flat = append(flat, l...)
	}
	off[len(lists)] = int32(len(flat))
	return off, flat
}

// compile compiles one rule, reporting every error with its position.
func (r *Runner) compile(s *Spec, slots *slotTable) (*core, model.ConfigErrors) {
	var errs model.ConfigErrors
	exprErr := func(field string, src string, e *exprError) {
		ce := s.errf(field, "", "%s", e.Msg)
		if n := s.node[field]; n != nil {
			block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
			quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
			ce.Line, ce.Column = lineCol(src, e.Off, n.Line, n.Column, block, quoted)
		}
		if e.Off < len(src) {
			end := e.Off + 24
			if end > len(src) {
				end = len(src)
			}
			ce.Value = src[e.Off:end]
		}
		errs = append(errs, ce)
	}
	c := &core{spec: s}
	cat := r.cat
	if s.Condition != "" {
		p, es := compileExpr(s.Condition, "", boolExpr, cat, slots, r.cfg.funcs)
		for _, e := range es {
			exprErr("condition", s.Condition, e)
		}
		c.cond = p
	}
	switch s.Trigger.Kind {
	case TriggerInterval:
		c.sched = every(s.Trigger.Every)
	case TriggerCron:
		sc, err := cronParser.Parse(s.Trigger.Cron)
		if err != nil {
			errs = append(errs, s.errf("trigger", s.Trigger.Cron, "invalid cron spec: %v", err))
		}
		c.sched = sc
	}
	keys := []string{""}
	if s.Pattern != "" {
		pat, err := ParsePattern(s.Pattern)
		if err != nil {
			errs = append(errs, s.errf("pattern", s.Pattern, "%v", err))
			return nil, errs
		}
		cp := &cpattern{pat: pat}
		if s.Partition != nil {
			keys = append([]string(nil), s.Partition.Keys...)
			if s.Partition.Template != "" {
				if r.cfg.model == nil {
					errs = append(errs, s.errf("partition", s.Partition.Template, "partition by template needs WithModel"))
				} else if ins := r.cfg.model.InstancesOf(s.Partition.Template); len(ins) == 0 {
					errs = append(errs, s.errf("partition", s.Partition.Template, "no instance of this template"))
				} else {
					keys = append(keys, ins...)
				}
			}
		}
		cp.keys = keys
		evIdx := map[string]int{}
		for i, ev := range s.Events {
			evIdx[ev.Name] = i
			cp.events = append(cp.events, ev.Name)
		}
		used := map[string]bool{}
		for _, st := range pat.Steps {
			i, ok := evIdx[st.Event]
			if !ok {
				errs = append(errs, s.errf("pattern", st.Event, "unknown event (define it under events)"))
				continue
			}
			used[st.Event] = true
			cp.steps = append(cp.steps, pstep{ev: i, not: st.Not, count: st.Count})
		}
		cp.without = make([]bool, len(s.Events))
		for _, n := range pat.Without {
			i, ok := evIdx[n]
			if !ok {
				errs = append(errs, s.errf("pattern", n, "unknown event (define it under events)"))
				continue
			}
			if used[n] {
				errs = append(errs, s.errf("pattern", n, "an event cannot be both a step and a without"))
			}
			cp.without[i] = true
			used[n] = true
		}
		for _, ev := range s.Events {
			if !used[ev.Name] {
				errs = append(errs, s.errf("events."+ev.Name, ev.Name, "event not used by the pattern"))
			}
		}
		for _, k := range keys {
			var row []*program
			for _, ev := range s.Events {
				p, es := compileExpr(ev.When, k, boolExpr, cat, slots, r.cfg.funcs)
				for _, e := range es {
					if k != "" {
						e.Msg = fmt.Sprintf("%s (key %s)", e.Msg, k)
					}
					exprErr("events."+ev.Name, ev.When, e)
				}
				row = append(row, p)
			}
			cp.conds = append(cp.conds, row)
		}
		c.pat = cp
	}
	for _, k := range keys {
		c.actions = append(c.actions, r.compileActions(s, "actions", s.Actions, k, slots, &errs, exprErr))
		c.elses = append(c.elses, r.compileActions(s, "else", s.Else, k, slots, &errs, exprErr))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func (r *Runner) compileActions(s *Spec, field string, acts []ActionSpec, key string, slots *slotTable, errs *model.ConfigErrors, exprErr func(string, string, *exprError)) []*caction {
	var out []*caction
	sub := func(p string) string {
		if key != "" && strings.HasPrefix(p, "$.") {
			return key + p[1:]
		}
		return p
	}
	for i, a := range acts {
		f := fmt.Sprintf("%s[%d]", field, i)
		ca := &caction{spec: a}
		switch a.Type {
		case ActionSet:
			ca.point = sub(a.Point)
			if strings.HasPrefix(ca.point, "$.") {
				*errs = append(*errs, s.errf(f+".point", a.Point, "\"$.\" is only allowed in partitioned patterns"))
			} else if !r.cat.exists(ca.point) {
				*errs = append(*errs, s.errf(f+".point", ca.point, "unknown point"))
			} else if k, ok := r.cat.kind(ca.point); ok && !k.Writable() {
				*errs = append(*errs, s.errf(f+".point", ca.point, "cannot set a %s (%s) point: only C and A points accept commands", k, k.Name()))
			}
			p, es := compileExpr(a.Value, key, numExpr, r.cat, slots, r.cfg.funcs)
			for _, e := range es {
				exprErr(f+".value", a.Value, e)
			}
			ca.value = p
		case ActionPublish:
			for _, p := range a.Points {
				p = sub(p)
				if !r.cat.exists(p) {
					*errs = append(*errs, s.errf(f+".points", p, "unknown point"))
				}
				slots.slot(p)
				ca.pubs = append(ca.pubs, p)
			}
		}
		for _, tf := range []struct {
			name string
			src  string
			dst  **template
		}{{"message", a.Message, &ca.msg}, {"body", a.Body, &ca.body}} {
			if tf.src == "" {
				continue
			}
			t, es := compileTemplate(tf.src, key, r.cat, slots, r.cfg.funcs)
			for _, e := range es {
				exprErr(f+"."+tf.name, tf.src, e)
			}
			*tf.dst = t
		}
		out = append(out, ca)
	}
	return out
}

// pointCatalogue is the existence and kind check built from the options.
type pointCatalogue struct {
	m      *model.Model
	points map[string]bool
	known  map[string]bool // model points, cached
}

func newCatalogue(m *model.Model, points map[string]bool) *pointCatalogue {
	c := &pointCatalogue{m: m, points: points}
	if m != nil {
		c.known = map[string]bool{}
		for _, p := range m.Points() {
			c.known[p] = true
		}
	}
	return c
}

func (c *pointCatalogue) checks() bool { return c.m != nil || c.points != nil }

func (c *pointCatalogue) exists(id string) bool {
	if !c.checks() {
		return id != ""
	}
	return c.points[id] || c.known[id]
}

// kind finds the kind of a point: from the device model (measurements are T or S,
// actions A or C, computed points T) or from a channel point id ("ch1.T.7").
func (c *pointCatalogue) kind(id string) (model.Kind, bool) {
	if c.m != nil {
		for _, cp := range c.m.Computed {
			if cp.Point == id {
				return model.Telemetry, true
			}
		}
		if i := strings.LastIndexByte(id, '.'); i > 0 {
			if in, ok := c.m.Instance(id[:i]); ok {
				name := id[i+1:]
				for _, ms := range c.m.Measurements(in.Template) {
					if ms.Name == name {
						if ms.Kind == 0 {
							return model.Telemetry, true
						}
						return ms.Kind, true
					}
				}
				for _, a := range c.m.Actions(in.Template) {
					if a.Name == name {
						if a.Kind == 0 {
							return model.Adjustment, true
						}
						return a.Kind, true
					}
				}
			}
		}
	}
	if _, k, _, err := model.ParseChannelPointID(id); err == nil {
		return k, true
	}
	return 0, false
}
