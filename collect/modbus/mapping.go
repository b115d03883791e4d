package modbus

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
)

// Mapping is the Modbus address of one point: the row of a VoltageEMS
// *_mapping.csv file or an entry of the channel YAML's mappings list.
//
// Address is always the 0-based protocol address sent on the wire. Point
// tables written in the "Modicon" convention (40001 = first holding
// register, 30001 = first input register, 10001 = first discrete input,
// 00001 = first coil, or the 6-digit forms 400001...) are converted
// explicitly: set the row's address_convention column (or the channel's
// AddressConvention) to "modicon" and the table digit must agree with the
// function code.
type Mapping struct {
	Kind      model.Kind     // T, S, C or A
	PointID   uint32         // point_id of the point table row
	Unit      uint8          // slave_id (unit identifier)
	Function  uint8          // 1, 2, 3, 4 for reads (T, S); 5, 6, 15, 16 for writes (C, A)
	Address   uint16         // 0-based protocol address
	DataType  model.DataType // raw type on the wire; bool for coils and discrete inputs
	ByteOrder ByteOrder      // for 32- and 64-bit types (and AB/BA for 16-bit)
	Bit       int            // bit of a register (0..15) for S points on FC 3/4; -1 when unused
	Length    int            // string length in characters (data_type string only)
	Interval  time.Duration  // poll interval override; 0 = the unit's interval
	Verify    bool           // read the value back after a write and compare

	typeGiven bool               // data_type was given in the row
	src       source             // where the row came from, for errors found later
	errs      model.ConfigErrors // problems found while reading YAML, reported by Config.Validate
}

// source locates a mapping row for error messages.
type source struct {
	file string
	line int
	cols map[string]int
}

func (s source) err(field, value, id, format string, a ...any) *model.ConfigError {
	return &model.ConfigError{File: s.file, Line: s.line, Column: s.cols[field], Field: field, Value: value, ID: id, Msg: fmt.Sprintf(format, a...)}
}

// Registers returns how many registers (or bits, for FC 1, 2, 5, 15) the
// value occupies.
func (m *Mapping) Registers() int {
	switch m.Function {
	case 1, 2, 5, 15:
		return 1
	}
	if m.DataType == model.String {
		return (m.Length + 1) / 2
	}
	if m.DataType == model.Bool {
		return 1
	}
	return m.DataType.Registers()
}

// isBitFunction reports whether fc addresses coils or discrete inputs.
func isBitFunction(fc uint8) bool { return fc == 1 || fc == 2 || fc == 5 || fc == 15 }

// mappingFields are the columns/keys a mapping row may carry.
var mappingFields = map[string]bool{
	"point_id": true, "slave_id": true, "function_code": true, "register_address": true,
	"data_type": true, "byte_order": true, "bit_position": true, "length": true,
	"address_convention": true, "interval": true, "verify": true, "kind": true,
	// descriptive columns some tables carry; ignored
	"signal_name": true, "description": true, "name": true, "unit_id": true,
}

