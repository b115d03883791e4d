package rule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Rules returns the loaded rules in definition order.
func (r *Runner) Rules() []Spec {
	set := r.cur.Load()
	out := make([]Spec, len(set.specs))
	for i, s := range set.specs {
		out[i] = *s
	}
	return out
}

// Rule returns the rule with the given id, or ErrUnknownRule.
func (r *Runner) Rule(id string) (Spec, error) {
	set := r.cur.Load()
	cr, ok := set.byID[id]
	if !ok {
		return Spec{}, fmt.Errorf("%w: %q", ErrUnknownRule, id)
	}
	return *cr.spec, nil
}

// Add compiles and adds a rule. It fails with ErrDuplicateRule when the id is
// loaded, or with ErrInvalidRule and the rule's ConfigErrors.
func (r *Runner) Add(s Spec) error {
	return r.change(func(specs []*Spec) ([]*Spec, error) {
		for _, o := range specs {
			if o.ID == s.ID {
				return nil, fmt.Errorf("%w: %q", ErrDuplicateRule, s.ID)
			}
		}
		return append(specs, &s), nil
	})
}

// Update replaces the rule with the same id. Its run-time state (hold timer,
// cooldown, pattern matches) restarts; its statistics are kept.
func (r *Runner) Update(s Spec) error {
	return r.change(func(specs []*Spec) ([]*Spec, error) {
		i := slices.IndexFunc(specs, func(o *Spec) bool { return o.ID == s.ID })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRule, s.ID)
		}
		specs[i] = &s
		return specs, nil
	})
}

// Remove removes a rule. It fails with ErrInvalidRule when another rule chains to it.
func (r *Runner) Remove(id string) error {
	return r.change(func(specs []*Spec) ([]*Spec, error) {
		i := slices.IndexFunc(specs, func(o *Spec) bool { return o.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRule, id)
		}
		return slices.Delete(specs, i, i+1), nil
	})
}

// Enable enables a rule.
func (r *Runner) Enable(id string) error { return r.setDisabled(id, false) }

// Disable disables a rule: it is no longer evaluated; chains skip it.
func (r *Runner) Disable(id string) error { return r.setDisabled(id, true) }

func (r *Runner) setDisabled(id string, off bool) error {
	return r.change(func(specs []*Spec) ([]*Spec, error) {
		i := slices.IndexFunc(specs, func(o *Spec) bool { return o.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRule, id)
		}
		c := *specs[i]
		c.Disabled = off
		specs[i] = &c
		return specs, nil
	})
}

// Replace swaps the whole rule set (a reload). Rules that did not change keep their
// state and compiled form. A set that does not compile is rejected whole.
func (r *Runner) Replace(specs []Spec) error {
	return r.change(func([]*Spec) ([]*Spec, error) {
		out := make([]*Spec, len(specs))
		for i := range specs {
			s := specs[i]
			out[i] = &s
		}
		return out, nil
	})
}

// ReplaceYAML parses a rule file (see Parse) and replaces the rule set with it.
func (r *Runner) ReplaceYAML(data []byte, file string) error {
	specs, err := Parse(data, file)
	if err != nil {
		return err
	}
	return r.Replace(specs)
}

func (r *Runner) change(f func([]*Spec) ([]*Spec, error)) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	specs, err := f(slices.Clone(r.cur.Load().specs))
	if err != nil {
		return err
	}
	return r.commit(specs)
}

// DryRunResult is the outcome of DryRun.
type DryRunResult struct {
	Rule    string   `json:"rule"`
	Matched bool     `json:"matched"`
	Actions []Action `json:"actions,omitempty"`
}

