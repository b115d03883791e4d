package modbus

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

func planFor(t *testing.T, cfg Config) Plan {
	t.Helper()
	if cfg.Channel == "" {
		cfg.Channel = "ch"
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:1"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Plan()
}

func reqSummary(p Plan) string {
	var s []string
	for _, r := range p.Requests {
		s = append(s, fmt.Sprintf("u%d/fc%d@%d+%d:%d", r.Unit, r.Function, r.Address, r.Quantity, len(r.Points)))
	}
	return strings.Join(s, " ")
}

func TestPlanCoalescing(t *testing.T) {
	var tb table
	add := func(id uint32, unit, fc, addr, dt string) {
		kv := []string{"slave_id", unit, "function_code", fc, "register_address", addr}
		if dt != "" {
			kv = append(kv, "data_type", dt)
		}
		tb.add(t, model.Point{ID: id, Kind: model.Telemetry}, kv...)
	}
	add(1, "1", "3", "0", "uint16")
	add(2, "1", "3", "1", "int32")   // 1-2
	add(3, "1", "3", "5", "uint16")  // gap of 2 (3,4): joined with max gap 2, 0..5
	add(4, "1", "3", "9", "float64") // gap of 3 (6,7,8): new request; 9..12
	add(5, "1", "3", "13", "uint16") // adjacent: joined, 9..13
	add(6, "1", "3", "15", "uint16") // would make 7 > max 6: new request
	add(7, "1", "4", "0", "uint16")  // other function code
	add(8, "2", "3", "0", "uint16")  // other unit
	add(9, "1", "1", "0", "bool")    // coils: bit gap
	add(10, "1", "1", "4", "bool")   // gap 3 bits ≤ 4: joined
	add(11, "1", "1", "20", "bool")  // gap 15 > 4: new request
	cfg := Config{Points: tb.points, Mappings: tb.mappings, Limits: Limits{MaxRegisters: 6, MaxGap: 2, MaxBitGap: 4}}
	got := reqSummary(planFor(t, cfg))
	want := "u1/fc1@0+5:2 u1/fc1@20+1:1 u1/fc3@0+6:3 u1/fc3@9+5:2 u1/fc3@15+1:1 u1/fc4@0+1:1 u2/fc3@0+1:1"
	if got != want {
		t.Errorf("plan\n got %s\nwant %s", got, want)
	}
	// Per-unit override: unit 1 without coalescing.
	cfg.Units = []UnitConfig{{ID: 1, Limits: Limits{NoCoalesce: true}, Interval: 250 * time.Millisecond}}
	p := planFor(t, cfg)
	if n := len(p.Requests); n != 11 {
		t.Errorf("no-coalesce plan has %d requests:\n%s", n, p)
	}
	if p.Requests[0].Interval != 250*time.Millisecond {
		t.Errorf("unit interval: %s", p.Requests[0])
	}
	// Default limits: everything of unit 1 fc 3 in one request.
	cfg.Units, cfg.Limits = nil, Limits{}
	if got := reqSummary(planFor(t, cfg)); !strings.Contains(got, "u1/fc3@0+16:6") {
		t.Errorf("default plan: %s", got)
	}
}

// Overlapping points (bits of one register, a 32-bit value read also as
// two 16-bit halves) share registers; the 125-register limit is respected.
func TestPlanOverlapAndLimit(t *testing.T) {
	var tb table
	for i := 0; i < 16; i++ {
		tb.add(t, model.Point{ID: uint32(i + 1), Kind: model.Signal}, "slave_id", "1", "function_code", "3", "register_address", "10", "bit_position", fmt.Sprint(i))
	}
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "10")
	for i := 0; i < 300; i++ {
		tb.add(t, model.Point{ID: uint32(100 + i), Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", fmt.Sprint(11+i))
	}
	p := planFor(t, Config{Points: tb.points, Mappings: tb.mappings})
	total := 0
	for _, r := range p.Requests {
		if r.Quantity > 125 {
			t.Errorf("request over 125 registers: %s", r)
		}
		total += len(r.Points)
	}
	if len(p.Requests) != 3 || total != 317 {
		t.Errorf("plan:\n%s", p)
	}
	if r := p.Requests[0]; r.Address != 10 || len(r.Points) != 16+1+124 {
		t.Errorf("first request %s", r)
	}
}

func TestSchedulerSkipsMissedTicks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := &group{interval: time.Second}
	b := &group{interval: 3 * time.Second}
	s := scheduler{groups: []*group{a, b}}
	s.start(t0)
	if d := s.due(t0, nil); len(d) != 2 {
		t.Fatalf("at start %d due", len(d))
	}
	if w := s.wake(); !w.Equal(t0.Add(time.Second)) {
		t.Errorf("wake %v", w)
	}
	if d := s.due(t0.Add(500*time.Millisecond), nil); len(d) != 0 {
		t.Errorf("early: %d due", len(d))
	}
	// A cycle ran 4.5 s late: each group fires once, missed ticks are
	// skipped and counted (b's 3 s tick ran late, none skipped), the next
	// tick stays on the grid.
	now := t0.Add(5500 * time.Millisecond)
	if d := s.due(now, nil); len(d) != 2 {
		t.Fatalf("late: %d due", len(d))
	}
	if !a.next.Equal(t0.Add(6*time.Second)) || a.skipped != 4 {
		t.Errorf("a next %v skipped %d", a.next.Sub(t0), a.skipped)
	}
	if !b.next.Equal(t0.Add(6*time.Second)) || b.skipped != 0 {
		t.Errorf("b next %v skipped %d", b.next.Sub(t0), b.skipped)
	}
}

func TestBackoff(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		b := backoff{min: time.Second, max: time.Minute, rand: func() float64 { return r }}
		base := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
		for i, want := range base {
			want *= time.Second
			got := b.next()
			lo, hi := time.Duration(float64(want)*0.8), min(time.Duration(float64(want)*1.2), time.Minute)
			if got < lo || got > hi {
				t.Errorf("r=%v attempt %d: %v outside [%v, %v]", r, i, got, lo, hi)
			}
		}
		b.reset()
		if got := b.next(); got > 1200*time.Millisecond {
			t.Errorf("after reset %v", got)
		}
	}
}
