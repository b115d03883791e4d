package ruletest_test

import (
	"context"
	"fmt"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
	"github.com/voltage-ems/ems/rule/ruletest"
)

// Describe and Commands work on the actions of any Runner; in a test, a Harness
// (New, Load) or RunFile wraps the Runner and fake time for you.
func ExampleDescribe() {
	r, _ := rule.New(rule.WithRulesYAML([]byte(`
rules:
  - id: hot
    condition: t.v > 40
    actions: [{set: {point: fan.cmd, value: "1"}}]
`), "r.yaml"))
	defer r.Close()
	acts, _ := r.Process(context.Background(), []model.Sample{{Point: "t.v", Value: 45}})
	fmt.Println(ruletest.Describe(acts))
	fmt.Println(len(ruletest.Commands(acts)))
	// Output:
	// [hot:set fan.cmd=1]
	// 1
}