// ParseMapping builds a Mapping from one generic row (field name → text),
// as read from a *_mapping.csv file or a YAML entry. kind is the kind of
// the file the row came from (0 when the row carries a "kind" field). file,
// line and cols (1-based column per field) locate errors; every problem
// found is returned as a *model.ConfigError inside a model.ConfigErrors.
func ParseMapping(file string, line int, kind model.Kind, fields map[string]string, cols map[string]int) (Mapping, error) {
	src := source{file: file, line: line, cols: cols}
	m := Mapping{Kind: kind, Bit: -1, src: src}
	var errs model.ConfigErrors
	add := func(e *model.ConfigError) { errs = append(errs, e) }

	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !mappingFields[k] {
			add(src.err(k, fields[k], "", "unknown field"))
		}
	}
	get := func(k string) (string, bool) {
		v, ok := fields[k]
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	id := ""
	if v, ok := get("point_id"); !ok {
		add(src.err("point_id", "", "", "missing"))
	} else if n, err := strconv.ParseUint(v, 10, 32); err != nil {
		add(src.err("point_id", v, "", "not an unsigned 32-bit integer"))
	} else {
		m.PointID = uint32(n)
		id = v
	}
	if v, ok := get("kind"); ok {
		k, err := model.ParseKind(v)
		if err != nil {
			add(src.err("kind", v, id, "unknown kind (want T, S, C or A)"))
		} else if kind != 0 && k != kind {
			add(src.err("kind", v, id, "a %s mapping file holds %s points only", kind.Name(), kind))
		} else {
			m.Kind = k
		}
	} else if kind == 0 {
		add(src.err("kind", "", id, "missing"))
	}
	if v, ok := get("slave_id"); !ok {
		add(src.err("slave_id", "", id, "missing"))
	} else if n, err := strconv.ParseUint(v, 10, 8); err != nil || n > 255 {
		add(src.err("slave_id", v, id, "not a unit identifier 0..255"))
	} else {
		m.Unit = uint8(n)
	}
	fcOK := false
	if v, ok := get("function_code"); !ok {
		add(src.err("function_code", "", id, "missing"))
	} else if n, err := strconv.ParseUint(v, 10, 8); err != nil {
		add(src.err("function_code", v, id, "not a number"))
	} else {
		m.Function = uint8(n)
		switch m.Kind {
		case model.Telemetry, model.Signal:
			fcOK = n >= 1 && n <= 4
			if !fcOK {
				add(src.err("function_code", v, id, "a %s point is read: want 1, 2, 3 or 4", m.Kind))
			}
		case model.Control:
			fcOK = n == 5 || n == 6 || n == 15 || n == 16
			if !fcOK {
				add(src.err("function_code", v, id, "a C point is written: want 5, 6, 15 or 16"))
			}
		case model.Adjustment:
			fcOK = n == 6 || n == 16
			if !fcOK {
				add(src.err("function_code", v, id, "an A point is written to registers: want 6 or 16"))
			}
		}
	}
	// data type
	if v, ok := get("data_type"); ok {
		t, err := model.ParseDataType(v)
		if err != nil {
			add(src.err("data_type", v, id, "unknown data type (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)"))
		} else {
			m.DataType = t
			m.typeGiven = true
		}
	} else if fcOK && (isBitFunction(m.Function) || m.Kind == model.Signal) {
		m.DataType = model.Bool
	} else if fcOK {
		m.DataType = model.Uint16
	}
	if fcOK && isBitFunction(m.Function) && m.DataType != model.Bool && m.DataType != model.TypeUnknown {
		add(src.err("data_type", fields["data_type"], id, "function code %d addresses single bits: data type must be bool", m.Function))
	}
	if m.DataType == model.Bool && fcOK && m.Function == 16 {
		add(src.err("data_type", fields["data_type"], id, "bool with function code 16: use 6 (or 5/15 for coils)"))
	}
	if m.DataType.Registers() > 1 && m.Function == 6 {
		add(src.err("function_code", fields["function_code"], id, "%s spans %d registers: use function code 16", m.DataType, m.DataType.Registers()))
	}
	// string length
	if v, ok := get("length"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n <= 0:
			add(src.err("length", v, id, "not a positive number of characters"))
		case m.DataType != model.String:
			add(src.err("length", v, id, "length applies to data type string only"))
		case n > 250:
			add(src.err("length", v, id, "a string longer than 250 characters does not fit one request"))
		default:
			m.Length = n
		}
	} else if m.DataType == model.String {
		add(src.err("length", "", id, "data type string needs a length (characters)"))
	}
	if m.DataType == model.String && m.Kind.Writable() {
		add(src.err("data_type", fields["data_type"], id, "string points cannot be written"))
	}
	// byte order
	if v, ok := get("byte_order"); ok {
		o, err := ParseByteOrder(v)
		if err != nil {
			add(src.err("byte_order", v, id, "%v", err))
		} else {
			m.ByteOrder = o
			switch n := m.DataType.Bits() / 8; {
			case m.DataType == model.String:
				if o != OrderAB && o != OrderBA && o != OrderDefault {
					add(src.err("byte_order", v, id, "a string takes AB or BA"))
				}
			case n <= 1:
				if o != OrderDefault {
					add(src.err("byte_order", v, id, "byte order on a %s value", m.DataType))
				}
			case !o.validFor(n):
				add(src.err("byte_order", v, id, "byte order %s on a %d-bit type %s (16-bit values take AB or BA)", o, n*8, m.DataType))
			}
		}
	}
	// bit position
	if v, ok := get("bit_position"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0:
			add(src.err("bit_position", v, id, "not a bit number 0..15"))
		case n > 15:
			add(src.err("bit_position", v, id, "bit position > 15: a register has 16 bits"))
		case isBitFunction(m.Function):
			add(src.err("bit_position", v, id, "function code %d already addresses single bits", m.Function))
		case m.Kind.Writable():
			add(src.err("bit_position", v, id, "writing one bit of a register is not supported (it needs a read-modify-write)"))
		case m.DataType != model.Bool:
			add(src.err("bit_position", v, id, "a bit position needs data type bool, not %s", m.DataType))
		default:
			m.Bit = n
		}
	}
	// address
	conv := ""
	if v, ok := get("address_convention"); ok {
		conv = strings.ToLower(v)
		if conv != "protocol" && conv != "modicon" {
			add(src.err("address_convention", v, id, "want protocol (0-based) or modicon (40001-style)"))
		}
	}
	if v, ok := get("register_address"); !ok {
		add(src.err("register_address", "", id, "missing"))
	} else {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			add(src.err("register_address", v, id, "not a non-negative integer"))
		} else if conv == "modicon" {
			a, msg := fromModicon(n, m.Function)
			if msg != "" {
				add(src.err("register_address", v, id, "%s", msg))
			} else {
				m.Address = a
				n = uint64(a)
			}
		} else if n > 65535 {
			add(src.err("register_address", v, id, "above 65535 (write 0-based protocol addresses, or set address_convention: modicon for 40001-style)"))
		} else {
			m.Address = uint16(n)
		}
		if err == nil && n <= 65535 && fcOK && int(n)+m.Registers()-1 > 65535 {
			add(src.err("register_address", v, id, "address %d + %d registers runs past 65535", n, m.Registers()))
		}
	}
	if v, ok := get("interval"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			add(src.err("interval", v, id, "not a positive duration (e.g. 500ms)"))
		} else {
			m.Interval = d
		}
	}
	if v, ok := get("verify"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			add(src.err("verify", v, id, "not a boolean"))
		} else {
			m.Verify = b
		}
	}
	if len(errs) > 0 {
		return m, errs
	}
	return m, nil
}

