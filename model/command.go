package model

import (
	"fmt"
	"time"
)

// Command is a request to write a control (C) or setpoint (A) point.
//
// Point names an instance action ("pcs1.power_setpoint") or a channel point
// ("ch1.A.3"). Source says who asked ("api:alice", "rule:peak_shaving",
// "mqtt"); ID correlates the command with its result Event and is filled in
// by the EMS when empty.
type Command struct {
	ID     string    `json:"id,omitempty"`
	Point  string    `json:"point"`
	Value  float64   `json:"value"`
	Source string    `json:"source,omitempty"`
	Time   time.Time `json:"time,omitempty"`
}

// String formats the command for logs.
func (c Command) String() string {
	return fmt.Sprintf("command %s: %s=%g from %s", c.ID, c.Point, c.Value, c.Source)
}
