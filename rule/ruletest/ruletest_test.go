package ruletest

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const rules = `rules:
  - id: hot
    condition: t.v > 40
    hold: 2s
    actions:
      - set: {point: fan.cmd, value: "1"}
      - raise: {alarm: hot, severity: high, message: "t={{ t.v }}"}
`

func TestHarness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(t, rule.WithRulesYAML([]byte(rules), "r.yaml"))
		h.Set("t.v", 45)
		h.ExpectNone()
		h.Advance(time.Second)
		h.ExpectNone()
		h.Advance(time.Second)
		c := h.ExpectCommand("fan.cmd", 1)
		if c.Source != "rule:hot" {
			t.Errorf("source %q", c.Source)
		}
		e := h.ExpectEvent(model.EventAlarmRaised, "hot")
		if e.Message != "t=45" {
			t.Errorf("message %q", e.Message)
		}
		if len(h.All) != 2 || len(Commands(h.All)) != 1 || len(Events(h.All)) != 1 {
			t.Errorf("All: %s", Describe(h.All))
		}
	})
}

func TestMatch(t *testing.T) {
	one := 1.0
	yes := true
	acts := []rule.Action{
		{Rule: "r", Type: rule.ActionSet, Command: &model.Command{Point: "a.b", Value: 1}},
		{Rule: "r", Type: rule.ActionRaise, Event: &model.Event{Kind: model.EventAlarmRaised, Severity: model.SeverityHigh, Message: "hot 45", Attrs: map[string]string{"alarm": "x"}}},
	}
	for _, tc := range []struct {
		want []Expect
		ok   bool
	}{
		{[]Expect{{Rule: "r", Type: "set", Point: "a.b", Value: &one}, {Type: "raise", Kind: "alarm.raised", Alarm: "x", Severity: "high", Message: "45"}}, true},
		{[]Expect{{}, {}}, true},
		{[]Expect{{}}, false},
		{[]Expect{{Point: "a.c"}, {}}, false},
		{[]Expect{{Rule: "q"}, {}}, false},
		{[]Expect{{}, {Message: "cold"}}, false},
		{[]Expect{{}, {Point: "a.b"}}, false},
		{[]Expect{{Kind: "alarm.raised"}, {}}, false},
		{[]Expect{{Failed: &yes}, {}}, false},
	} {
		if msg := match(tc.want, acts); (msg == "") != tc.ok {
			t.Errorf("match(%+v) = %q, want ok=%v", tc.want, msg, tc.ok)
		}
	}
}

func TestRunFile(t *testing.T) {
	RunFile(t, "testdata/cases.yaml")
}