// fromModicon converts a 5- or 6-digit Modicon reference to a protocol
// address and checks its table digit against the function code.
func fromModicon(n uint64, fc uint8) (uint16, string) {
	var want uint64
	switch fc {
	case 1, 5, 15:
		want = 0
	case 2:
		want = 1
	case 4:
		want = 3
	case 3, 6, 16:
		want = 4
	default:
		return 0, "unknown function code"
	}
	var table, off uint64
	switch {
	case n >= 100001:
		table, off = n/100000, n%100000
	default:
		table, off = n/10000, n%10000
	}
	if table != want {
		return 0, fmt.Sprintf("Modicon reference %d is in table %dx, function code %d reads table %dx", n, table, fc, want)
	}
	if off < 1 || off > 65536 {
		return 0, fmt.Sprintf("Modicon reference %d: register number %d outside 1..65536", n, off)
	}
	return uint16(off - 1), ""
}

// UnmarshalYAML reads one YAML mapping entry (a flat map with the same keys
// as the CSV columns, plus kind). Problems are kept and reported by
// Config.Validate with their line and column.
func (m *Mapping) UnmarshalYAML(n *yaml.Node) error {
	fields := map[string]string{}
	cols := map[string]int{}
	src := source{line: n.Line, cols: cols}
	if n.Kind != yaml.MappingNode {
		*m = Mapping{Bit: -1, src: src}
		m.errs = model.ConfigErrors{{Line: n.Line, Column: n.Column, Field: "mappings", Msg: "each mapping must be a map of fields"}}
		return nil
	}
	line := n.Line
	var errs model.ConfigErrors
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			fields[k.Value] = ""
			cols[k.Value] = k.Column
			errs = append(errs, &model.ConfigError{Line: k.Line, Column: k.Column, Field: k.Value, Msg: "must be a scalar"})
			continue
		}
		fields[k.Value] = v.Value
		cols[k.Value] = v.Column
	}
	pm, err := ParseMapping("", line, 0, fields, cols)
	*m = pm
	m.errs = append(errs, model.AsConfigErrors(err)...)
	return nil
}

// FromModel converts the generic rows read by model.LoadMappingDir (or
// model.ParseMappingCSV) into Modbus mappings, reporting every bad row with
// its file, line and column.
func FromModel(rows []model.Mapping) ([]Mapping, error) {
	var errs model.ConfigErrors
	out := make([]Mapping, 0, len(rows))
	for _, r := range rows {
		f := r.Fields
		if _, ok := f["point_id"]; !ok {
			f = make(map[string]string, len(r.Fields)+1)
			for k, v := range r.Fields {
				f[k] = v
			}
			f["point_id"] = strconv.FormatUint(uint64(r.PointID), 10)
		}
		m, err := ParseMapping(r.File, r.Line, r.Kind, f, r.Columns)
		if err != nil {
			errs = append(errs, model.AsConfigErrors(err)...)
			continue
		}
		out = append(out, m)
	}
	return out, errs.Err()
}
