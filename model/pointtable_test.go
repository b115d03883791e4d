package model

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadPointTableDir(t *testing.T) {
	tb, err := LoadPointTableDir("testdata/table", "pcs")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tb.Points); got != 7 {
		t.Fatalf("points = %d, want 7", got)
	}
	p, ok := tb.Find(Telemetry, 2)
	if !ok || p.Name != "active_power" || p.DataType != Int32 || p.Scale != 0.1 || p.Offset != -3000 {
		t.Fatalf("T2 = %+v", p)
	}
	if got := p.Engineering(35000); got != 500 {
		t.Errorf("Engineering(35000) = %g, want 500", got)
	}
	s, _ := tb.Lookup("pcs.S.2")
	if s == nil || !s.Reverse || s.Engineering(1) != 0 || s.Engineering(0) != 1 {
		t.Errorf("reverse signal wrong: %+v", s)
	}
	a, _ := tb.Lookup("pcs.A.1")
	if a == nil || !a.HasMin || !a.HasMax || a.Min != -1000 || a.Step != 0.5 {
		t.Fatalf("A1 = %+v", a)
	}
	raw, err := a.Raw(-12.3)
	if err != nil || raw != -123 {
		t.Errorf("Raw(-12.3) = %g, %v; want -123", raw, err)
	}
	if err := a.Validate("pcs.A.1", 1000.5); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Validate(1000.5) = %v, want ErrOutOfRange", err)
	}
	if err := a.Validate("pcs.A.1", 10.25); !errors.Is(err, ErrBadStep) {
		t.Errorf("Validate(10.25) = %v, want ErrBadStep", err)
	}
	if err := a.Validate("pcs.A.1", 10.5); err != nil {
		t.Errorf("Validate(10.5) = %v", err)
	}
	c, _ := tb.Lookup("pcs.C.1")
	if r, _ := c.Raw(1); r != 65280 {
		t.Errorf("control on raw = %g, want 65280", r)
	}
	if r, _ := c.Raw(0); r != 0 {
		t.Errorf("control off raw = %g, want 0", r)
	}
	if err := c.Validate("pcs.C.1", 2); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("control 2: %v", err)
	}
	tp, _ := tb.Lookup("pcs.T.1")
	if err := tp.Validate("pcs.T.1", 1); !errors.Is(err, ErrNotWritable) {
		t.Errorf("write to T: %v", err)
	}
}

func TestRawRoundTrip(t *testing.T) {
	p := Point{Kind: Adjustment, DataType: Uint16, Scale: 0.01, Offset: 0}
	for _, v := range []float64{0, 0.01, 1.23, 655.35} {
		raw, err := p.Raw(v)
		if err != nil {
			t.Fatalf("Raw(%g): %v", v, err)
		}
		if got := p.Engineering(raw); got-v > 1e-9 || v-got > 1e-9 {
			t.Errorf("round trip %g -> %g -> %g", v, raw, got)
		}
	}
	if _, err := p.Raw(655.36); !errors.Is(err, ErrOverflow) {
		t.Errorf("Raw(655.36) on uint16/0.01 = %v, want ErrOverflow", err)
	}
	if _, err := p.Raw(-0.01); !errors.Is(err, ErrOverflow) {
		t.Errorf("Raw(-0.01) on uint16 = %v, want ErrOverflow", err)
	}
}

func TestParsePointCSVErrors(t *testing.T) {
	const hdr = "point_id,signal_name,unit,scale,offset,reverse,data_type\n"
	tests := []struct {
		name, csv   string
		kind        Kind
		line, col   int
		field, want string
	}{
		{"unknown data type", hdr + "1,v,V,1,0,false,float128\n", Telemetry, 2, 7, "data_type", "unknown data type"},
		{"duplicate id", hdr + "1,v,V,1,0,false,uint16\n1,w,V,1,0,false,uint16\n", Telemetry, 3, 1, "point_id", "duplicate point id (first on line 2)"},
		{"scale zero", hdr + "1,v,V,0,0,false,uint16\n", Telemetry, 2, 4, "scale", "scale must not be 0"},
		{"non-numeric scale", hdr + "1,v,V,abc,0,false,uint16\n", Telemetry, 2, 4, "scale", "not a finite number"},
		{"non-numeric offset", hdr + "1,v,V,1,x1,false,uint16\n", Telemetry, 2, 5, "offset", "not a finite number"},
		{"bad point id", hdr + "-1,v,V,1,0,false,uint16\n", Telemetry, 2, 1, "point_id", "not a point number"},
		{"bad reverse", hdr + "1,v,V,1,0,maybe,bool\n", Signal, 2, 6, "reverse", "not a boolean"},
		{"missing column", "point_id,signal_name,unit,offset,reverse,data_type\n1,v,V,0,false,uint16\n", Telemetry, 1, 7, "scale", "missing required column"},
		{"unknown column", "point_id,signal_name,unit,scale,offset,reverse,data_type,min\n", Telemetry, 1, 8, "min", "unknown column"},
		{"min above max", "point_id,signal_name,unit,scale,offset,reverse,data_type,min,max,step\n1,p,kW,1,0,false,int16,10,5,1\n", Adjustment, 2, 8, "min", "min is above max"},
		{"negative step", "point_id,signal_name,unit,scale,offset,reverse,data_type,min,max,step\n1,p,kW,1,0,false,int16,0,5,-1\n", Adjustment, 2, 10, "step", "step must be >= 0"},
		{"bad pulse", "point_id,signal_name,unit,scale,offset,reverse,data_type,on_value,off_value,pulse_ms\n1,p,,1,0,false,bool,1,0,1.5\n", Control, 2, 10, "pulse_ms", "whole number"},
		{"empty file", "", Telemetry, 1, 0, "", "header row is required"},
		{"quote error", hdr + "1,\"v,V,1,0,false,uint16\n", Telemetry, 2, 0, "", "quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePointCSV(strings.NewReader(tt.csv), "x.csv", tt.kind)
			if err == nil {
				t.Fatal("no error")
			}
			ces := AsConfigErrors(err)
			if len(ces) == 0 {
				t.Fatalf("error %v carries no ConfigError", err)
			}
			ce := ces[0]
			if ce.File != "x.csv" || ce.Line != tt.line || (tt.col != 0 && ce.Column != tt.col) || ce.Field != tt.field || !strings.Contains(ce.Msg, tt.want) {
				t.Errorf("got %q (line %d col %d field %q), want line %d col %d field %q msg ~%q", ce.Error(), ce.Line, ce.Column, ce.Field, tt.line, tt.col, tt.field, tt.want)
			}
		})
	}
}

