package ems

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/internal/pipeline"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// Option configures an EMS. Options are applied in order by New, which
// validates the result and returns an error for a bad combination.
type Option func(*config) error

// Policy is what a consumer's queue does when it is full.
type Policy = pipeline.Policy

// ConsumerStats are the counters of one data-path consumer: samples and
// events processed and dropped, queue depth and capacity, and lag.
type ConsumerStats = pipeline.Stats

// Queue policies.
const (
	// Block makes the publisher wait: nothing is lost, collection slows down.
	Block = pipeline.Block
	// DropOldest discards the oldest queued batch and counts it.
	DropOldest = pipeline.DropOldest
)

// Consumer names for WithQueue. Relays are named "relay:<name>".
const (
	ConsumerAlarm   = "alarm"
	ConsumerRule    = "rule"
	ConsumerHistory = "history"
)

type namedCollector struct {
	name string
	c    Collector
}

type namedRelay struct {
	name string
	r    Relay
}

type queueConf struct {
	size   int
	policy Policy
}

type config struct {
	collectors  []namedCollector
	model       *model.Model
	tables      []*model.PointTable
	alarmer     Alarmer
	alarmSet    bool
	rules       RuleEngine
	rulesSet    bool
	history     HistoryStore
	historySet  bool
	relays      []namedRelay
	gatewayAddr string
	gatewayOpts []gateway.Option
	gatewayOn   bool
	logger      *slog.Logger
	registerer  prometheus.Registerer
	dataDir     string
	queues      map[string]queueConf
	tick        time.Duration
	keepChannel bool
	restartMin  time.Duration
	restartMax  time.Duration
	alarmOpts   []alarm.Option
	ruleOpts    []rule.Option
	historyOpts []history.Option
}

// WithAlarmOptions configures the default alarm engine (definitions,
// flood and chatter settings, ...). The EMS adds the model, data
// directory, logger and metrics itself. It is an error together with
// WithAlarmer.
func WithAlarmOptions(opts ...alarm.Option) Option {
	return func(cfg *config) error { cfg.alarmOpts = append(cfg.alarmOpts, opts...); return nil }
}

// WithRuleOptions configures the default rule engine (rules, workers,
// budgets, ...). The EMS adds the model, itself as the command executor,
// the logger and metrics. It is an error together with WithRuleEngine.
func WithRuleOptions(opts ...rule.Option) Option {
	return func(cfg *config) error { cfg.ruleOpts = append(cfg.ruleOpts, opts...); return nil }
}

// WithHistoryOptions configures the default history store (fsync policy,
// tiers, retention, ...). The EMS adds the data directory, logger and
// metrics. It is an error together with WithHistory.
func WithHistoryOptions(opts ...history.Option) Option {
	return func(cfg *config) error { cfg.historyOpts = append(cfg.historyOpts, opts...); return nil }
}

// WithCollector adds a collector under a unique name. Its Writer, if it
// has one, receives commands for the points it owns: the points listed by
// its Points method (collect.Pointer) and channel points "name.K.N".
func WithCollector(name string, c Collector) Option {
	return func(cfg *config) error {
		if name == "" || strings.ContainsAny(name, ". ") {
			return fmt.Errorf("ems: WithCollector: invalid name %q (non-empty, no dots or spaces)", name)
		}
		if c == nil {
			return fmt.Errorf("ems: WithCollector %q: nil collector", name)
		}
		for _, nc := range cfg.collectors {
			if nc.name == name {
				return fmt.Errorf("ems: WithCollector: duplicate name %q", name)
			}
		}
		cfg.collectors = append(cfg.collectors, namedCollector{name, c})
		return nil
	}
}

// WithModel sets the device model: routes from channel points to instance
// points, computed points and downlink routes for commands. New compiles
// it (against the point tables, when given).
func WithModel(m *model.Model) Option {
	return func(cfg *config) error {
		if m == nil {
			return errors.New("ems: WithModel: nil model")
		}
		cfg.model = m
		return nil
	}
}

// WithPointTables adds channel point tables. Commands to their C and A
// points are validated against them, and model routes are checked against
// them.
func WithPointTables(tables ...*model.PointTable) Option {
	return func(cfg *config) error {
		for _, t := range tables {
			if t == nil {
				return errors.New("ems: WithPointTables: nil table")
			}
			if err := t.Validate(); err != nil {
				return fmt.Errorf("ems: point table %s: %w", t.Channel, err)
			}
		}
		cfg.tables = append(cfg.tables, tables...)
		return nil
	}
}

