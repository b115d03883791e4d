package modbus

import (
	"errors"
	"strings"
	"testing"

	"github.com/voltage-ems/ems/model"
)

// Every bad mapping row of the issue is reported with file, line, column,
// field and value.
func TestParseMappingErrors(t *testing.T) {
	base := map[string]string{"point_id": "1", "slave_id": "1", "function_code": "3", "register_address": "0"}
	cases := []struct {
		kind  model.Kind
		set   map[string]string
		field string
		msg   string
	}{
		{model.Telemetry, map[string]string{"data_type": "int128"}, "data_type", "unknown data type"},
		{model.Telemetry, map[string]string{"data_type": "uint16", "byte_order": "ABCD"}, "byte_order", "16-bit"},
		{model.Telemetry, map[string]string{"data_type": "float32", "byte_order": "BA"}, "byte_order", "32-bit"},
		{model.Telemetry, map[string]string{"data_type": "float32", "byte_order": "XYZW"}, "byte_order", "unknown byte order"},
		{model.Signal, map[string]string{"bit_position": "16"}, "bit_position", "> 15"},
		{model.Signal, map[string]string{"function_code": "1", "bit_position": "2"}, "bit_position", "single bits"},
		{model.Telemetry, map[string]string{"register_address": "65535", "data_type": "float32"}, "register_address", "past 65535"},
		{model.Telemetry, map[string]string{"register_address": "65536"}, "register_address", "above 65535"},
		{model.Telemetry, map[string]string{"function_code": "16"}, "function_code", "is read"},
		{model.Telemetry, map[string]string{"function_code": "6"}, "function_code", "is read"},
		{model.Adjustment, map[string]string{"function_code": "3"}, "function_code", "written"},
		{model.Adjustment, map[string]string{"function_code": "6", "data_type": "float32"}, "function_code", "use function code 16"},
		{model.Telemetry, map[string]string{"function_code": "2", "data_type": "int16"}, "data_type", "must be bool"},
		{model.Telemetry, map[string]string{"data_type": "string"}, "length", "needs a length"},
		{model.Telemetry, map[string]string{"data_type": "string", "length": "300"}, "length", "250"},
		{model.Telemetry, map[string]string{"slave_id": "300"}, "slave_id", "0..255"},
		{model.Telemetry, map[string]string{"point_id": "x"}, "point_id", "unsigned"},
		{model.Telemetry, map[string]string{"colour": "red"}, "colour", "unknown field"},
		{model.Telemetry, map[string]string{"register_address": "40001", "address_convention": "modicon", "function_code": "4"}, "register_address", "table 4x"},
		{model.Telemetry, map[string]string{"interval": "fast"}, "interval", "duration"},
	}
	for _, c := range cases {
		f := map[string]string{}
		for k, v := range base {
			f[k] = v
		}
		cols := map[string]int{}
		i := 1
		for k, v := range c.set {
			f[k] = v
		}
		for k := range f {
			cols[k] = i
			i++
		}
		_, err := ParseMapping("pcs/telemetry_mapping.csv", 7, c.kind, f, cols)
		var found *model.ConfigError
		for _, e := range model.AsConfigErrors(err) {
			if e.Field == c.field {
				found = e
			}
		}
		if found == nil {
			t.Errorf("%v: no error on %s (got %v)", c.set, c.field, err)
			continue
		}
		if found.File != "pcs/telemetry_mapping.csv" || found.Line != 7 || found.Column != cols[c.field] || found.Value != strings.TrimSpace(f[c.field]) && found.Value != "" {
			t.Errorf("%v: location %+v", c.set, found)
		}
		if !strings.Contains(found.Msg, c.msg) {
			t.Errorf("%v: message %q does not say %q", c.set, found.Msg, c.msg)
		}
	}
}

func TestModiconAddresses(t *testing.T) {
	cases := []struct {
		fc   string
		ref  string
		want uint16
	}{{"3", "40001", 0}, {"3", "49999", 9998}, {"3", "400001", 0}, {"3", "465536", 65535}, {"4", "30010", 9}, {"2", "10001", 0}, {"1", "1", 0}, {"16", "40100", 99}}
	for _, c := range cases {
		k := model.Telemetry
		if c.fc == "16" {
			k = model.Adjustment
		}
		m, err := ParseMapping("", 1, k, map[string]string{"point_id": "1", "slave_id": "1", "function_code": c.fc, "register_address": c.ref, "address_convention": "modicon"}, nil)
		if err != nil || m.Address != c.want {
			t.Errorf("fc %s ref %s: %d %v, want %d", c.fc, c.ref, m.Address, err, c.want)
		}
	}
}

