package rule_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
	"github.com/voltage-ems/ems/rule/ruletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func siteModel(t testing.TB) *model.Model {
	t.Helper()
	b := []byte(`
templates:
  - name: Battery
    measurements: [{name: soc}, {name: temperature}, {name: cooling_on, kind: S}]
    actions: [{name: cooling_cmd, kind: C}]
  - name: PCS
    measurements: [{name: active_power}]
    actions: [{name: power_setpoint, kind: A}]
instances:
  - {name: bms1, template: Battery}
  - {name: bms2, template: Battery}
  - {name: pcs1, template: PCS}
`)
	var m model.Model
	require.NoError(t, yaml.Unmarshal(b, &m))
	return &m
}

func harness(t testing.TB, rules string, opts ...rule.Option) *ruletest.Harness {
	t.Helper()
	return ruletest.New(t, append([]rule.Option{rule.WithRulesYAML([]byte(rules), "test.yaml")}, opts...)...)
}

// cmds formats the commands of acts as "point=value" strings.
func cmds(acts []rule.Action) []string {
	var out []string
	for _, c := range ruletest.Commands(acts) {
		out = append(out, fmt.Sprintf("%s=%g", c.Point, c.Value))
	}
	return out
}

func rulesOf(acts []rule.Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Rule+":"+string(a.Type))
	}
	return out
}

func configErrs(t *testing.T, err error) []*model.ConfigError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, rule.ErrInvalidRule)
	return model.AsConfigErrors(err)
}

func find(errs []*model.ConfigError, sub string) *model.ConfigError {
	for _, e := range errs {
		if strings.Contains(e.Error(), sub) {
			return e
		}
	}
	return nil
}

func TestParseReportsAllErrorsTogether(t *testing.T) {
	src := `rules:
  - id: a
    condition: x.y > 1
    hold: ten seconds
    colour: red
    actions: [{set: {point: p.q, value: "1"}}]
    next: [{on: true, rule: b}]
  - id: b
    trigger: {cron: "61 * * * *"}
    actions: [{log: hi}]
    next: [{on: success, rule: c}]
  - id: c
    condition: x.y > 2
    actions: [{shout: loud}]
    next: [{on: false, rule: a}, {on: maybe, rule: nowhere}]
  - id: a
    condition: x.y > 3
    actions: [{log: dup}]
`
	_, err := rule.Parse([]byte(src), "rules.yaml")
	errs := configErrs(t, err)
	for _, want := range []struct {
		sub      string
		id       string
		line, co int
	}{
		{`hold "ten seconds": invalid duration`, "a", 4, 11},
		{"colour: unknown field", "a", 5, 5},
		{`trigger.cron "61 * * * *": invalid cron spec`, "b", 9, 21},
		{`unknown action`, "c", 14, 16},
		{`next[1].on "maybe": unknown edge`, "c", 15, 39},
		{`next[1].rule "nowhere": edge to unknown rule`, "c", 15, 52},
		{`duplicate rule id (first defined at line 2)`, "a", 16, 9},
		{`chain cycle: a -> b -> c -> a`, "c", 15, 11},
	} {
		e := find(errs, want.sub)
		if assert.NotNil(t, e, "missing %q in\n%v", want.sub, err) {
			assert.Equal(t, "rules.yaml", e.File)
			assert.Equal(t, want.id, e.ID, want.sub)
			assert.Equal(t, want.line, e.Line, want.sub)
			assert.Equal(t, want.co, e.Column, want.sub)
		}
	}
	assert.Len(t, errs, 8, "%v", err)
}

func TestParseSyntaxError(t *testing.T) {
	_, err := rule.Parse([]byte("rules:\n  - id: a\n    condition: [1\n"), "bad.yaml")
	errs := configErrs(t, err)
	require.Len(t, errs, 1)
	assert.Equal(t, "bad.yaml", errs[0].File)
	assert.Positive(t, errs[0].Line)
}

