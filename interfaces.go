package ems

import (
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/rule"
)

// The extension points, under the names vendors look for. Each is defined
// and documented by the package that consumes it.
type (
	// Collector polls devices and publishes samples; see collect.Collector.
	Collector = collect.Collector
	// Writer writes controls and setpoints; see collect.Writer.
	Writer = collect.Writer
	// Alarmer turns samples into alarm events; see alarm.Alarmer.
	Alarmer = alarm.Alarmer
	// RuleEngine turns samples into actions; see rule.Engine.
	RuleEngine = rule.Engine
	// HistoryStore stores and queries samples; see history.Store.
	HistoryStore = history.Store
	// Relay forwards samples and events to an external system; see relay.Relay.
	Relay = relay.Relay
)

// HistoryQuery and HistorySeries are the query types of history.Store.
type (
	HistoryQuery  = history.Query
	HistorySeries = history.Series
)
