package collect_test

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/collect/collecttest"
	"github.com/voltage-ems/ems/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func loadBESS(t *testing.T) *collect.Simulator {
	t.Helper()
	b, err := os.ReadFile("testdata/bess.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := collect.ParseSimConfig(b, "testdata/bess.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := collect.NewSimulator(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

type lastSink struct {
	mu     sync.Mutex
	last   map[string]model.Sample
	counts int
}

func (s *lastSink) Publish(_ context.Context, b []model.Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]model.Sample{}
	}
	for _, x := range b {
		s.last[x.Point] = x
	}
	s.counts++
	return nil
}

// TestBatteryDynamics discharges 1 MW for one hour of fake time: SOC of a
// 2 MWh battery must fall from 50 % by 50 points to 0 (clamped), and the
// grid import must fall by the PCS power.
func TestBatteryDynamics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := loadBESS(t)
		sink := &lastSink{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- sim.Run(ctx, sink) }()
		if err := sim.Write(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 500}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		soc, _ := sim.Value("bms1.soc")
		// 500 kW for ~30 min = ~250 kWh = 12.5 % of 2 MWh (minus the 2 s lag).
		if soc < 37.4 || soc > 37.6 {
			t.Errorf("SOC after 30 min at 500 kW = %.3f, want ~37.5", soc)
		}
		sink.mu.Lock()
		grid, load, p := sink.last["site.grid"].Value, sink.last["site.load"].Value, sink.last["pcs1.active_power"].Value
		n := sink.counts
		sink.mu.Unlock()
		if math.Abs(p-500) > 0.1 {
			t.Errorf("PCS power = %g, want 500 (follows setpoint)", p)
		}
		if math.Abs(grid-(load-500)) > 0.2 {
			t.Errorf("grid = %g, want load-500 = %g", grid, load-500)
		}
		if n != 1801 {
			t.Errorf("published %d batches in 30 min at 1 s, want 1801", n)
		}
		if err := sim.Write(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 1000}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if soc, _ := sim.Value("bms1.soc"); soc != 0 {
			t.Errorf("SOC after a long discharge = %g, want clamped at 0", soc)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestSimulatorWrites(t *testing.T) {
	sim := loadBESS(t)
	ctx := context.Background()
	tests := []struct {
		point string
		value float64
		want  error
	}{
		{"pcs1.power_setpoint", 1500, model.ErrOutOfRange},
		{"pcs1.power_setpoint", math.Inf(1), model.ErrInvalidValue},
		{"bms1.soc", 10, model.ErrNotWritable},
		{"nope.x", 1, collect.ErrUnknownPoint},
		{"pcs1.power_setpoint", -250, nil},
	}
	for _, tt := range tests {
		err := sim.Write(ctx, model.Command{Point: tt.point, Value: tt.value})
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Write(%s=%g) = %v, want %v", tt.point, tt.value, err, tt.want)
		}
	}
	if v, _ := sim.Value("pcs1.power_setpoint"); v != -250 {
		t.Errorf("setpoint = %g", v)
	}
}

func TestSimConfigErrors(t *testing.T) {
	in := `devices:
  - name: d
    points:
      - {name: a, wave: sine}
      - {name: b, wave: follow, source: d.zz}
      - {name: c, wave: wobble}
      - {name: a}
      - {name: e, wave: sum, sources: [d.a], gains: [1, 2]}
`
	_, err := collect.ParseSimConfig([]byte(in), "sim.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"sim.yaml: d.a: period", "d.b: source \"d.zz\": unknown source point", "d.c: wave \"wobble\": unknown waveform", "d.a: name \"a\": duplicate point", "d.e: sources"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := collect.ParseSimConfig([]byte("devices: []\ncolour: 1\n"), "x.yaml"); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestSimulatorConformance(t *testing.T) {
	b, _ := os.ReadFile("testdata/bess.yaml")
	cfg, err := collect.ParseSimConfig([]byte(strings.Replace(string(b), "interval: 1s", "interval: 5ms", 1)), "bess.yaml")
	if err != nil {
		t.Fatal(err)
	}
	collecttest.Run(t, collecttest.Config{
		New: func(t *testing.T) collect.Collector {
			sim, err := collect.NewSimulator(*cfg)
			if err != nil {
				t.Fatal(err)
			}
			return sim
		},
		WritablePoint: "pcs1.power_setpoint",
		WriteValue:    100,
		ReadOnlyPoint: "bms1.soc",
	})
}

// TestPVDayCurve checks the day curve at fixed times of (local) day: zero
// at night, peak at solar noon, symmetric around it.
func TestPVDayCurve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := collect.SimConfig{Interval: collect.Duration(time.Minute), Devices: []collect.SimDevice{{Name: "pv", Points: []collect.SimPoint{
			{Name: "p", Wave: collect.WavePVDay, Amplitude: 800, Sunrise: 6, Sunset: 18},
		}}}}
		sim, err := collect.NewSimulator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		sink := &lastSink{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- sim.Run(ctx, sink) }()
		now := time.Now()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.Local)
		at := func(hour float64) float64 {
			time.Sleep(time.Until(midnight.Add(time.Duration(hour*float64(time.Hour)) + time.Second)))
			synctest.Wait()
			v, _ := sim.Value("pv.p")
			return v
		}
		if v := at(3); v != 0 {
			t.Errorf("PV at 03:00 = %g, want 0", v)
		}
		if v := at(9); math.Abs(v-800*math.Sin(math.Pi/4)) > 0.1 {
			t.Errorf("PV at 09:00 = %g, want %g", v, 800*math.Sin(math.Pi/4))
		}
		if v := at(12); math.Abs(v-800) > 0.1 {
			t.Errorf("PV at noon = %g, want 800", v)
		}
		if v := at(15); math.Abs(v-800*math.Sin(math.Pi/4)) > 0.1 {
			t.Errorf("PV at 15:00 = %g, want symmetric to 09:00", v)
		}
		if v := at(20); v != 0 {
			t.Errorf("PV at 20:00 = %g, want 0", v)
		}
		cancel()
		<-done
	})
}

func FuzzParseSimConfig(f *testing.F) {
	b, _ := os.ReadFile("testdata/bess.yaml")
	f.Add(string(b))
	f.Add("devices: [{name: d, points: [{name: a, wave: sum, sources: [d.a]}]}]")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := collect.ParseSimConfig([]byte(in), "f.yaml")
		if err != nil {
			return
		}
		sim, err := collect.NewSimulator(*cfg)
		if err != nil {
			t.Fatalf("validated config rejected by NewSimulator: %v", err)
		}
		for _, p := range sim.Points() {
			_ = sim.Write(context.Background(), model.Command{Point: p, Value: 1})
		}
	})
}