func TestCompileErrorsWithModel(t *testing.T) {
	src := `rules:
  - id: unknown_point
    condition: bms1.soc > 95 && pcs9.active_power < 0
    actions: [{log: x}]
  - id: type_error
    condition: bms1.soc > "full"
    actions: [{log: x}]
  - id: syntax
    condition: "bms1.soc > > 3"
    actions: [{log: x}]
  - id: set_on_telemetry
    condition: bms1.soc > 95
    actions: [{set: {point: bms1.soc, value: "0"}}]
  - id: bad_value
    condition: bms1.soc > 95
    actions: [{set: {point: pcs1.power_setpoint, value: "bms1.soc + nope.x"}}]
  - id: window_not_constant
    condition: avg_over(bms1.soc, string(bms1.soc)) > 3
    actions: [{log: x}]
`
	_, err := rule.New(rule.WithRulesYAML([]byte(src), "site.yaml"), rule.WithModel(siteModel(t)))
	errs := configErrs(t, err)
	for _, want := range []struct {
		sub, id  string
		line, co int
	}{
		{`unknown point "pcs9.active_power"`, "unknown_point", 3, 33},
		{`mismatched types float64 and string`, "type_error", 6, 25},
		{`unexpected token Operator(">")`, "syntax", 9, 28},
		{`cannot set a T (telemetry) point`, "set_on_telemetry", 13, 29},
		{`unknown point "nope.x"`, "bad_value", 16, 69},
		{`avg_over needs a constant positive duration`, "window_not_constant", 18, 16},
	} {
		e := find(errs, want.sub)
		if assert.NotNil(t, e, "missing %q in\n%v", want.sub, err) {
			assert.Equal(t, want.id, e.ID, want.sub)
			assert.Equal(t, want.line, e.Line, want.sub)
			assert.Equal(t, want.co, e.Column, want.sub)
		}
	}
	assert.Len(t, errs, 6, "%v", err)
}

func TestWithPointsAndNoCatalogue(t *testing.T) {
	src := `rules:
  - id: r
    condition: ch1.T.7 > 3 && soc > 1
    actions: [{set: {point: ch1.A.2, value: "ch1.T.7 * 2"}}]
`
	// Without a catalogue every identifier is a point.
	h := harness(t, src)
	h.SetAll(map[string]float64{"ch1.T.7": 4, "soc": 2})
	assert.Equal(t, []string{"ch1.A.2=8"}, cmds(h.Last))

	// With a catalogue the check applies; channel ids carry their kind.
	_, err := rule.New(rule.WithRulesYAML([]byte(src), "x"), rule.WithPoints([]string{"ch1.T.7", "ch1.A.2"}))
	errs := configErrs(t, err)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Msg, "unknown name soc")

	src2 := strings.ReplaceAll(src, "ch1.A.2", "ch1.S.2")
	_, err = rule.New(rule.WithRulesYAML([]byte(src2), "x"))
	errs = configErrs(t, err)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Msg, "cannot set a S (signal) point")
}

func TestChangeTriggerFiresOnRisingEdge(t *testing.T) {
	h := harness(t, `rules:
  - id: hi
    condition: a.x > 10
    actions: [{set: {point: a.y, value: "a.x * 2"}}]
    else: [{set: {point: a.y, value: "-1"}}]
`)
	h.Set("a.x", 5)
	h.ExpectNone()
	h.Set("a.x", 11)
	assert.Equal(t, []string{"a.y=22"}, cmds(h.Last))
	h.Set("a.x", 12) // still true: no new firing
	h.ExpectNone()
	h.Set("a.x", 3)
	assert.Equal(t, []string{"a.y=-1"}, cmds(h.Last))
	h.Set("other.point", 3)
	h.ExpectNone()
}

