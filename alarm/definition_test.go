package alarm

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

func testModel() *model.Model {
	return &model.Model{
		Templates: []model.Template{
			{Name: "PCS", Measurements: []model.Measurement{{Name: "temperature"}, {Name: "online", Kind: model.Signal},
				{Name: "breaker", Kind: model.Signal}, {Name: "active_power"}, {Name: "mode"}},
				Actions: []model.Action{{Name: "power_setpoint"}}},
			{Name: "BMS", Measurements: []model.Measurement{{Name: "soc"}}},
			{Name: "Meter", Measurements: []model.Measurement{{Name: "power"}}},
		},
		Instances: []model.Instance{{Name: "pcs1", Template: "PCS"}, {Name: "pcs2", Template: "PCS"},
			{Name: "bms1", Template: "BMS"}, {Name: "meter1", Template: "Meter"}},
	}
}

func TestLoadDefinitionsFile(t *testing.T) {
	f, err := os.Open("testdata/alarms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defs, err := LoadDefinitions(f, "alarms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 7 {
		t.Fatalf("%d definitions", len(defs))
	}
	d := defs[0]
	if d.Priority != PriorityHigh || d.Limits.HH.Priority != PriorityCritical || d.Limits.H.OnDelay != Duration(5*time.Second) ||
		d.Limits.HH.DeadbandPct != 2 || d.Tags["area"] != "hall" {
		t.Errorf("first definition decoded wrong: %+v %+v", d, d.Limits.HH)
	}
	if defs[2].Priority != 800 || !defs[2].Latched || defs[2].Discrete.Transition != "falling" {
		t.Errorf("numeric priority / transition: %+v", defs[2])
	}
	e := mustNew(t, WithDefinitionsFile("testdata/alarms.yaml"), WithModel(testModel()))
	// the template expands to both PCS instances
	for _, id := range []string{"pcs1.comm", "pcs2.comm", "pcs1_temp.hh", "pcs1_temp.ll", "meter_stale"} {
		if _, err := e.Get(id); err != nil {
			t.Errorf("alarm %s: %v", id, err)
		}
	}
	a, _ := e.Get("pcs2.comm")
	if a.Point != "pcs2.online" || a.Tags["device"] != "pcs2" || a.Priority != PriorityCritical {
		t.Errorf("templated alarm: %+v", a)
	}
}

// TestBadDefinitions checks that every problem of a file is reported
// together, each naming the alarm id, the field and the line.
func TestBadDefinitions(t *testing.T) {
	src := `alarms:
  - id: a1
    point: p1
    limits:
      hh: {value: 50}
      h: {value: 80, deadband: -1}
  - id: a2
    point: p2
    suppress_when: 'point("x") >'
    rate: {limit: 1}
  - id: a3
    point: p3
    stale: {after: 0s}
    escalation:
      - {after: 10m, priority: high}
      - {after: 5m, priority: critical}
  - id: a1
    point: p4
    quality: {}
`
	_, err := LoadDefinitions(strings.NewReader(src), "bad.yaml")
	errs := model.AsConfigErrors(err)
	want := []struct {
		id, field string
		line      int
	}{
		{"a1", "limits.hh.value", 5},
		{"a1", "limits.h.deadband", 6},
		{"a2", "suppress_when", 9},
		{"a3", "stale.after", 13},
		{"a3", "escalation[1].after", 16},
		{"a1", "id", 17},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		e := errs[i]
		if e.ID != w.id || e.Field != w.field || e.Line != w.line || e.File != "bad.yaml" {
			t.Errorf("error %d = %+v (%v), want id %s field %s line %d", i, *e, e, w.id, w.field, w.line)
		}
	}
	if !strings.Contains(err.Error(), "bad.yaml:5:") || !strings.Contains(err.Error(), "HH (50) is below H (80)") {
		t.Errorf("message: %v", err)
	}
}

func TestBadDefinitionsAgainstModel(t *testing.T) {
	src := `alarms:
  - id: x1
    point: pcs9.temperature
    limits: {h: {value: 1, on_delay: 2h}}
  - id: x2
    point: pcs1.temperature
    depends_on: nothing
    deviation: {point: pcs1.nope, limit: 3}
  - id: x3
    template: Nope
    point: temperature
    quality: {}
`
	_, err := New(WithDefinitionsYAML(strings.NewReader(src), "site.yaml"), WithModel(testModel()), WithMaxDelay(time.Hour))
	errs := model.AsConfigErrors(err)
	got := map[string]int{}
	for _, e := range errs {
		got[e.ID+" "+e.Field] = e.Line
		if e.File != "site.yaml" {
			t.Errorf("no file name: %v", e)
		}
	}
	for k, line := range map[string]int{
		"x1 point": 3, "x1 limits.h.on_delay": 4, "x2 depends_on": 7, "x2 deviation.point": 8, "x3 template": 10,
	} {
		if l, ok := got[k]; !ok || l != line {
			t.Errorf("missing or misplaced error %q (line %d, want %d); all: %v", k, l, line, err)
		}
	}
}

func TestUnknownFieldAndSyntax(t *testing.T) {
	_, err := LoadDefinitions(strings.NewReader("alarms:\n  - id: a\n    point: p\n    limitz: {}\n"), "f.yaml")
	errs := model.AsConfigErrors(err)
	if len(errs) != 1 || errs[0].Field != "limitz" || errs[0].Line != 4 {
		t.Errorf("unknown field: %v", err)
	}
	_, err = LoadDefinitions(strings.NewReader("alarms: [\n"), "f.yaml")
	if errs := model.AsConfigErrors(err); len(errs) != 1 || errs[0].File != "f.yaml" {
		t.Errorf("syntax error: %v", err)
	}
	_, err = LoadDefinitions(strings.NewReader("alarms:\n  - id: a\n    point: p\n    priority: urgent\n    quality: {}\n"), "f.yaml")
	if errs := model.AsConfigErrors(err); len(errs) != 1 || !strings.Contains(err.Error(), "urgent") {
		t.Errorf("bad priority: %v", err)
	}
	_, err = LoadDefinitions(strings.NewReader("alarms:\n  - id: a\n    point: p\n    on_delay: 5\n    off_delay: 1x\n    quality: {}\n"), "f.yaml")
	if errs := model.AsConfigErrors(err); len(errs) != 2 || errs[0].Line != 4 || errs[1].Line != 5 {
		t.Errorf("bad durations: %v", err)
	}
	var ce *model.ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("not a ConfigError: %T", err)
	}
}

