package model

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const siteYAML = `
templates:
  - name: Device
    properties: [{name: rated_kw, unit: kW, default: 100}]
    measurements: [{name: comm_ok, kind: S}]
  - name: PCS
    parent: Device
    measurements:
      - {name: active_power, unit: kW}
      - {name: voltage, unit: V}
      - {name: current, unit: A}
      - {name: apparent_kva, unit: kVA, expr: "self.voltage * self.current / 1000"}
      - {name: load_pct, unit: "%", expr: "self.active_power / props.rated_kw * 100"}
    actions:
      - {name: power_setpoint, unit: kW, min: -500, max: 500, step: 0.1}
      - {name: start, kind: C}
instances:
  - {name: pcs1, template: PCS, properties: {rated_kw: 500}}
  - {name: pcs2, template: PCS}
uplinks:
  - {from: ch1.T.1, to: pcs1.active_power}
  - {from: ch1.T.2, to: pcs1.voltage}
  - {from: ch1.T.3, to: pcs1.current}
  - {from: ch2.T.1, to: pcs2.active_power}
downlinks:
  - {from: pcs1.power_setpoint, to: ch1.A.1}
  - {from: pcs1.start, to: ch1.C.1}
computed:
  - {point: site.pcs_power, expr: "pcs1.active_power + pcs2.active_power", unit: kW}
  - {point: site.pcs_power_mw, expr: "site.pcs_power / 1000", unit: MW}
`

func mustModel(t *testing.T, src string) *Model {
	t.Helper()
	m, err := ParseModel([]byte(src), "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModelRoutingAndComputed(t *testing.T) {
	m := mustModel(t, siteYAML)
	if err := m.Compile(); err != nil {
		t.Fatal(err)
	}
	if got := m.InstancesOf("Device"); len(got) != 2 {
		t.Fatalf("InstancesOf(Device) = %v", got)
	}
	if !m.HasPoint("pcs2.load_pct") || !m.HasPoint("site.pcs_power_mw") || m.HasPoint("pcs3.x") {
		t.Fatal("HasPoint wrong")
	}
	r, err := m.Router(false)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	out := r.Route([]Sample{
		{Point: "ch1.T.1", Value: 250, Time: t0},
		{Point: "ch1.T.2", Value: 400, Time: t0},
		{Point: "ch1.T.3", Value: 100, Time: t0.Add(time.Second), Quality: Uncertain(ReasonStale)},
		{Point: "ch9.T.1", Value: 7, Time: t0},
	}, nil)
	got := map[string]Sample{}
	for _, s := range out {
		got[s.Point] = s
	}
	if _, ok := got["ch1.T.1"]; ok {
		t.Error("routed channel sample passed through without keepChannel")
	}
	if got["ch9.T.1"].Value != 7 {
		t.Error("unrouted channel sample lost")
	}
	if got["pcs1.active_power"].Value != 250 {
		t.Errorf("pcs1.active_power = %v", got["pcs1.active_power"])
	}
	kva := got["pcs1.apparent_kva"]
	if kva.Value != 40 || kva.Quality != Uncertain(ReasonStale) || !kva.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("apparent_kva = %+v, want 40, uncertain, latest time", kva)
	}
	if got["pcs1.load_pct"].Value != 50 {
		t.Errorf("load_pct = %v, want 50 (instance property 500 kW)", got["pcs1.load_pct"])
	}
	if _, ok := got["site.pcs_power"]; ok {
		t.Error("site.pcs_power computed before pcs2.active_power had a value")
	}
	out = r.Route([]Sample{{Point: "ch2.T.1", Value: 50, Time: t0}}, out[:0])
	got = map[string]Sample{}
	for _, s := range out {
		got[s.Point] = s
	}
	if got["pcs2.load_pct"].Value != 50 {
		t.Errorf("pcs2.load_pct = %v, want 50 (template default 100 kW)", got["pcs2.load_pct"])
	}
	if got["site.pcs_power"].Value != 300 || got["site.pcs_power_mw"].Value != 0.3 {
		t.Errorf("site totals = %v / %v, want 300 / 0.3", got["site.pcs_power"], got["site.pcs_power_mw"])
	}
	ch, a, ok := m.Downlink("pcs1.power_setpoint")
	if !ok || ch != "ch1.A.1" {
		t.Fatalf("downlink = %q %v", ch, ok)
	}
	if err := a.Check("pcs1.power_setpoint", 600); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Check(600) = %v", err)
	}
	if err := a.Check("pcs1.power_setpoint", 12.35); !errors.Is(err, ErrBadStep) {
		t.Errorf("Check(12.35) = %v", err)
	}
	if _, _, ok := m.Downlink("pcs2.power_setpoint"); ok {
		t.Error("unrouted action has a downlink")
	}
}