func TestBadQualityMakesPointUnknown(t *testing.T) {
	h := harness(t, `rules:
  - id: lo
    condition: a.x < 10
    actions: [{log: low}]
`)
	h.Feed(model.Sample{Point: "a.x", Value: 1, Quality: model.Bad(model.ReasonCommFailure)})
	h.ExpectNone()
	h.Feed(model.Sample{Point: "a.x", Value: 1, Quality: model.Uncertain(model.ReasonStale)})
	assert.Equal(t, []string{"lo:log"}, rulesOf(h.Last))
}

func TestIntervalAndCronTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := harness(t, `rules:
  - id: every2s
    trigger: {interval: 2s}
    condition: a.x > 0
    actions: [{log: tick}]
    else: [{log: tock}]
  - id: minutely
    trigger: {cron: "0 * * * * *"}
    actions: [{log: minute}]
`)
		h.Set("a.x", 1)
		h.Advance(100 * time.Millisecond) // schedules
		var fired []string
		for range 60 {
			for _, a := range h.Advance(time.Second) {
				fired = append(fired, a.Rule+"@"+a.Time.Format("04:05.0"))
			}
		}
		n2, n60 := 0, 0
		for _, f := range fired {
			if strings.HasPrefix(f, "every2s") {
				n2++
			} else {
				n60++
				assert.True(t, strings.HasSuffix(f, ":00.0"), f)
			}
		}
		assert.Equal(t, 30, n2, "%v", fired)
		assert.Equal(t, 1, n60, "%v", fired)
		h.Set("a.x", -1)
		assert.Equal(t, "tock", h.Advance(2 * time.Second)[0].Message)
	})
}

func TestHoldAndCooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := harness(t, `rules:
  - id: r
    condition: a.x > 10
    hold: 2s
    cooldown: 1m
    actions: [{log: fired}]
`)
		h.Set("a.x", 11)
		h.Advance(1900 * time.Millisecond)
		h.ExpectNone()
		h.Advance(100 * time.Millisecond)
		assert.Equal(t, []string{"r:log"}, rulesOf(h.Last))
		// clear and re-trigger within the cooldown: suppressed
		h.Set("a.x", 1)
		h.Set("a.x", 11)
		h.Advance(5 * time.Second)
		h.ExpectNone()
		st, err := h.R.RuleStats("r")
		require.NoError(t, err)
		assert.Equal(t, uint64(1), st.Matches)
		assert.Equal(t, uint64(1), st.Suppressed)
		// after the cooldown a new rising edge fires again
		h.Advance(time.Minute)
		h.Set("a.x", 1)
		h.Set("a.x", 12)
		h.Advance(2 * time.Second)
		assert.Equal(t, []string{"r:log"}, rulesOf(h.Last))
	})
}

// executor fails commands to points listed in fail.
type executor struct {
	fail map[string]bool
	got  []model.Command
}

func (e *executor) Execute(_ context.Context, c model.Command) error {
	e.got = append(e.got, c)
	if e.fail[c.Point] {
		return &model.CommandError{Point: c.Point, Value: c.Value, Err: model.ErrOutOfRange}
	}
	return nil
}

