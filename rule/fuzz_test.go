package rule_test

import (
	"errors"
	"testing"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// FuzzParse checks that the loader never panics and that every error it returns
// is a list of ConfigErrors wrapped in ErrInvalidRule; a file that parses also
// compiles or fails with ConfigErrors.
func FuzzParse(f *testing.F) {
	f.Add([]byte("rules:\n  - id: a\n    condition: x.y > 1\n    actions: [{log: hi}]\n"))
	f.Add([]byte("rules:\n  - id: p\n    events: {a: x.v > 1, b: x.w < 2}\n    pattern: a -> !b within 2s\n    actions: [{raise: al}]\n"))
	f.Add([]byte("rules:\n  - {id: a, trigger: {cron: '*/5 * * * *'}, actions: [{set: {point: c.d, value: '1'}}], next: [{on: failure, rule: b}]}\n  - {id: b, trigger: chain, actions: [{webhook: 'http://x'}]}\n"))
	f.Add([]byte("rules: [1, {id: 2}, [x]]"))
	f.Add([]byte("rules:\n  - id: w\n    condition: avg_over(a.b, \"5m\") > prev(a.b) && since(a.b) > 3\n    hold: 1s\n    actions: [{publish: [a.b]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := rule.Parse(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, rule.ErrInvalidRule) || len(model.AsConfigErrors(err)) == 0 {
				t.Fatalf("error is not a ConfigErrors list: %v", err)
			}
			return
		}
		r, err := rule.New(rule.WithRules(specs...))
		if err != nil {
			if !errors.Is(err, rule.ErrInvalidRule) || len(model.AsConfigErrors(err)) == 0 {
				t.Fatalf("compile error is not a ConfigErrors list: %v", err)
			}
			return
		}
		r.Close()
	})
}

// FuzzParsePattern checks that the pattern parser never panics, reports offsets
// inside the text, and that String round-trips.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"a -> b within 2s", "hot{3} within 10m without cooling", "a -> !b within 5s strict", "a -> !b -> c", "a{", "!", "a within 1s within 2s", "x, y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := rule.ParsePattern(s)
		if err != nil {
			var pe *rule.PatternError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("bad error for %q: %v", s, err)
			}
			return
		}
		q, err := rule.ParsePattern(p.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, p.String(), err)
		}
		if q.String() != p.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, p.String(), q.String())
		}
	})
}
