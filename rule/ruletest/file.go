package ruletest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// File is a YAML file of rule test cases:
//
//	rules: rules.yaml          # relative to this file
//	model: model.yaml          # optional: the device model (WithModel)
//	points: [ch1.T.1]          # optional: more known points (WithPoints)
//	cases:
//	  - name: stops charging above 95 %
//	    steps:
//	      - set: {bms1.soc: 96, pcs1.active_power: -100}
//	        expect: []                  # no action yet (hold time)
//	      - after: 5s                   # let fake time pass, ticking
//	        expect:
//	          - {rule: stop_charging_full, type: set, point: pcs1.power_setpoint, value: 0}
//	          - {type: raise, alarm: soc_full}
//
// A step sets values (one batch), then lets time pass; when expect is present,
// the actions of the step must match it exactly, in order. Each case runs in its
// own testing/synctest bubble with a fresh engine.
type File struct {
	Rules  string   `yaml:"rules"`
	Model  string   `yaml:"model"`
	Points []string `yaml:"points"`
	Cases  []Case   `yaml:"cases"`
}

// Case is one test case of a File.
type Case struct {
	Name  string `yaml:"name"`
	Steps []Step `yaml:"steps"`
}

// Step is one step of a Case.
type Step struct {
	Set    map[string]float64 `yaml:"set"`
	After  time.Duration      `yaml:"after"`
	Expect *[]Expect          `yaml:"expect"`
}

// Expect describes one expected action; empty fields are not compared.
type Expect struct {
	Rule     string   `yaml:"rule"`
	Type     string   `yaml:"type"`
	Point    string   `yaml:"point"`
	Value    *float64 `yaml:"value"`
	Kind     string   `yaml:"kind"`
	Alarm    string   `yaml:"alarm"`
	Severity string   `yaml:"severity"`
	Message  string   `yaml:"message"` // a substring of the message
	Key      string   `yaml:"key"`
	Failed   *bool    `yaml:"failed"`
}

// RunFile runs every case of a YAML case file as a subtest; opts are added to the
// options the file implies (rules, model, points).
func RunFile(t *testing.T, path string, opts ...rule.Option) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ruletest: %v", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("ruletest: %s: %v", path, err)
	}
	dir := filepath.Dir(path)
	base := []rule.Option{rule.WithRulesFile(filepath.Join(dir, f.Rules))}
	if f.Model != "" {
		mb, err := os.ReadFile(filepath.Join(dir, f.Model))
		if err != nil {
			t.Fatalf("ruletest: %v", err)
		}
		var m model.Model
		md := yaml.NewDecoder(bytes.NewReader(mb))
		md.KnownFields(true)
		if err := md.Decode(&m); err != nil {
			t.Fatalf("ruletest: %s: %v", f.Model, err)
		}
		base = append(base, rule.WithModel(&m))
	}
	if len(f.Points) > 0 {
		base = append(base, rule.WithPoints(f.Points))
	}
	base = append(base, opts...)
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := New(t, base...)
				for i, s := range c.Steps {
					var acts []rule.Action
					if len(s.Set) > 0 {
						acts = append(acts, h.SetAll(s.Set)...)
					}
					if s.After > 0 {
						acts = append(acts, h.Advance(s.After)...)
					}
					h.Last = acts
					if s.Expect == nil {
						continue
					}
					if msg := match(*s.Expect, acts); msg != "" {
						t.Fatalf("step %d: %s\ngot %s", i+1, msg, Describe(acts))
					}
				}
			})
		})
	}
}

func match(want []Expect, got []rule.Action) string {
	if len(want) != len(got) {
		return fmt.Sprintf("want %d actions, got %d", len(want), len(got))
	}
	for i, w := range want {
		g := got[i]
		var bad []string
		chk := func(field, want, got string) {
			if want != "" && want != got {
				bad = append(bad, fmt.Sprintf("%s %q != %q", field, got, want))
			}
		}
		chk("rule", w.Rule, g.Rule)
		chk("type", w.Type, string(g.Type))
		chk("key", w.Key, g.Key)
		if g.Command != nil {
			chk("point", w.Point, g.Command.Point)
			if w.Value != nil && !approx(*w.Value, g.Command.Value) {
				bad = append(bad, fmt.Sprintf("value %g != %g", g.Command.Value, *w.Value))
			}
		} else if w.Point != "" || w.Value != nil {
			bad = append(bad, "not a command")
		}
		if g.Event != nil {
			chk("kind", w.Kind, string(g.Event.Kind))
			chk("alarm", w.Alarm, g.Event.Attrs["alarm"])
			chk("severity", w.Severity, g.Event.Severity.String())
			if w.Message != "" && !strings.Contains(g.Event.Message, w.Message) {
				bad = append(bad, fmt.Sprintf("message %q does not contain %q", g.Event.Message, w.Message))
			}
		} else if w.Kind != "" || w.Alarm != "" || w.Severity != "" {
			bad = append(bad, "not an event")
		}
		if w.Failed != nil && *w.Failed != (g.Err != nil) {
			bad = append(bad, fmt.Sprintf("failed %v, want %v", g.Err != nil, *w.Failed))
		}
		if len(bad) > 0 {
			return fmt.Sprintf("action %d: %s", i+1, strings.Join(bad, ", "))
		}
	}
	return ""
}