// Channel-level problems: unit 0 on TCP, points without mapping, mappings
// without points, and data types that disagree with the point table.
func TestConfigValidate(t *testing.T) {
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "0", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry, DataType: model.Float32}, "slave_id", "1", "function_code", "3", "register_address", "2", "data_type", "int16")
	tb.points = append(tb.points, model.Point{ID: 3, Kind: model.Telemetry})
	tb.mappings = append(tb.mappings, row(t, model.Signal, "point_id", "9", "slave_id", "1", "function_code", "1", "register_address", "0"))
	cfg := Config{Channel: "pcs", Address: "x:1", Points: tb.points, Mappings: tb.mappings}
	err := cfg.Validate()
	got := map[string]bool{}
	for _, e := range model.AsConfigErrors(err) {
		got[e.Field+":"+e.ID] = true
	}
	for _, want := range []string{"slave_id:pcs.T.1", "data_type:pcs.T.2", "point_id:pcs.T.3", "point_id:pcs.S.9"} {
		if !got[want] {
			t.Errorf("missing error %s in:\n%v", want, err)
		}
	}
	cfg.AllowUnitZero = true
	cfg.Transport = TransportRTU
	if err := cfg.Validate(); !strings.Contains(err.Error(), "broadcast") {
		t.Errorf("unit 0 on RTU: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
}

const channelYAML = `channel: bms
transport: rtu-over-tcp
address: 127.0.0.1:1502
timeout: 300ms
interval: 250ms
limits:
  max_registers: 60
units:
  - id: 2
    interval: 1s
mappings:
  - {kind: T, point_id: 1, slave_id: 1, function_code: 4, register_address: 0, data_type: float32, byte_order: CDAB}
  - {kind: S, point_id: 1, slave_id: 2, function_code: 2, register_address: 5}
`

func TestParseConfigYAML(t *testing.T) {
	c, err := ParseConfig("bms.yaml", []byte(channelYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.Points = []model.Point{{ID: 1, Kind: model.Telemetry}, {ID: 1, Kind: model.Signal}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Transport != TransportRTUOverTCP || c.Limits.MaxRegisters != 60 || len(c.Mappings) != 2 ||
		c.Mappings[0].ByteOrder != OrderCDAB || c.Mappings[1].Unit != 2 || c.Units[0].Interval.String() != "1s" {
		t.Errorf("parsed %+v", c)
	}
	// Unknown keys and bad rows carry file, line and column.
	bad := strings.Replace(channelYAML, "byte_order: CDAB}", "byte_order: CDAB, scale: 2}", 1)
	c, err = ParseConfig("bms.yaml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	c.Points = []model.Point{{ID: 1, Kind: model.Telemetry}, {ID: 1, Kind: model.Signal}}
	err = c.Validate()
	es := model.AsConfigErrors(err)
	if len(es) != 1 || es[0].File != "bms.yaml" || es[0].Line != 12 || es[0].Field != "scale" || es[0].Column == 0 {
		t.Errorf("bad row: %v %+v", err, es)
	}
	_, err = ParseConfig("bms.yaml", []byte("channel: x\npoll: 1s\n"))
	if es := model.AsConfigErrors(err); len(es) != 1 || !strings.Contains(es[0].Error(), "poll") {
		t.Errorf("unknown top-level key: %v", err)
	}
}

// FuzzParseMapping: any row is either rejected with ConfigErrors or yields
// a mapping that respects the protocol's bounds; it never panics.
func FuzzParseMapping(f *testing.F) {
	f.Add("1", "3", "100", "float32", "CDAB", "", "")
	f.Add("1", "3", "65535", "uint16", "", "15", "")
	f.Add("247", "4", "40001", "string", "BA", "", "12")
	f.Add("0", "16", "9", "int64", "HGFEDCBA", "", "")
	f.Fuzz(func(t *testing.T, unit, fc, addr, dt, order, bit, length string) {
		for _, k := range model.Kinds {
			f := map[string]string{"point_id": "1", "slave_id": unit, "function_code": fc, "register_address": addr, "data_type": dt, "byte_order": order, "bit_position": bit, "length": length}
			m, err := ParseMapping("f.csv", 2, k, f, nil)
			if err != nil {
				if len(model.AsConfigErrors(err)) == 0 {
					t.Fatalf("error without ConfigError: %v", err)
				}
				var ce *model.ConfigError
				if !errors.As(err, &ce) || ce.File != "f.csv" || ce.Line != 2 {
					t.Fatalf("unlocated error %v", err)
				}
				continue
			}
			if int(m.Address)+m.Registers() > 65536 || m.Bit > 15 || m.Registers() < 1 || m.Registers() > 125 {
				t.Fatalf("accepted out-of-bounds mapping %+v", m)
			}
			if k.Writable() != (m.Function >= 5) {
				t.Fatalf("kind %s with function %d", k, m.Function)
			}
			if n := m.DataType.Bits() / 8; n > 1 && !m.ByteOrder.validFor(n) {
				t.Fatalf("order %s on %s", m.ByteOrder, m.DataType)
			}
		}
	})
}

// FuzzParseConfig: any channel YAML is either rejected with located
// ConfigErrors or parses into a config whose validation never panics and
// also reports ConfigErrors.
func FuzzParseConfig(f *testing.F) {
	f.Add(channelYAML)
	f.Add("channel: x\npoll: 1s\n")
	f.Add("channel: pcs\ntransport: tcp\naddress: 127.0.0.1:502\ninterval: 500ms\nlimits: {max_registers: 200}\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConfig("f.yaml", []byte(in))
		if err != nil {
			if len(model.AsConfigErrors(err)) == 0 {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil && len(model.AsConfigErrors(err)) == 0 {
			t.Fatalf("validation error without location: %v", err)
		}
	})
}