func TestChainEdges(t *testing.T) {
	src := `rules:
  - id: start
    condition: a.x > 10
    actions: [{set: {point: a.cmd, value: "a.x"}}]
    next:
      - {on: true, rule: on_true}
      - {on: false, rule: on_false}
      - {on: success, rule: on_success}
      - {on: failure, rule: on_failure}
  - id: on_true
    trigger: chain
    condition: a.x > 100
    actions: [{log: big}]
    else: [{log: small}]
  - id: on_false
    trigger: chain
    actions: [{log: cleared}]
  - id: on_success
    trigger: chain
    actions: [{log: ok}]
  - id: on_failure
    trigger: chain
    actions: [{event: {severity: high, message: "command failed"}}]
`
	ex := &executor{fail: map[string]bool{}}
	h := harness(t, src, rule.WithExecutor(ex))
	h.Set("a.x", 50)
	assert.Equal(t, []string{"start:set", "on_true:log", "on_success:log"}, rulesOf(h.Last))
	assert.True(t, h.Last[0].Executed)
	assert.Equal(t, "small", h.Last[1].Message)
	assert.Equal(t, "ok", h.Last[2].Message)
	h.Set("a.x", 1)
	assert.Equal(t, []string{"on_false:log"}, rulesOf(h.Last))

	ex.fail["a.cmd"] = true
	h.Set("a.x", 500)
	assert.Equal(t, []string{"start:set", "on_true:log", "on_failure:event"}, rulesOf(h.Last))
	assert.ErrorIs(t, h.Last[0].Err, model.ErrOutOfRange)
	assert.Contains(t, h.Last[0].Error, "out of range")
	assert.Equal(t, "big", h.Last[1].Message)
	st, _ := h.R.RuleStats("start")
	assert.Equal(t, uint64(1), st.ActionSuccesses)
	assert.Equal(t, uint64(1), st.ActionFailures)
	assert.Len(t, ex.got, 2)

	// Without an executor, commands come back unexecuted.
	h2 := harness(t, src)
	h2.Set("a.x", 50)
	assert.False(t, h2.Last[0].Executed)
	assert.Equal(t, []string{"start:set", "on_true:log", "on_success:log"}, rulesOf(h2.Last))
}

func TestChainDepthLimit(t *testing.T) {
	h := harness(t, `rules:
  - {id: a, condition: x.v > 0, actions: [{log: a}], next: [{on: true, rule: b}]}
  - {id: b, trigger: chain, actions: [{log: b}], next: [{on: true, rule: c}]}
  - {id: c, trigger: chain, actions: [{log: c}], next: [{on: true, rule: d}]}
  - {id: d, trigger: chain, actions: [{log: d}]}
`, rule.WithChainDepth(2))
	h.Set("x.v", 1)
	assert.Equal(t, []string{"a:log", "b:log", "c:log", "d:event"}, rulesOf(h.Last))
	ev := h.Last[3].Event
	assert.Equal(t, model.EventRuleError, ev.Kind)
	assert.ErrorIs(t, h.Last[3].Err, rule.ErrChainDepth)
}

func TestRuntimeErrorIsCountedAndOthersRun(t *testing.T) {
	h := harness(t, `rules:
  - id: broken
    priority: 10
    condition: int(a.x) % int(a.y) == 0
    actions: [{log: never}]
  - id: fine
    condition: a.x > 0
    actions: [{log: fine}]
`)
	h.SetAll(map[string]float64{"a.x": 4, "a.y": 0})
	require.Equal(t, []string{"broken:event", "fine:log"}, rulesOf(h.Last))
	ev := h.Last[0].Event
	assert.Equal(t, model.EventRuleError, ev.Kind)
	assert.Equal(t, "rule:broken", ev.Source)
	assert.Contains(t, ev.Message, "integer divide by zero")
	st, _ := h.R.RuleStats("broken")
	assert.Equal(t, uint64(1), st.Errors)
}

func TestBudgetOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := rule.WithFunction("slow", func(p ...any) (any, error) {
			time.Sleep(50 * time.Millisecond)
			return p[0], nil
		}, new(func(float64) float64))
		h := harness(t, `rules:
  - {id: slow, priority: 1, condition: slow(a.x) > 0, actions: [{log: slow}]}
  - {id: quick, condition: a.x > 0, actions: [{log: quick}]}
`, slow, rule.WithBudget(10*time.Millisecond))
		h.Set("a.x", 1)
		require.Equal(t, []string{"slow:event", "quick:log"}, rulesOf(h.Last))
		assert.ErrorIs(t, h.Last[0].Err, rule.ErrBudget)
		st, _ := h.R.RuleStats("slow")
		assert.Equal(t, uint64(1), st.Overruns)
		assert.Equal(t, 50*time.Millisecond, st.MaxLatency)
	})
}

func TestHelpersPrevSinceAndWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := harness(t, `rules:
  - id: jump
    condition: a.x - prev(a.x) > 10
    actions: [{log: "jump from {{ prev(a.x) }} to {{ a.x }}"}]
  - id: stuck
    trigger: {interval: 1s}
    condition: since(a.x) >= 5 && age(a.x) < 2
    actions: [{log: stuck}]
  - id: sliding
    trigger: {interval: 1s}
    condition: avg_over(b.x, "10s") > 5 && count_over(b.x, "10s") >= 3
    actions: [{log: "avg {{ avg_over(b.x, \"10s\") }} max {{ max_over(b.x, \"10s\") }} min {{ min_over(b.x, \"10s\") }} sum {{ sum_over(b.x, \"10s\") }}"}]
`)
		h.Set("a.x", 1)
		h.Set("a.x", 5)
		h.ExpectNone()
		h.Set("a.x", 20)
		require.Equal(t, []string{"jump:log"}, rulesOf(h.Last))
		assert.Equal(t, "jump from 5 to 20", h.Last[0].Message)

		// since: the value stays 20 (same-value samples refresh age, not since)
		var stuck []string
		for range 6 {
			for _, a := range h.Advance(time.Second) {
				stuck = append(stuck, a.Rule)
			}
			h.Set("a.x", 20)
		}
		assert.Contains(t, stuck, "stuck")

		// sliding window over b.x: 3 samples 2, 8, 8 -> avg 6
		h.Set("b.x", 2)
		h.Set("b.x", 8)
		h.Advance(time.Second)
		h.Set("b.x", 8)
		var acts []rule.Action
		for _, a := range h.Advance(time.Second) {
			if a.Rule == "sliding" {
				acts = append(acts, a)
			}
		}
		require.Len(t, acts, 1)
		assert.Equal(t, "avg 6 max 8 min 2 sum 18", acts[0].Message)
	})
}

func TestCountAndTumblingWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := harness(t, `rules:
  - id: counted
    condition: sum_last(c.x, 3) >= 30
    actions: [{log: "last3 {{ avg_last(c.x, 3) }}"}]
  - id: tumbling
    trigger: {interval: 10s}
    condition: count_tumbling(d.x, "1m") > 0
    actions: [{log: "bucket max {{ max_tumbling(d.x, \"1m\") }} n {{ count_tumbling(d.x, \"1m\") }}"}]
`)
		h.Set("c.x", 5)
		h.Set("c.x", 10)
		h.ExpectNone()
		h.Set("c.x", 15)
		require.Equal(t, []string{"counted:log"}, rulesOf(h.Last))
		assert.Equal(t, "last3 10", h.Last[0].Message)

		// synctest starts at midnight: samples in minute 0, read in minute 1.
		h.Advance(10 * time.Second)
		h.Set("d.x", 3)
		h.Set("d.x", 7)
		acts := h.Advance(40 * time.Second) // still in minute 0: the previous bucket is empty
		assert.Empty(t, acts)
		acts = h.Advance(20 * time.Second) // minute 1
		require.NotEmpty(t, acts)
		assert.Equal(t, "bucket max 7 n 2", acts[0].Message)
	})
}