// WithAlarmer replaces the default alarm engine; nil disables alarms.
func WithAlarmer(a Alarmer) Option {
	return func(cfg *config) error { cfg.alarmer, cfg.alarmSet = a, true; return nil }
}

// WithRuleEngine replaces the default rule engine; nil disables rules.
func WithRuleEngine(r RuleEngine) Option {
	return func(cfg *config) error { cfg.rules, cfg.rulesSet = r, true; return nil }
}

// WithHistory replaces the default embedded history store; nil disables
// history.
func WithHistory(h HistoryStore) Option {
	return func(cfg *config) error { cfg.history, cfg.historySet = h, true; return nil }
}

// WithRelay adds a relay under a unique name; several relays are allowed.
// If the relay has a Run(ctx) method (relay.Pipeline does) the EMS runs it.
func WithRelay(name string, r Relay) Option {
	return func(cfg *config) error {
		if name == "" || r == nil {
			return fmt.Errorf("ems: WithRelay: need a name and a relay (got %q, %v)", name, r)
		}
		for _, nr := range cfg.relays {
			if nr.name == name {
				return fmt.Errorf("ems: WithRelay: duplicate name %q", name)
			}
		}
		cfg.relays = append(cfg.relays, namedRelay{name, r})
		return nil
	}
}

// WithGateway serves the HTTP API on addr ("127.0.0.1:8080", ":0" for a
// free port) while Run runs. The EMS adds its snapshot, command path,
// streams, health and its alarm, rule and history backends to opts.
func WithGateway(addr string, opts ...gateway.Option) Option {
	return func(cfg *config) error {
		if addr == "" {
			return errors.New("ems: WithGateway: empty address")
		}
		cfg.gatewayAddr, cfg.gatewayOpts, cfg.gatewayOn = addr, opts, true
		return nil
	}
}

// WithLogger sets the logger; nil (the default) discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) error { cfg.logger = l; return nil }
}

// WithMetrics registers the EMS's metrics (and those of the default
// components) on reg. Without it no metrics are registered anywhere; the
// global registry is never used.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(cfg *config) error { cfg.registerer = reg; return nil }
}

// WithDataDir keeps durable state (history, alarm journal) under dir.
// Without it the default components keep everything in memory.
func WithDataDir(dir string) Option {
	return func(cfg *config) error {
		if dir == "" {
			return errors.New("ems: WithDataDir: empty directory")
		}
		cfg.dataDir = dir
		return nil
	}
}

// WithQueue sets the queue capacity (in batches) and full-queue policy of
// a consumer: ConsumerAlarm, ConsumerRule, ConsumerHistory or
// "relay:<name>".
func WithQueue(consumer string, size int, policy Policy) Option {
	return func(cfg *config) error {
		if size < 1 || size > 1<<20 {
			return fmt.Errorf("ems: WithQueue %q: size %d out of range 1..1048576", consumer, size)
		}
		if policy != Block && policy != DropOldest {
			return fmt.Errorf("ems: WithQueue %q: unknown policy %d", consumer, policy)
		}
		cfg.queues[consumer] = queueConf{size, policy}
		return nil
	}
}

// WithTickInterval sets how often time-driven work of the alarm and rule
// engines runs (delays, escalation, schedules). Default 100 ms.
func WithTickInterval(d time.Duration) Option {
	return func(cfg *config) error {
		if d < time.Millisecond || d > time.Minute {
			return fmt.Errorf("ems: WithTickInterval: %v out of range 1ms..1m", d)
		}
		cfg.tick = d
		return nil
	}
}

// WithChannelPoints keeps routed channel samples ("ch1.T.7") in the data
// path besides their instance samples. By default only unrouted channel
// samples pass through.
func WithChannelPoints(keep bool) Option {
	return func(cfg *config) error { cfg.keepChannel = keep; return nil }
}

// WithCollectorRestart sets the backoff between restarts of a collector
// whose Run returned an error (default 1 s doubling to 60 s, with jitter).
func WithCollectorRestart(min, max time.Duration) Option {
	return func(cfg *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("ems: WithCollectorRestart: need 0 < min <= max, got %v, %v", min, max)
		}
		cfg.restartMin, cfg.restartMax = min, max
		return nil
	}
}