func TestModelKeepChannel(t *testing.T) {
	m := mustModel(t, siteYAML)
	r, err := m.Router(true)
	if err != nil {
		t.Fatal(err)
	}
	out := r.Route([]Sample{{Point: "ch2.T.1", Value: 1}}, nil)
	if len(out) != 3 || out[0].Point != "ch2.T.1" || out[1].Point != "pcs2.active_power" || out[2].Point != "pcs2.load_pct" {
		t.Fatalf("out = %v", out)
	}
}

func TestModelCompileErrors(t *testing.T) {
	tables := []*PointTable{{Channel: "ch1", Points: []Point{{Kind: Telemetry, ID: 1, DataType: Uint16, Scale: 1}, {Kind: Adjustment, ID: 1, DataType: Int16, Scale: 1}}}}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown route endpoints listed together", `
templates: [{name: M, measurements: [{name: p}], actions: [{name: sp}]}]
instances: [{name: m1, template: M}]
uplinks: [{from: ch1.T.9, to: m1.p}, {from: ch1.T.1, to: m1.nope}, {from: chX, to: m2.p}]
downlinks: [{from: m1.sp, to: ch1.T.1}, {from: m1.zz, to: ch1.A.1}]
`, []string{"uplinks[0]: from \"ch1.T.9\": unknown channel point", "uplinks[1]: to \"m1.nope\": unknown instance measurement",
			"uplinks[2]: from \"chX\": not a channel point id", "uplinks[2]: to \"m2.p\"", "downlinks[0]: to \"ch1.T.1\": a downlink goes to a C or A point", "downlinks[1]: from \"m1.zz\": unknown instance action"}},
		{"cycle named", `
computed:
  - {point: a.x, expr: "b.y + 1"}
  - {point: b.y, expr: "c.z * 2"}
  - {point: c.z, expr: "a.x"}
`, []string{"computed points form a cycle: a.x -> b.y -> c.z -> a.x"}},
		{"bad expression", `
computed: [{point: a.x, expr: "nope.q +"}]
`, []string{"computed a.x: expr"}},
		{"unknown point in expression", `
computed: [{point: a.x, expr: "p(\"ch1.T.5\")"}]
`, []string{"unknown point \"ch1.T.5\""}},
		{"template problems", `
templates: [{name: A, parent: B}, {name: B, parent: A}, {name: C, parent: Z}]
instances: [{name: i.1, template: A}, {name: i2, template: Q}]
`, []string{"inheritance cycle", "unknown parent template", "instance name must be", "instance i2: template \"Q\": unknown template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustModel(t, tt.yaml).Compile(tables...)
			if err == nil {
				t.Fatal("compiled")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestComputedBadResultIsBadQuality(t *testing.T) {
	m := mustModel(t, "computed: [{point: a.ratio, expr: \"1 / 0 > 0 ? 1 : 0\"}, {point: a.div, expr: \"p('ch1.T.1') / p('ch1.T.2')\"}]\n")
	m.Computed = m.Computed[1:]
	m.Templates = []Template{{Name: "X", Measurements: []Measurement{{Name: "v"}}}}
	m.Instances = []Instance{{Name: "x", Template: "X"}}
	m.Computed[0].Expr = "x.v / 0"
	r, err := m.Router(false)
	if err != nil {
		t.Fatal(err)
	}
	out := r.Route([]Sample{{Point: "x.v", Value: 1}}, nil)
	if len(out) != 2 || !math.IsInf(out[1].Value, 1) {
		t.Fatalf("out = %v", out)
	}
}

func FuzzParseModel(f *testing.F) {
	f.Add(siteYAML)
	f.Add("computed: [{point: a.x, expr: \"a.x\"}]")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseModel([]byte(in), "f.yaml")
		if err != nil {
			return
		}
		if err := m.Compile(); err != nil {
			if len(AsConfigErrors(err)) == 0 {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		r, err := m.Router(false)
		if err != nil {
			t.Fatal(err)
		}
		var in2 []Sample
		for _, p := range m.Points() {
			in2 = append(in2, Sample{Point: p, Value: 1})
		}
		r.Route(in2, nil)
	})
}