// DryRun evaluates the condition of rule id on the given point values and returns
// the actions it would take, without executing or logging anything and without
// touching the running state (custom alarms count as inactive). Helpers that need history (prev, since, windows)
// see none. Pattern rules cannot be dry-run.
func (r *Runner) DryRun(id string, values map[string]float64) (DryRunResult, error) {
	set := r.cur.Load()
	cr, ok := set.byID[id]
	if !ok {
		return DryRunResult{}, fmt.Errorf("%w: %q", ErrUnknownRule, id)
	}
	if cr.pat != nil {
		return DryRunResult{}, fmt.Errorf("rule: %s: a pattern rule cannot be dry-run", id)
	}
	st := newStore()
	st.fit(set)
	st.now = time.Now()
	for p, v := range values {
		if sl, ok := set.slots.index[p]; ok {
			st.set(sl, v, false, st.now)
		}
	}
	// A private runner view: the same set, the private store, no side effects.
	d := &Runner{cfg: r.cfg, log: r.log, st: st, ws: newWorkers(1, st)}
	res := DryRunResult{Rule: id}
	if cr.cond != nil {
		var missing []string
		for _, sl := range cr.cond.rw.refs {
			if !st.valid(sl) {
				missing = append(missing, set.slots.ids[sl])
			}
		}
		if len(missing) > 0 {
			return res, fmt.Errorf("%w: %s", ErrMissingValue, strings.Join(missing, ", "))
		}
		e := d.eval(&d.ws[0], &core{cond: cr.cond, stats: &ruleStats{}})
		if e.err != nil {
			return res, e.err
		}
		res.Matched = e.val
	} else {
		res.Matched = true
	}
	shadow := &crule{core: &core{spec: cr.spec, actions: cr.actions, elses: cr.elses, state: newRuleState(), stats: &ruleStats{}}, idx: cr.idx}
	acts := cr.actions[0]
	if !res.Matched {
		acts = cr.elses[0]
	}
	res.Actions, _ = d.runActions(context.Background(), shadow, acts, 0, st.now, nil, true)
	return res, nil
}

// ruleStats are the counters of one rule, kept across reloads.
type ruleStats struct {
	// Written on every evaluation: plain fields, guarded by Runner.statsMu, which
	// Process and Tick hold for writing (so evaluation pays no atomic operation)
	// and Stats for reading.
	evals                       uint64
	latency, maxLatency, timedN int64
	// Written rarely, also by the webhook goroutine.
	matches, actOK, actFail, errors, overruns, suppressed, partialsDropped atomic.Uint64
	lastFired                                                              atomic.Int64
}

// timed records one measured evaluation.
func (s *ruleStats) timed(d time.Duration) {
	s.timedN++
	s.latency += int64(d)
	s.maxLatency = max(s.maxLatency, int64(d))
}

// Stats are the statistics of one rule.
type Stats struct {
	Rule            string        `json:"rule"`
	Evaluations     uint64        `json:"evaluations"`
	Matches         uint64        `json:"matches"`
	Suppressed      uint64        `json:"suppressed"` // firings skipped by the cooldown
	ActionSuccesses uint64        `json:"action_successes"`
	ActionFailures  uint64        `json:"action_failures"`
	Errors          uint64        `json:"errors"`
	Overruns        uint64        `json:"overruns"`
	PartialsDropped uint64        `json:"partials_dropped"` // pattern partial matches dropped at the limit of 64 per key
	LastFired       time.Time     `json:"last_fired,omitzero"`
	MeanLatency     time.Duration `json:"mean_latency_ns"` // fast-path conditions are timed one evaluation in 64
	MaxLatency      time.Duration `json:"max_latency_ns"`
}

func (s *ruleStats) snapshot(id string) Stats {
	out := Stats{Rule: id, Evaluations: s.evals, Matches: s.matches.Load(), Suppressed: s.suppressed.Load(),
		ActionSuccesses: s.actOK.Load(), ActionFailures: s.actFail.Load(), Errors: s.errors.Load(), Overruns: s.overruns.Load(), PartialsDropped: s.partialsDropped.Load(),
		MaxLatency: time.Duration(s.maxLatency)}
	if t := s.lastFired.Load(); t != 0 {
		out.LastFired = time.Unix(0, t)
	}
	if s.timedN > 0 {
		out.MeanLatency = time.Duration(s.latency / s.timedN)
	}
	return out
}

