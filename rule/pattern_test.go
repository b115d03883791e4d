package rule_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voltage-ems/ems/rule"
	"github.com/voltage-ems/ems/rule/ruletest"
)

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"a -> b within 2s", "a -> b within 2s"},
		{"a->b->c within 1m strict", "a -> b -> c within 1m0s strict"},
		{"hot{3} within 10m without cooling", "hot{3} within 10m0s without cooling"},
		{"a -> !b within 5s", "a -> !b within 5s"},
		{"a -> !b -> c relaxed", "a -> !b -> c"},
		{"a without x, y", "a without x, y"},
	} {
		p, err := rule.ParsePattern(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.out, p.String())
		p2, err := rule.ParsePattern(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, p2)
	}
	for _, tc := range []struct {
		in  string
		off int
		msg string
	}{
		{"", 0, "expected an event name, found the end"},
		{"a ->", 4, "found the end"},
		{"a -> b within", 13, "within needs a positive duration"},
		{"a -> b within soon", 14, `found "soon"`},
		{"!a -> b", 0, "cannot start with a negation"},
		{"a -> !b", 0, "needs within"},
		{"a{0}", 2, "count must be an integer"},
		{"a{3", 3, "expected }"},
		{"a -> !b{2} within 1s", 5, "negated step takes no count"},
		{"a within 1s -> b", 12, "steps come first"},
		{"a + b", 2, `unexpected "+"`},
		{"a -> within", 5, "keyword"},
		{"a -> !b -> !c within 1s", 0, "two negations"},
	} {
		_, err := rule.ParsePattern(tc.in)
		var pe *rule.PatternError
		if assert.True(t, errors.As(err, &pe), "%q: %v", tc.in, err) {
			assert.Equal(t, tc.off, pe.Offset, tc.in)
			assert.Contains(t, pe.Msg, tc.msg, tc.in)
		}
	}
}

func TestPatternErrorPositionInYAML(t *testing.T) {
	_, err := rule.Parse([]byte(`rules:
  - id: p
    events: {a: x.v > 1, b: x.w > 1}
    pattern: a -> b within soon
    actions: [{log: x}]
`), "p.yaml")
	errs := configErrs(t, err)
	require.Len(t, errs, 1)
	assert.Equal(t, 4, errs[0].Line)
	assert.Equal(t, 28, errs[0].Column)
	assert.Equal(t, "p", errs[0].ID)
}

func TestPatternCompileErrors(t *testing.T) {
	_, err := rule.New(rule.WithRulesYAML([]byte(`rules:
  - id: p
    events: {a: x.v > 1, b: x.w > 1, unused: x.z > 1}
    pattern: a -> c within 1s without b, a
    actions: [{log: x}]
  - id: q
    partition: [k1]
    events: {a: $.v > "x"}
    pattern: a
    actions: [{log: x}]
`), "p.yaml"))
	errs := configErrs(t, err)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.ID+": "+e.Field+" "+e.Value+": "+e.Msg)
	}
	all := strings.Join(msgs, "\n")
	assert.Contains(t, all, "p: pattern c: unknown event")
	assert.Contains(t, all, "p: pattern a: an event cannot be both a step and a without")
	assert.Contains(t, all, "p: events.unused unused: event not used by the pattern")
	assert.Contains(t, all, "q: events.a")
	assert.Contains(t, all, "mismatched types float64 and string) (key k1)")
}

// occurrences feeds rising edges of the named events (each event e reads point "e.v").
func pulse(h *ruletest.Harness, names ...string) []rule.Action {
	var acts []rule.Action
	for _, n := range names {
		h.Set(n+".v", 0)
		acts = append(acts, h.Set(n+".v", 1)...)
	}
	return acts
}

func patternHarness(t *testing.T, pattern string, events ...string) *ruletest.Harness {
	src := "rules:\n  - id: p\n    events:\n"
	for _, e := range events {
		src += "      " + e + ": " + e + ".v == 1\n"
	}
	src += "    pattern: " + pattern + "\n    actions: [{log: match}]\n"
	return harness(t, src)
}

func TestPatternSequenceRelaxedAndStrict(t *testing.T) {
	h := patternHarness(t, "a -> b -> c", "a", "b", "c")
	assert.Empty(t, pulse(h, "a", "c", "b"))
	assert.Len(t, pulse(h, "c"), 1, "relaxed: the c between a and b is skipped")
	assert.Empty(t, pulse(h, "c"), "a match consumes its partial matches")

	s := patternHarness(t, "a -> b -> c strict", "a", "b", "c")
	assert.Empty(t, pulse(s, "a", "c", "b", "c"), "strict: c between a and b breaks the match")
	assert.Len(t, pulse(s, "a", "b", "c"), 1)
	assert.Empty(t, pulse(s, "a", "a", "b"))
	assert.Len(t, pulse(s, "c"), 1, "strict: the second a starts a new match")
}

