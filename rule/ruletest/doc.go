// Package ruletest helps users test their own rules with go test.
//
// A Harness wraps a rule.Runner: set point values, let (fake) time pass, and assert
// the actions and events the rules produced. Time-based rules (hold, cooldown,
// interval and cron triggers, pattern windows) need fake time: run the test body
// inside testing/synctest.Test, where Advance moves the clock instantly.
//
//	func TestMyRules(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			h := ruletest.Load(t, "rules.yaml", rule.WithModel(m))
//			h.Set("bms1.soc", 96)
//			h.Advance(5 * time.Second)
//			h.ExpectCommand("pcs1.power_setpoint", 0)
//		})
//	}
//
// RunFile runs test cases described in YAML (see File) from one test function.
package ruletest
