package ems_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/collect/modbus"
	"github.com/voltage-ems/ems/examples/modbus/emulator"
	"github.com/voltage-ems/ems/model"
)

// TestModbusThroughEMS runs the real Modbus path end to end: the PCS of the
// example emulator (a Modbus TCP server) is polled by the Modbus collector
// inside an EMS, its active power is routed to pcs1.active_power, and a
// setpoint written through Execute (validated, routed to pcs.A.1, encoded
// as int32 ×0.1) makes the emulated PCS ramp to it, as seen again through
// polling. It runs on the wall clock (real sockets), bounded by a deadline.
func TestModbusThroughEMS(t *testing.T) {
	emu, err := emulator.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg, err := modbus.LoadDir("examples/modbus/pcs")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Address = emu.Addr()
	pcs, err := modbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseModel([]byte(`
templates:
  - name: PCS
    measurements: [{name: active_power, unit: kW}, {name: running, kind: S}]
    actions: [{name: power_setpoint, unit: kW, min: -400, max: 400}]
instances: [{name: pcs1, template: PCS}]
uplinks: [{from: pcs.T.3, to: pcs1.active_power}, {from: pcs.S.1, to: pcs1.running}]
downlinks: [{from: pcs1.power_setpoint, to: pcs.A.1}]
`), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := ems.New(ems.WithCollector(cfg.Channel, pcs), ems.WithPointTables(cfg.PointTable()), ems.WithModel(m))
	if err != nil {
		t.Fatal(err)
	}
	power, stop := e.SubscribeSamples("pcs1.active_power", 256)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.After(20 * time.Second)
	waitFor := func(what string, ok func(model.Sample) bool) {
		t.Helper()
		for {
			select {
			case s := <-power:
				if s.Quality.IsGood() && ok(s) {
					return
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("a first good sample", func(model.Sample) bool { return true })

	// Out of the action's range: rejected before the device sees it.
	if err := e.Execute(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 450}); !errors.Is(err, model.ErrOutOfRange) {
		t.Fatalf("Execute(450) = %v, want ErrOutOfRange", err)
	}
	if err := e.Execute(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 120.5}); err != nil {
		t.Fatalf("Execute(120.5) = %v", err)
	}
	waitFor("the PCS to reach 120.5 kW", func(s model.Sample) bool { return math.Abs(s.Value-120.5) < 0.01 })
	if p, _ := emu.Power(); math.Abs(p-120.5) > 0.01 {
		t.Errorf("emulator PCS power = %g", p)
	}
}
