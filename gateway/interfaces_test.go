package gateway

import (
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// The default engines implement every interface the gateway consumes; a
// signature change in one of them breaks this file first.
var (
	_ Points           = (*model.Snapshot)(nil)
	_ Alarms           = (*alarm.Engine)(nil)
	_ AlarmOperator    = (*alarm.Engine)(nil)
	_ AlarmDefinitions = (*alarm.Engine)(nil)
	_ Rules            = (*rule.Runner)(nil)
	_ RuleEditor       = (*rule.Runner)(nil)
	_ RuleToggler      = (*rule.Runner)(nil)
	_ RuleStatser      = (*rule.Runner)(nil)
	_ RuleDryRunner    = (*rule.Runner)(nil)
	_ History          = (history.Store)(nil)
	_ History          = (*history.DB)(nil)
)
