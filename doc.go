// Package ems is an embeddable energy-management system: collect data from
// devices, model a site, raise alarms, run rules, keep compressed history,
// relay data to external systems and serve an HTTP API, in one process.
//
// Build an EMS with New and functional options, then Run it:
//
//	sim, _ := collect.NewSimulator(cfg)
//	e, err := ems.New(
//		ems.WithCollector("site", sim),
//		ems.WithModel(siteModel),
//		ems.WithDataDir("/var/lib/ems"),
//	)
//	if err != nil { ... }
//	err = e.Run(ctx) // blocks until ctx is done, then drains and closes
//
// # Data path
//
// Collectors publish batches to the EMS (it is their collect.Sink). Each
// batch is routed from channel points to instance points, computed points
// are recomputed, the latest-value snapshot is updated, and the batch is
// fanned out to every consumer (alarm, rule, history, each relay) through
// its own bounded queue and goroutine. Per-point order is preserved. A full
// queue either blocks the publisher (history, alarm and rule by default:
// nothing is lost) or drops its oldest batch and counts it (relays). Events
// from alarms, rules and commands go to event subscribers at once (a slow
// subscriber loses its oldest events, never stalls the EMS) and through
// the relays' queues.
//
// # Downlink
//
// Execute routes a Command from an instance action to its channel C/A
// point, validates it against the action's and the point table's limits,
// hands it to the Writer of the collector that owns the point and emits a
// command.executed or command.failed Event either way. A command that
// cannot be routed or validated fails with a *model.CommandError and is
// never sent to a device.
//
// # Ownership
//
// A batch passed to Publish is copied; the caller may reuse it when Publish
// returns. Batches handed to consumers are shared and read-only: a consumer
// must not modify them or keep them after its Process/Write/Send returns.
//
// # Interfaces
//
// The five extension points are small interfaces owned by their packages
// and re-exported here: Collector (collect), Alarmer (alarm), RuleEngine
// (rule), HistoryStore (history) and Relay (relay).
package ems
