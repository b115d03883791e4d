package ems

import (
	"context"
	"fmt"
	"net"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/rule"
)

type healthFunc func(ctx context.Context) error

func (f healthFunc) Health(ctx context.Context) error { return f(ctx) }

// The default components implement what the gateway exposes.
var (
	_ gateway.Alarms  = (*alarm.Engine)(nil)
	_ gateway.Rules   = (*rule.Runner)(nil)
	_ gateway.History = (*history.DB)(nil)
)

// buildGateway creates the HTTP gateway over the EMS's snapshot, command
// path, streams and components, and opens its listener so that
// GatewayAddr is known before Run.
func (e *EMS) buildGateway() error {
	opts := []gateway.Option{
		gateway.WithPoints(e.snapshot),
		gateway.WithExecutor(e),
		gateway.WithSamples(e),
		gateway.WithEvents(e),
		gateway.WithLogger(e.log.With("component", "gateway")),
		gateway.WithComponent("pipeline", healthFunc(func(context.Context) error {
			if e.runState.Load() != stateRunning {
				return fmt.Errorf("ems is not running")
			}
			return nil
		})),
	}
	if e.cfg.registerer != nil {
		opts = append(opts, gateway.WithMetrics(e.cfg.registerer))
	}
	// The components in use: the defaults, or a vendor's when it implements
	// what the gateway reads (routes of a missing capability answer 501).
	if a, ok := e.cfg.alarmer.(gateway.Alarms); ok {
		opts = append(opts, gateway.WithAlarms(a))
	}
	if r, ok := e.cfg.rules.(gateway.Rules); ok {
		opts = append(opts, gateway.WithRules(r))
	}
	if h := e.cfg.history; h != nil {
		opts = append(opts, gateway.WithHistory(h))
	}
	opts = append(opts, e.cfg.gatewayOpts...)
	gw, err := gateway.New(opts...)
	if err != nil {
		return fmt.Errorf("ems: gateway: %w", err)
	}
	ln, err := net.Listen("tcp", e.cfg.gatewayAddr)
	if err != nil {
		return fmt.Errorf("ems: gateway: %w", err)
	}
	e.gw, e.gwLn = gw, ln
	return nil
}