func TestPatternWithin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := patternHarness(t, "a -> b within 2s", "a", "b")
		pulse(h, "a")
		h.Advance(1900 * time.Millisecond)
		assert.Len(t, pulse(h, "b"), 1)
		pulse(h, "a")
		h.Advance(2100 * time.Millisecond)
		assert.Empty(t, pulse(h, "b"))
		// a later a still matches when an earlier one expired (relaxed, several partial matches)
		pulse(h, "a")
		h.Advance(1500 * time.Millisecond)
		pulse(h, "a")
		h.Advance(1000 * time.Millisecond)
		assert.Len(t, pulse(h, "b"), 1)
	})
}

func TestPatternTrailingNegation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := patternHarness(t, "a -> !b within 5s", "a", "b")
		pulse(h, "a")
		assert.Empty(t, h.Advance(4900*time.Millisecond))
		acts := h.Advance(100 * time.Millisecond)
		require.Len(t, acts, 1, "no b within 5 s after a")
		assert.Equal(t, "match", acts[0].Message)

		pulse(h, "a")
		h.Advance(3 * time.Second)
		pulse(h, "b")
		assert.Empty(t, h.Advance(5*time.Second), "b came in time")
	})
}

func TestPatternMiddleNegation(t *testing.T) {
	h := patternHarness(t, "a -> !b -> c", "a", "b", "c")
	assert.Len(t, pulse(h, "a", "c"), 1)
	assert.Empty(t, pulse(h, "a", "b", "c"), "b between a and c")
}

func TestPatternCountAndWithout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := patternHarness(t, "a{3} within 1m without x", "a", "x")
		pulse(h, "a", "a")
		h.Advance(30 * time.Second)
		assert.Len(t, pulse(h, "a"), 1)

		pulse(h, "a", "a")
		h.Advance(61 * time.Second)
		assert.Empty(t, pulse(h, "a"), "the first two are older than 1 m")
		assert.Len(t, pulse(h, "a", "a"), 1, "the 3rd, 4th and 5th are within the minute")

		pulse(h, "a", "a")
		pulse(h, "x")
		assert.Empty(t, pulse(h, "a"), "x cleared every partial match")
		assert.Empty(t, pulse(h, "a"))
		assert.Len(t, pulse(h, "a"), 1)
	})
}

func TestPatternPartition(t *testing.T) {
	h := harness(t, `rules:
  - id: p
    partition: {keys: [d1, d2]}
    events:
      a: $.alarm == 1
      b: $.reset == 1
    pattern: a -> b
    actions:
      - set: {point: $.ack, value: "$.alarm + 10"}
`)
	h.SetAll(map[string]float64{"d1.alarm": 0, "d2.alarm": 0, "d1.reset": 0, "d2.reset": 0})
	h.Set("d1.alarm", 1)
	assert.Empty(t, h.Set("d2.reset", 1), "another device's b does not complete d1's match")
	acts := h.Set("d1.reset", 1)
	require.Len(t, acts, 1)
	assert.Equal(t, "d1", acts[0].Key)
	assert.Equal(t, []string{"d1.ack=11"}, cmds(acts))
}

func TestPatternPartitionByTemplate(t *testing.T) {
	h := harness(t, `rules:
  - id: p
    partition: {template: Battery}
    events: {hot: $.temperature > 45}
    pattern: hot{2}
    actions: [{raise: {alarm: hot, severity: high}}]
`, rule.WithModel(siteModel(t)))
	for _, d := range []string{"bms1", "bms2"} {
		h.Set(d+".temperature", 50)
		h.Set(d+".temperature", 40)
		acts := h.Set(d+".temperature", 50)
		require.Len(t, acts, 1, d)
		assert.Equal(t, d+".hot", acts[0].Event.Attrs["alarm"])
		assert.Equal(t, d, acts[0].Event.Attrs["key"])
	}
	_, err := rule.New(rule.WithRulesYAML([]byte(`rules:
  - {id: p, partition: {template: Battery}, events: {hot: $.t > 1}, pattern: hot, actions: [{log: x}]}
`), "x"))
	assert.ErrorContains(t, err, "partition by template needs WithModel")
}

func TestChainCannotLeadToPattern(t *testing.T) {
	_, err := rule.Parse([]byte(`rules:
  - {id: a, condition: x.v > 1, actions: [{log: a}], next: [{on: true, rule: p}]}
  - {id: p, events: {e: x.w > 1}, pattern: e, actions: [{log: p}]}
`), "c.yaml")
	errs := configErrs(t, err)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Msg, "a chain cannot lead to a pattern rule")
}

func TestPatternPartialLimitIsCounted(t *testing.T) {
	h := patternHarness(t, "a -> b", "a", "b")
	for range 70 {
		pulse(h, "a")
	}
	st, err := h.R.RuleStats("p")
	require.NoError(t, err)
	assert.Equal(t, uint64(6), st.PartialsDropped, "64 partial matches kept per key")
	assert.Len(t, pulse(h, "b"), 1)
}