func TestParsePointCSVReportsAllErrors(t *testing.T) {
	in := "point_id,signal_name,unit,scale,offset,reverse,data_type\n1,a,,0,0,,uint16\n2,b,,1,0,,nope\nx,c,,1,0,,uint16\n"
	_, err := ParsePointCSV(strings.NewReader(in), "t.csv", Telemetry)
	if got := len(AsConfigErrors(err)); got != 3 {
		t.Fatalf("got %d errors, want 3: %v", got, err)
	}
	if !strings.Contains(err.Error(), "t.csv:2:4: scale \"0\"") {
		t.Errorf("message lacks location: %v", err)
	}
}

func TestPointTableYAML(t *testing.T) {
	good := `channel: bms
telemetry:
  - {point_id: 1, signal_name: soc, unit: "%", scale: 0.1, data_type: uint16}
adjustment:
  - {point_id: 1, signal_name: limit, scale: 1, data_type: int16, min: 0, max: 100, step: 1}
`
	tb, err := ParsePointTableYAML([]byte(good), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tb.Lookup("bms.T.1"); !ok || p.Scale != 0.1 || p.Unit != "%" {
		t.Fatalf("bms.T.1 = %+v", p)
	}
	if p, _ := tb.Lookup("bms.A.1"); !p.HasMin || p.Max != 100 {
		t.Fatalf("bms.A.1 = %+v", p)
	}
	bad := []struct{ name, in, want string }{
		{"unknown key", "channel: c\ntelemetry:\n  - {point_id: 1, signal_name: a, data_type: uint16, colour: red}\n", "colour"},
		{"bad type", "channel: c\ntelemetry:\n  - {point_id: 1, signal_name: a, data_type: uint17}\n", "t.yaml:3:5: data_type \"uint17\""},
		{"scale zero", "channel: c\ntelemetry:\n  - {point_id: 1, signal_name: a, data_type: uint16, scale: 0}\n", "scale"},
		{"dup", "channel: c\nsignal:\n  - {point_id: 1, data_type: bool}\n  - {point_id: 1, data_type: bool}\n", "t.yaml:4:5: point_id \"1\": duplicate"},
		{"no channel", "telemetry: []\n", "missing channel"},
		{"syntax", "channel: [\n", "t.yaml"},
	}
	for _, tt := range bad {
		_, err := ParsePointTableYAML([]byte(tt.in), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadMappingDir(t *testing.T) {
	ms, err := LoadMappingDir("testdata/table")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].PointID != 2 || ms[1].Fields["byte_order"] != "ABCD" || ms[1].Columns["data_type"] != 5 || ms[1].Line != 3 {
		t.Fatalf("mappings = %+v", ms)
	}
	_, err = ParseMappingCSV(strings.NewReader("slave_id\n1\n"), "m.csv", Telemetry)
	if err == nil || !strings.Contains(err.Error(), "m.csv:1: point_id: missing required column") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParsePointCSV(f *testing.F) {
	f.Add("point_id,signal_name,unit,scale,offset,reverse,data_type\n1,v,V,0.1,0,false,uint16\n", uint8(1))
	f.Add("point_id,signal_name,unit,scale,offset,reverse,data_type,min,max,step\n1,p,kW,1,0,false,int16,10,5,1\n", uint8(4))
	f.Add("\"", uint8(2))
	f.Fuzz(func(t *testing.T, in string, k uint8) {
		kind := Kinds[int(k)%4]
		pts, err := ParsePointCSV(strings.NewReader(in), "f.csv", kind)
		if err != nil {
			if len(AsConfigErrors(err)) == 0 {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		tb := &PointTable{Channel: "c", Points: pts}
		if err := tb.Validate(); err != nil {
			t.Fatalf("loader accepted a table Validate rejects: %v", err)
		}
	})
}

func FuzzParsePointTableYAML(f *testing.F) {
	f.Add("channel: c\ntelemetry:\n  - {point_id: 1, signal_name: a, data_type: uint16, scale: 0.5}\n")
	f.Add("channel: c\nsignal:\n  - {point_id: 1, data_type: bool}\n  - {point_id: 1, data_type: bool}\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := ParsePointTableYAML([]byte(in), "f.yaml")
		if err != nil {
			return
		}
		if err := tb.Validate(); err != nil {
			t.Fatalf("accepted invalid table: %v", err)
		}
	})
}
