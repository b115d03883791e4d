package ems_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

// A program that produces samples itself publishes them to the EMS, which
// routes them into the device model; commands go the other way through
// Execute, validated before any device sees them.
func Example() {
	m, err := model.ParseModel([]byte(`
templates:
  - name: PCS
    measurements: [{name: active_power, unit: kW}]
    actions: [{name: power_setpoint, unit: kW, min: -500, max: 500}]
instances: [{name: pcs1, template: PCS}]
uplinks: [{from: ch1.T.1, to: pcs1.active_power}]
downlinks: [{from: pcs1.power_setpoint, to: ch1.A.1}]
`), "site.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	sim, _ := collect.NewSimulator(collect.SimConfig{Devices: []collect.SimDevice{{Name: "ch1", Points: []collect.SimPoint{
		{Name: "A.1", Kind: model.Adjustment},
	}}}})
	e, err := ems.New(ems.WithModel(m), ems.WithCollector("ch1", sim))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	ctx := context.Background()
	_ = e.Publish(ctx, []model.Sample{{Point: "ch1.T.1", Value: 123.4}})
	s, _ := e.Snapshot().Get("pcs1.active_power")
	fmt.Println("pcs1.active_power =", s.Value)

	fmt.Println(e.Execute(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 250}))
	v, _ := sim.Value("ch1.A.1")
	fmt.Println("device setpoint =", v)

	err = e.Execute(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 900})
	fmt.Println(errors.Is(err, model.ErrOutOfRange), err)
	// Output:
	// pcs1.active_power = 123.4
	// <nil>
	// device setpoint = 250
	// true command pcs1.power_setpoint=900: value out of range: above max 500
}
