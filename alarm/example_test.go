package alarm_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/model"
)

func Example() {
	defs, err := alarm.LoadDefinitions(strings.NewReader(`
alarms:
  - id: pcs1_temp
    point: pcs1.temperature
    priority: high
    message: "PCS1 temperature {{.Value}} °C above {{.Limit}} °C"
    limits:
      h: {value: 80, deadband: 2}
`), "alarms.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := alarm.New(alarm.WithDefinitions(defs...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()

	evs, _ := e.Process(ctx, []model.Sample{{Point: "pcs1.temperature", Value: 85}})
	for _, ev := range evs {
		fmt.Println(ev.Kind, ev.Severity, ev.Attrs["alarm_id"], ev.Message)
	}
	_ = e.Ack("pcs1_temp.h", "alice", "fan checked")
	evs, _ = e.Process(ctx, []model.Sample{{Point: "pcs1.temperature", Value: 79}}) // inside the deadband
	for _, ev := range evs {
		fmt.Println(ev.Kind, ev.Attrs["user"], ev.Attrs["state"])
	}
	evs, _ = e.Process(ctx, []model.Sample{{Point: "pcs1.temperature", Value: 77}})
	for _, ev := range evs {
		fmt.Println(ev.Kind, ev.Attrs["state"])
	}
	fmt.Println(len(e.Active(alarm.Filter{})), "active")
	// Output:
	// alarm.raised high pcs1_temp.h PCS1 temperature 85 °C above 80 °C
	// alarm.acked alice acked
	// alarm.cleared normal
	// 0 active
}

func ExampleLoadDefinitions_errors() {
	_, err := alarm.LoadDefinitions(strings.NewReader(`
alarms:
  - id: bad
    point: p
    limits:
      hh: {value: 70}
      h: {value: 80, deadband: -1}
`), "site.yaml")
	fmt.Println(err)
	// Output:
	// site.yaml:6:19: bad: limits.hh.value "70": HH (70) is below H (80)
	// site.yaml:7:32: bad: limits.h.deadband "-1": negative deadband
}