func TestDryRun(t *testing.T) {
	h := harness(t, `rules:
  - id: r
    condition: a.x > 10 && b.y < 5
    actions:
      - set: {point: a.cmd, value: "a.x / 2"}
      - raise: {alarm: high, severity: high, message: "x={{ a.x }}"}
      - log: never logged
    else: [{clear: high}]
`)
	res, err := h.R.DryRun("r", map[string]float64{"a.x": 30, "b.y": 1})
	require.NoError(t, err)
	assert.True(t, res.Matched)
	assert.Equal(t, []string{"a.cmd=15"}, cmds(res.Actions))
	assert.Equal(t, "x=30", res.Actions[1].Event.Message)
	assert.False(t, res.Actions[2].Executed)

	res, err = h.R.DryRun("r", map[string]float64{"a.x": 3, "b.y": 1})
	require.NoError(t, err)
	assert.False(t, res.Matched)
	assert.Empty(t, res.Actions) // the alarm is not active: nothing to clear

	_, err = h.R.DryRun("r", map[string]float64{"a.x": 3})
	assert.ErrorIs(t, err, rule.ErrMissingValue)
	assert.ErrorContains(t, err, "b.y")
	_, err = h.R.DryRun("nope", nil)
	assert.ErrorIs(t, err, rule.ErrUnknownRule)

	// the running engine was not touched
	h.Set("a.x", 30)
	h.ExpectNone() // b.y has no value yet
}

func TestManagement(t *testing.T) {
	h := harness(t, `rules:
  - {id: a, condition: x.v > 0, actions: [{log: a}], next: [{on: true, rule: b}]}
  - {id: b, trigger: chain, actions: [{log: b}]}
`)
	r := h.R
	assert.ErrorIs(t, r.Add(rule.Spec{ID: "a", Condition: "x.v > 1", Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "x"}}}), rule.ErrDuplicateRule)
	err := r.Add(rule.Spec{ID: "c", Condition: "x.v >", Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "x"}}})
	assert.ErrorIs(t, err, rule.ErrInvalidRule)
	require.NoError(t, r.Add(rule.Spec{ID: "c", Condition: "x.v > 5", Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "c"}}}))
	assert.Len(t, r.Rules(), 3)

	err = r.Remove("b") // a chains to b
	errs := configErrs(t, err)
	assert.Contains(t, errs[0].Msg, "edge to unknown rule")
	assert.ErrorIs(t, r.Remove("zzz"), rule.ErrUnknownRule)
	assert.ErrorIs(t, r.Update(rule.Spec{ID: "zzz"}), rule.ErrUnknownRule)

	h.Set("x.v", 10)
	assert.Equal(t, []string{"a:log", "b:log", "c:log"}, rulesOf(h.Last))

	require.NoError(t, r.Disable("b"))
	s, err := r.Rule("b")
	require.NoError(t, err)
	assert.True(t, s.Disabled)
	h.Set("x.v", 0)
	h.Set("x.v", 10)
	assert.Equal(t, []string{"a:log", "c:log"}, rulesOf(h.Last))
	require.NoError(t, r.Enable("b"))

	require.NoError(t, r.Update(rule.Spec{ID: "c", Condition: "x.v > 50", Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "c2"}}}))
	h.Set("x.v", 0)
	h.Set("x.v", 60)
	assert.Equal(t, []string{"a:log", "b:log", "c:log"}, rulesOf(h.Last))
	assert.Equal(t, "c2", h.Last[2].Message)
	st, _ := r.RuleStats("c")
	assert.Equal(t, uint64(3), st.Matches, "stats survive an update")

	require.NoError(t, r.Close())
	_, err = r.Process(context.Background(), nil)
	assert.ErrorIs(t, err, rule.ErrClosed)
	assert.ErrorIs(t, r.Add(rule.Spec{}), rule.ErrClosed)
}

func TestLoaderErrorsAreConfigErrors(t *testing.T) {
	_, err := rule.New(rule.WithRulesFile("testdata/does-not-exist.yaml"))
	assert.Error(t, err)
	_, err = rule.New(rule.WithWorkers(0))
	assert.ErrorContains(t, err, "WithWorkers")
	_, err = rule.New(rule.WithRules(rule.Spec{ID: "x"}))
	errs := configErrs(t, err)
	assert.Len(t, errs, 2) // no condition, no action
	assert.True(t, errors.Is(err, rule.ErrInvalidRule))
}

