package ems_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
)

const restartAlarms = `
alarms:
  - id: soc
    point: bat1.soc
    limits:
      l: {value: 20, deadband: 1}
`

// TestRestartKeepsState runs an EMS on a data directory, raises and
// acknowledges an alarm and writes history, stops it, and starts a second
// EMS on the same directory: the history and the acknowledged alarm are
// still there.
func TestRestartKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		open := func() *ems.EMS {
			e, err := ems.New(ems.WithDataDir(dir),
				ems.WithAlarmOptions(alarm.WithDefinitionsYAML(strings.NewReader(restartAlarms), "alarms.yaml")))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		start := time.Now()
		e := open()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.Run(ctx) }()
		for i := 0; i < 60; i++ {
			if err := e.Publish(ctx, []model.Sample{{Point: "bat1.soc", Value: 30 - float64(i)/5, Time: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if err := e.Alarms().Ack("soc.l", "alice", "seen"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // a tick hands the ack's event out
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		e2 := open()
		defer e2.Close()
		a, err := e2.Alarms().Get("soc.l")
		if err != nil {
			t.Fatal(err)
		}
		if !a.Active || a.State != alarm.State("acked") || a.AckedAt.IsZero() {
			t.Errorf("after restart soc.l = state %q active %v acked %v, want active and acknowledged", a.State, a.Active, a.AckedAt)
		}
		series, err := e2.History().Query(context.Background(), history.Query{Points: []string{"bat1.soc"}, From: start, To: time.Now(), Agg: history.AggRaw})
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 1 || len(series[0].Points) != 60 || series[0].Points[0].Value != 30 || series[0].Points[59].Value != 30-59.0/5 {
			n := 0
			if len(series) == 1 {
				n = len(series[0].Points)
			}
			t.Fatalf("history after restart: %d series, %d points; want the 60 samples written", len(series), n)
		}
	})
}