// Stats returns the statistics of every loaded rule, in definition order.
func (r *Runner) Stats() []Stats {
	r.statsMu.RLock()
	defer r.statsMu.RUnlock()
	set := r.cur.Load()
	out := make([]Stats, 0, len(set.specs))
	for _, s := range set.specs {
		out = append(out, set.byID[s.ID].stats.snapshot(s.ID))
	}
	return out
}

// RuleStats returns the statistics of one rule.
func (r *Runner) RuleStats(id string) (Stats, error) {
	r.statsMu.RLock()
	defer r.statsMu.RUnlock()
	cr, ok := r.cur.Load().byID[id]
	if !ok {
		return Stats{}, fmt.Errorf("%w: %q", ErrUnknownRule, id)
	}
	return cr.stats.snapshot(id), nil
}

// collector exposes the statistics as Prometheus metrics, read at scrape time so
// that evaluation pays nothing for them.
type collector struct{ r *Runner }

var (
	descEvals    = prometheus.NewDesc("ems_rule_evaluations_total", "Rule condition evaluations.", []string{"rule"}, nil)
	descMatches  = prometheus.NewDesc("ems_rule_matches_total", "Times a rule fired.", []string{"rule"}, nil)
	descSupp     = prometheus.NewDesc("ems_rule_suppressed_total", "Firings skipped by the cooldown.", []string{"rule"}, nil)
	descActions  = prometheus.NewDesc("ems_rule_actions_total", "Rule actions by result.", []string{"rule", "result"}, nil)
	descErrors   = prometheus.NewDesc("ems_rule_errors_total", "Rule evaluation errors (overruns included).", []string{"rule"}, nil)
	descOverruns = prometheus.NewDesc("ems_rule_overruns_total", "Evaluations past the budget.", []string{"rule"}, nil)
	descLatency  = prometheus.NewDesc("ems_rule_evaluation_mean_seconds", "Mean evaluation latency (fast-path conditions sampled one in 64).", []string{"rule"}, nil)
	descPartDrop = prometheus.NewDesc("ems_rule_pattern_partials_dropped_total", "Pattern partial matches dropped at the limit per key.", []string{"rule"}, nil)
	descHookDrop = prometheus.NewDesc("ems_rule_webhook_dropped_total", "Webhook calls dropped because the queue was full or the engine closed.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvals, descMatches, descSupp, descActions, descErrors, descOverruns, descLatency, descPartDrop, descHookDrop} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.r.statsMu.RLock()
	defer c.r.statsMu.RUnlock()
	set := c.r.cur.Load()
	for _, s := range set.specs {
		st := set.byID[s.ID].stats
		id := s.ID
		ch <- prometheus.MustNewConstMetric(descEvals, prometheus.CounterValue, float64(st.evals), id)
		ch <- prometheus.MustNewConstMetric(descMatches, prometheus.CounterValue, float64(st.matches.Load()), id)
		ch <- prometheus.MustNewConstMetric(descSupp, prometheus.CounterValue, float64(st.suppressed.Load()), id)
		ch <- prometheus.MustNewConstMetric(descActions, prometheus.CounterValue, float64(st.actOK.Load()), id, "success")
		ch <- prometheus.MustNewConstMetric(descActions, prometheus.CounterValue, float64(st.actFail.Load()), id, "failure")
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.errors.Load()), id)
		ch <- prometheus.MustNewConstMetric(descOverruns, prometheus.CounterValue, float64(st.overruns.Load()), id)
		ch <- prometheus.MustNewConstMetric(descPartDrop, prometheus.CounterValue, float64(st.partialsDropped.Load()), id)
		var mean float64
		if st.timedN > 0 {
			mean = time.Duration(st.latency / st.timedN).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, mean, id)
	}
	ch <- prometheus.MustNewConstMetric(descHookDrop, prometheus.CounterValue, float64(c.r.hooks.dropped.Load()))
}
