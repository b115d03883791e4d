// Package rule is the rule engine of the EMS: rules loaded from YAML, compiled
// once with expr-lang (github.com/expr-lang/expr) and evaluated on every batch of
// samples, with schedules, hold times, cooldowns, chains of rules, complex event
// patterns and window aggregates.
//
// # Rules
//
// A rule file is YAML (see Parse):
//
//	rules:
//	  - id: stop_charging_full
//	    priority: 100                    # higher runs first
//	    condition: bms1.soc > 95 && pcs1.active_power < 0
//	    hold: 5s                         # the condition must stay true for 5 s
//	    cooldown: 1m                     # at most one firing a minute
//	    actions:
//	      - set: {point: pcs1.power_setpoint, value: "0"}
//	      - raise: {alarm: soc_full, severity: medium, message: "SOC {{ bms1.soc }} %"}
//	    else:                            # when the condition clears
//	      - clear: soc_full
//	    next:                            # a chain: true, false, success or failure edges
//	      - {on: failure, rule: report_failure}
//
// Conditions are expr-lang expressions over point values. Dotted point ids
// (pcs1.active_power, ch1.T.7) are used as they are; every point must exist
// (WithModel, WithPoints) and types are checked when the rule is compiled, so a
// string compared with a number, an unknown point, a chain cycle, an invalid cron
// spec or a set action on a T point is rejected at load, with every error of the
// file listed together (model.ConfigErrors with file, line, column and rule id).
//
// Helpers: prev(p) is the value before the last change, since(p) the seconds since
// it changed, age(p) the seconds since the last sample; avg_over, min_over,
// max_over, sum_over and count_over (p, "10m") aggregate a sliding time window,
// the *_last(p, n) forms the last n samples (a count window), and the
// *_tumbling(p, "1m") forms the last complete aligned window. Messages and
// webhook bodies embed expressions as {{ expr }}; a set value is an expression.
//
// # Triggers
//
// A rule is evaluated when a point its condition reads gets a sample (the
// default; it fires on the rising edge of the condition, after the hold time),
// on an interval ({interval: 10s}) or a cron schedule ({cron: "0 */15 * * * *"},
// robfig/cron syntax with optional seconds) where it fires each time the
// condition holds (the first Tick schedules the first evaluation), or only along
// chain edges (trigger: chain).
//
// # Complex event patterns
//
// A pattern rule names events (conditions; an event occurs on the rising edge
// of its condition) and a pattern over them (see Pattern):
//
//	events:
//	  trip: breaker1.trip == 1
//	  underfrequency: grid.frequency < 49.8
//	pattern: trip -> underfrequency within 2s
//
// Sequences (->), counts (hot{3}), negation (a -> !b within 5s: no b within 5 s
// after a; a -> !b -> c: no b between a and c), strict or relaxed contiguity and
// "without x" are supported; "partition: {template: Battery}" runs the pattern
// once per device, with "$." standing for the device in conditions and actions.
//
// # Running
//
// New returns a *Runner, the default Engine. The EMS calls Process with each
// batch and Tick about every 100 ms from the same goroutine; management methods
// (Add, Update, Remove, Enable, Disable, Replace, Rules, Stats, DryRun) may be
// called concurrently: a change compiles a new rule set and swaps it atomically,
// and a change that does not compile is rejected whole. Change-triggered rules
// are found through an index from point to rules, evaluated in a bounded pool of
// workers, and their outcomes applied in priority order, so the result does not
// depend on the number of workers. Common conditions (arithmetic, comparisons,
// logic over point values) run as compiled Go closures over a flat value array;
// anything else runs on a reused expr VM. A rule that fails at run time or
// exceeds its budget is counted and reported as a rule.error event; the others
// go on.
//
// Package ruletest helps users test their own rules.
package rule
