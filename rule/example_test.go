package rule_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

func Example() {
	rules := []byte(`
rules:
  - id: stop_charging_full
    condition: bms1.soc > 95 && pcs1.active_power < 0
    actions:
      - set: {point: pcs1.power_setpoint, value: "0"}
      - event: {severity: medium, message: "SOC {{ bms1.soc }} %: charging stopped"}
`)
	r, err := rule.New(rule.WithRulesYAML(rules, "rules.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	now := time.Now()
	acts, _ := r.Process(context.Background(), []model.Sample{
		{Point: "bms1.soc", Value: 96, Time: now},
		{Point: "pcs1.active_power", Value: -120, Time: now},
	})
	for _, a := range acts {
		switch {
		case a.Command != nil:
			fmt.Printf("%s: set %s = %g (executed: %v)\n", a.Rule, a.Command.Point, a.Command.Value, a.Executed)
		case a.Event != nil:
			fmt.Printf("%s: %s %s\n", a.Rule, a.Event.Kind, a.Event.Message)
		}
	}
	// Output:
	// stop_charging_full: set pcs1.power_setpoint = 0 (executed: false)
	// stop_charging_full: rule.fired SOC 96 %: charging stopped
}

func ExampleParse_errors() {
	_, err := rule.Parse([]byte(`
rules:
  - id: a
    condition: x.v > 1
    hold: soon
    actions: [{log: hi}]
    next: [{on: true, rule: b}]
  - id: b
    trigger: chain
    actions: [{log: hi}]
    next: [{on: true, rule: a}]
`), "rules.yaml")
	fmt.Println(errors.Is(err, rule.ErrInvalidRule))
	for _, e := range model.AsConfigErrors(err) {
		fmt.Println(e)
	}
	// Output:
	// true
	// rules.yaml:5:11: a: hold "soon": invalid duration (e.g. 500ms, 10s, 5m)
	// rules.yaml:11:11: b: next "a": chain cycle: a -> b -> a
}

func ExampleParsePattern() {
	p, err := rule.ParsePattern("hot{3} within 10m without cooling")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Steps[0].Event, p.Steps[0].Count, p.Within, p.Without)
	_, err = rule.ParsePattern("trip -> within 2s")
	fmt.Println(err)
	// Output:
	// hot 3 10m0s [cooling]
	// pattern: column 9: expected an event name, found keyword "within"
}

func ExampleRunner_DryRun() {
	r, err := rule.New(rule.WithRules(rule.Spec{
		ID:        "peak",
		Condition: "grid.import_power > 500",
		Actions:   []rule.ActionSpec{{Type: rule.ActionSet, Point: "pcs1.power_setpoint", Value: "min(grid.import_power - 500, 250)"}},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	res, _ := r.DryRun("peak", map[string]float64{"grid.import_power": 620})
	fmt.Println(res.Matched, res.Actions[0].Command.Point, res.Actions[0].Command.Value)
	// Output:
	// true pcs1.power_setpoint 120
}