func FuzzLoadDefinitions(f *testing.F) {
	seed, _ := os.ReadFile("testdata/alarms.yaml")
	f.Add(seed)
	f.Add([]byte("alarms:\n  - id: a\n    point: p\n    limits: {h: {value: 1}}\n"))
	f.Add([]byte("alarms: [{id: x, point: y, deviation: {setpoint: 3, limit: -1}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := LoadDefinitions(strings.NewReader(string(data)), "fuzz.yaml")
		if err != nil {
			if len(model.AsConfigErrors(err)) == 0 {
				t.Fatalf("error is not a ConfigError: %v", err)
			}
			return
		}
		// whatever loads must build an engine (no model: no point checks)
		for i := range defs {
			defs[i].Template = ""
		}
		e, err := New(WithDefinitions(defs...), WithMaxDelay(1<<62))
		if err != nil {
			if len(model.AsConfigErrors(err)) == 0 {
				t.Fatalf("New error is not a ConfigError: %v", err)
			}
			return
		}
		e.Close()
	})
}

func TestDefinitionJSONRoundTrip(t *testing.T) {
	f, _ := os.Open("testdata/alarms.yaml")
	defer f.Close()
	defs, err := LoadDefinitions(f, "alarms.yaml")
	must(t, err)
	for _, d := range defs {
		b, err := json.Marshal(d)
		must(t, err)
		var back Definition
		must(t, json.Unmarshal(b, &back))
		if !reflect.DeepEqual(d, back) {
			t.Errorf("%s: JSON round trip changed the definition:\n%+v\n%+v\n%s", d.ID, d, back, b)
		}
		if !reflect.DeepEqual(d.clone(), d) {
			t.Errorf("%s: clone differs", d.ID)
		}
	}
	var p Priority
	if err := json.Unmarshal([]byte(`600`), &p); err != nil || p != 600 {
		t.Errorf("numeric JSON priority: %v %v", p, err)
	}
}

// TestQuickstartAlarms checks that the alarms proposed for the quickstart
// load against the quickstart's device model.
func TestQuickstartAlarms(t *testing.T) {
	m, err := model.LoadModel("../examples/quickstart/site/model.yaml")
	if err != nil {
		t.Fatalf("quickstart model: %v", err)
	}
	e := mustNew(t, WithDefinitionsFile("testdata/quickstart.yaml"), WithModel(m))
	for _, id := range []string{"bat1.cell_temp.h", "pcs1.dc_voltage.ll", "pcs1.not_running", "grid_frequency.l", "grid_meter_stale"} {
		if _, err := e.Get(id); err != nil {
			t.Error(err)
		}
	}
	evs := send(t, e, "bat1.max_cell_temp", 45)
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "bat1.max_cell_temp 45.0 °C above the hh limit 40 °C") {
		t.Fatalf("message: %v", evs)
	}
}

func TestBadOptions(t *testing.T) {
	for name, o := range map[string]Option{
		"max delay":   WithMaxDelay(0),
		"max shelve":  WithMaxShelve(-time.Second),
		"chatter":     WithChatter(3, 0, time.Minute),
		"flood":       WithFlood(10, 0, PriorityHigh),
		"suppressor":  WithSuppressor(time.Minute, 0, 10),
		"correlation": WithCorrelation(-time.Second),
		"history":     WithHistorySize(0),
		"stale age":   WithStaleAlarmAge(0),
		"parallel":    WithParallel(0, 10),
	} {
		if _, err := New(o); !errors.Is(err, ErrBadOption) {
			t.Errorf("%s: %v, want ErrBadOption", name, err)
		}
	}
	if _, err := New(WithDefinitionsFile("testdata/missing.yaml")); err == nil {
		t.Error("missing definitions file accepted")
	}
}

func TestDefinitionValidate(t *testing.T) {
	d := Definition{ID: "x y", Point: "p", Discrete: &Discrete{}}
	errs := model.AsConfigErrors(d.Validate())
	if len(errs) != 2 || errs[0].Field != "id" || errs[1].Field != "discrete" {
		t.Fatalf("%v", d.Validate())
	}
	ok := Definition{ID: "x", Point: "p", Quality: &BadQuality{}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}
