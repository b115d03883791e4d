package ruletest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// TickInterval is the step in which Advance calls Tick, as the EMS does.
const TickInterval = 100 * time.Millisecond

// Harness drives one rule.Runner in a test.
type Harness struct {
	T testing.TB
	R *rule.Runner
	// All holds every action produced since the harness was created.
	All []rule.Action
	// Last holds the actions of the latest Set, Feed or Advance call.
	Last []rule.Action
}

// New builds a Runner with opts; it is closed when the test ends.
func New(t testing.TB, opts ...rule.Option) *Harness {
	t.Helper()
	r, err := rule.New(opts...)
	if err != nil {
		t.Fatalf("ruletest: rule.New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &Harness{T: t, R: r}
}

// Load builds a Runner with the rules of a YAML file and opts.
func Load(t testing.TB, path string, opts ...rule.Option) *Harness {
	t.Helper()
	return New(t, append([]rule.Option{rule.WithRulesFile(path)}, opts...)...)
}

func (h *Harness) record(acts []rule.Action, err error) []rule.Action {
	h.T.Helper()
	if err != nil {
		h.T.Fatalf("ruletest: %v", err)
	}
	h.Last = acts
	h.All = append(h.All, acts...)
	return acts
}

// Feed processes one batch of samples; samples without a time get time.Now().
func (h *Harness) Feed(samples ...model.Sample) []rule.Action {
	h.T.Helper()
	now := time.Now()
	for i := range samples {
		if samples[i].Time.IsZero() {
			samples[i].Time = now
		}
	}
	return h.record(h.R.Process(context.Background(), samples))
}

// Set processes one sample of good quality.
func (h *Harness) Set(point string, v float64) []rule.Action {
	h.T.Helper()
	return h.Feed(model.Sample{Point: point, Value: v})
}

// SetAll processes one batch with the given values, in point order.
func (h *Harness) SetAll(values map[string]float64) []rule.Action {
	h.T.Helper()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	batch := make([]model.Sample, len(keys))
	for i, k := range keys {
		batch[i] = model.Sample{Point: k, Value: values[k]}
	}
	return h.Feed(batch...)
}

// Advance lets d pass, calling Tick every TickInterval like the EMS does. Outside a
// testing/synctest bubble it really sleeps.
func (h *Harness) Advance(d time.Duration) []rule.Action {
	h.T.Helper()
	var acts []rule.Action
	for d > 0 {
		step := min(d, TickInterval)
		time.Sleep(step)
		d -= step
		a, err := h.R.Tick(context.Background(), time.Now())
		if err != nil {
			h.T.Fatalf("ruletest: Tick: %v", err)
		}
		acts = append(acts, a...)
	}
	h.Last = acts
	h.All = append(h.All, acts...)
	return acts
}

// Commands returns the commands of acts.
func Commands(acts []rule.Action) []model.Command {
	var out []model.Command
	for _, a := range acts {
		if a.Command != nil {
			out = append(out, *a.Command)
		}
	}
	return out
}

// Events returns the events of acts.
func Events(acts []rule.Action) []model.Event {
	var out []model.Event
	for _, a := range acts {
		if a.Event != nil {
			out = append(out, *a.Event)
		}
	}
	return out
}

// ExpectCommand fails the test unless the latest step produced a command for point with value.
func (h *Harness) ExpectCommand(point string, value float64) model.Command {
	h.T.Helper()
	for _, c := range Commands(h.Last) {
		if c.Point == point && approx(c.Value, value) {
			return c
		}
	}
	h.T.Fatalf("ruletest: no command %s=%g in %s", point, value, Describe(h.Last))
	return model.Command{}
}

// ExpectEvent fails the test unless the latest step produced an event of kind from rule.
func (h *Harness) ExpectEvent(kind model.EventKind, ruleID string) model.Event {
	h.T.Helper()
	for _, e := range Events(h.Last) {
		if e.Kind == kind && (ruleID == "" || e.Source == "rule:"+ruleID) {
			return e
		}
	}
	h.T.Fatalf("ruletest: no %s event from %q in %s", kind, ruleID, Describe(h.Last))
	return model.Event{}
}

// ExpectNone fails the test if the latest step produced any action.
func (h *Harness) ExpectNone() {
	h.T.Helper()
	if len(h.Last) > 0 {
		h.T.Fatalf("ruletest: want no action, got %s", Describe(h.Last))
	}
}

func approx(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// Describe formats actions for failure messages.
func Describe(acts []rule.Action) string {
	if len(acts) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.WriteString("[")
	for i, a := range acts {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s:%s", a.Rule, a.Type)
		if a.Command != nil {
			fmt.Fprintf(&b, " %s=%g", a.Command.Point, a.Command.Value)
		}
		if a.Event != nil {
			fmt.Fprintf(&b, " %s %q", a.Event.Kind, a.Event.Message)
		}
		if a.Error != "" {
			fmt.Fprintf(&b, " error %q", a.Error)
		}
	}
	b.WriteString("]")
	return b.String()
}