func TestPublishEventLogAndAlarmActions(t *testing.T) {
	var logs strings.Builder
	h := harness(t, `rules:
  - id: r
    condition: a.x > 10
    actions:
      - publish: [a.x, b.y, c.never]
      - event: {kind: site.overload, severity: critical, message: "x is {{ a.x * 2 }}"}
      - log: {level: warn, message: "over by {{ a.x - 10 }}"}
      - raise: {alarm: over, severity: high}
      - raise: {alarm: over}
    else:
      - clear: over
      - clear: over
`, rule.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	h.Set("b.y", 3)
	acts := h.Set("a.x", 12)
	require.Equal(t, []string{"r:publish", "r:event", "r:log", "r:raise"}, rulesOf(acts), "a raised alarm is not raised twice")
	assert.Equal(t, []model.Sample{{Point: "a.x", Value: 12, Time: acts[0].Samples[0].Time}, {Point: "b.y", Value: 3, Time: acts[0].Samples[1].Time}}, acts[0].Samples)
	ev := acts[1].Event
	assert.Equal(t, model.EventKind("site.overload"), ev.Kind)
	assert.Equal(t, model.SeverityCritical, ev.Severity)
	assert.Equal(t, "x is 24", ev.Message)
	assert.Equal(t, "rule:r", ev.Source)
	assert.Equal(t, "over by 2", acts[2].Message)
	assert.True(t, acts[2].Executed)
	assert.Contains(t, logs.String(), `level=WARN msg="over by 2" rule=r`)
	assert.Equal(t, model.EventAlarmRaised, acts[3].Event.Kind)
	assert.Equal(t, model.SeverityHigh, acts[3].Event.Severity)

	acts = h.Set("a.x", 1)
	require.Equal(t, []string{"r:clear"}, rulesOf(acts), "an alarm is cleared once")
	assert.Equal(t, model.EventAlarmCleared, acts[0].Event.Kind)
	assert.Equal(t, "over", acts[0].Event.Attrs["alarm"])
}

func TestSpecValidate(t *testing.T) {
	s := rule.Spec{ID: "bad id", Trigger: rule.Trigger{Kind: rule.TriggerInterval}, Hold: time.Second, Actions: []rule.ActionSpec{
		{Type: rule.ActionWebhook, URL: "ftp://x"},
		{Type: rule.ActionSet},
		{Type: rule.ActionLog, Message: "x", Level: "loud"},
		{Type: "dance"},
	}}
	err := s.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"may not contain spaces", "interval trigger needs a positive duration", "hold applies only to rules triggered on change",
		"webhook needs an http or https url", "set needs a point", "set needs a value expression", "unknown level", "unknown action"} {
		assert.Contains(t, msg, want)
	}
}

func TestReloadKeepsStateOfUnchangedRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := `rules:
  - {id: held, condition: a.x > 10, hold: 5s, actions: [{log: held}]}
  - {id: other, condition: b.y > 1, actions: [{log: other}]}
`
		h := harness(t, src)
		h.Set("a.x", 11)
		h.Advance(3 * time.Second)
		specs, err := rule.Parse([]byte(src+"  - {id: added, condition: c.z > 1, actions: [{log: added}]}\n"), "v2.yaml")
		require.NoError(t, err)
		require.NoError(t, h.R.Replace(specs)) // held is unchanged: its hold timer goes on
		assert.Equal(t, []string{"held:log"}, rulesOf(h.Advance(2*time.Second)))

		h.Set("a.x", 1)
		h.Set("a.x", 11)
		h.Advance(3 * time.Second)
		s, _ := h.R.Rule("held")
		s.Hold = 4 * time.Second
		require.NoError(t, h.R.Update(s)) // changed: its state restarts
		assert.Empty(t, h.Advance(5*time.Second), "the new rule has not seen a rising edge")
		h.Set("a.x", 1)
		h.Set("a.x", 12)
		assert.Equal(t, []string{"held:log"}, rulesOf(h.Advance(4*time.Second)))
	})
}
