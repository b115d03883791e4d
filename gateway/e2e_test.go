package gateway

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

// simExec executes commands on the simulator, as the EMS downlink does for
// a channel point.
type simExec struct{ *collect.Simulator }

func (s simExec) Execute(ctx context.Context, cmd model.Command) error { return s.Write(ctx, cmd) }

// TestSimulatorEndToEnd runs the real simulator into a real snapshot under
// fake time and drives it through the gateway: read values, write a
// setpoint, see the simulated plant follow it.
func TestSimulatorEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lo, hi := -100.0, 100.0
		sim, err := collect.NewSimulator(collect.SimConfig{
			Interval: collect.Duration(time.Second),
			Seed:     1,
			Devices: []collect.SimDevice{{Name: "pcs1", Points: []collect.SimPoint{
				{Name: "power_setpoint", Kind: model.Adjustment, Wave: collect.WaveSetpoint, Min: &lo, Max: &hi},
				{Name: "active_power", Wave: collect.WaveFollow, Source: "pcs1.power_setpoint", Tau: collect.Duration(time.Second)},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		snap := model.NewSnapshot()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- sim.Run(ctx, collect.SinkFunc(func(_ context.Context, b []model.Sample) error { snap.Update(b); return nil }))
		}()
		defer func() {
			cancel()
			<-done
		}()
		gw, err := New(append(authOpts(), WithPoints(snap), WithExecutor(simExec{sim}), WithCache(CacheConfig{TTL: 500 * time.Millisecond}))...)
		if err != nil {
			t.Fatal(err)
		}
		value := func(id string) float64 {
			w := call(t, gw, "GET", "/api/v1/points/"+id, viewerKey, nil)
			var s sampleJSON
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.Value == nil {
				t.Fatalf("%s: %d %s", id, w.Code, w.Body)
			}
			return *s.Value
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if v := value("pcs1.active_power"); v != 0 {
			t.Fatalf("initial power %v", v)
		}
		expect(t, call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":150}`), 422, "out_of_range")
		expect(t, call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.nothing","value":1}`), 404, "not_found")
		expect(t, call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":50}`), 200, "")
		time.Sleep(10 * time.Second) // ten time constants
		synctest.Wait()
		if v := value("pcs1.power_setpoint"); v != 50 {
			t.Fatalf("setpoint %v", v)
		}
		if v := value("pcs1.active_power"); v < 49.9 || v > 50 {
			t.Fatalf("power did not follow the setpoint: %v", v)
		}
	})
}
