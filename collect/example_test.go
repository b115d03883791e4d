package collect_test

import (
	"context"
	"fmt"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

func ExampleSimulator() {
	cfg, err := collect.ParseSimConfig([]byte(`
devices:
  - name: pcs1
    points:
      - {name: power_setpoint, kind: A, min: -100, max: 100}
      - {name: active_power, wave: follow, source: pcs1.power_setpoint}
`), "sim.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	sim, _ := collect.NewSimulator(*cfg)
	fmt.Println(sim.Write(context.Background(), model.Command{Point: "pcs1.power_setpoint", Value: 42}))
	fmt.Println(sim.Write(context.Background(), model.Command{Point: "pcs1.power_setpoint", Value: 420}))
	// Output:
	// <nil>
	// command pcs1.power_setpoint=420: value out of range: above max 100
}
