package model

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PointTable is the point table of one channel: its T, S, C and A points.
// Point ids are unique per kind. Build it with LoadPointTableDir,
// LoadPointTableYAML or as a literal followed by Validate.
type PointTable struct {
	Channel string  `json:"channel" yaml:"channel"`
	Points  []Point `json:"points" yaml:"-"`

	index map[pointKey]int
}

type pointKey struct {
	k  Kind
	id uint32
}

// Find returns the point of kind k with number id.
func (t *PointTable) Find(k Kind, id uint32) (*Point, bool) {
	if t.index == nil {
		t.reindex()
	}
	i, ok := t.index[pointKey{k, id}]
	if !ok {
		return nil, false
	}
	return &t.Points[i], true
}

// Lookup returns the point with a channel point id such as "ch1.A.3".
func (t *PointTable) Lookup(pointID string) (*Point, bool) {
	ch, k, id, err := ParseChannelPointID(pointID)
	if err != nil || ch != t.Channel {
		return nil, false
	}
	return t.Find(k, id)
}

// IDs returns the channel point ids of every point, in table order.
func (t *PointTable) IDs() []string {
	out := make([]string, len(t.Points))
	for i := range t.Points {
		out[i] = ChannelPointID(t.Channel, t.Points[i].Kind, t.Points[i].ID)
	}
	return out
}

func (t *PointTable) reindex() {
	t.index = make(map[pointKey]int, len(t.Points))
	for i := range t.Points {
		t.index[pointKey{t.Points[i].Kind, t.Points[i].ID}] = i
	}
}

// Validate checks the table: a channel name without dots, valid kinds and
// data types, unique ids per kind, non-zero finite scale, min <= max, step
// >= 0. It returns all problems as ConfigErrors.
func (t *PointTable) Validate() error {
	var errs ConfigErrors
	if t.Channel == "" || strings.ContainsAny(t.Channel, ". \t") {
		errs = append(errs, &ConfigError{Field: "channel", Value: t.Channel, Msg: "channel name must be non-empty without dots or spaces"})
	}
	seen := map[pointKey]bool{}
	for i := range t.Points {
		p := &t.Points[i]
		id := fmt.Sprintf("%s.%d", p.Kind, p.ID)
		if !p.Kind.Valid() {
			errs = append(errs, &ConfigError{ID: id, Field: "kind", Msg: "invalid point kind"})
		}
		if seen[pointKey{p.Kind, p.ID}] {
			errs = append(errs, &ConfigError{ID: id, Field: "point_id", Value: strconv.FormatUint(uint64(p.ID), 10), Msg: "duplicate point id"})
		}
		seen[pointKey{p.Kind, p.ID}] = true
		errs = append(errs, p.check(id)...)
	}
	t.reindex()
	return errs.Err()
}

func (p *Point) check(id string) ConfigErrors {
	var errs ConfigErrors
	if p.DataType == TypeUnknown {
		errs = append(errs, &ConfigError{ID: id, Field: "data_type", Msg: "missing data type"})
	}
	if p.Scale == 0 || math.IsNaN(p.Scale) || math.IsInf(p.Scale, 0) {
		errs = append(errs, &ConfigError{ID: id, Field: "scale", Value: strconv.FormatFloat(p.Scale, 'g', -1, 64), Msg: "scale must be a non-zero finite number"})
	}
	if math.IsNaN(p.Offset) || math.IsInf(p.Offset, 0) {
		errs = append(errs, &ConfigError{ID: id, Field: "offset", Msg: "offset must be finite"})
	}
	if p.HasMin && p.HasMax && p.Min > p.Max {
		errs = append(errs, &ConfigError{ID: id, Field: "min", Value: strconv.FormatFloat(p.Min, 'g', -1, 64), Msg: fmt.Sprintf("min is above max %g", p.Max)})
	}
	if p.Step < 0 || math.IsNaN(p.Step) {
		errs = append(errs, &ConfigError{ID: id, Field: "step", Value: strconv.FormatFloat(p.Step, 'g', -1, 64), Msg: "step must be >= 0"})
	}
	if p.PulseMS < 0 {
		errs = append(errs, &ConfigError{ID: id, Field: "pulse_ms", Value: strconv.Itoa(p.PulseMS), Msg: "pulse_ms must be >= 0"})
	}
	return errs
}

// Point-table file names per kind, in the VoltageEMS layout.
var tableFiles = map[Kind]string{
	Telemetry:  "telemetry.csv",
	Signal:     "signal.csv",
	Control:    "control.csv",
	Adjustment: "adjustment.csv",
}

// Columns per kind. Required columns must be in the header.
var (
	baseColumns     = []string{"point_id", "signal_name", "unit", "scale", "offset", "reverse", "data_type"}
	requiredColumns = map[string]bool{"point_id": true, "signal_name": true, "scale": true, "offset": true, "data_type": true}
	extraColumns    = map[Kind][]string{
		Control:    {"on_value", "off_value", "pulse_ms"},
		Adjustment: {"min", "max", "step"},
	}
)

// allowedColumns returns the columns (and YAML keys) of a kind's table.
func allowedColumns(k Kind) map[string]bool {
	allowed := map[string]bool{}
	for _, c := range baseColumns {
		allowed[c] = true
	}
	for _, c := range extraColumns[k] {
		allowed[c] = true
	}
	return allowed
}

// LoadPointTableDir reads telemetry.csv, signal.csv, control.csv and
// adjustment.csv from dir (a missing file means no points of that kind)
// and validates the result. Errors name the file, line and column.
func LoadPointTableDir(dir, channel string) (*PointTable, error) {
	t := &PointTable{Channel: channel}
	var errs ConfigErrors
	found, err := eachKindFile(dir, func(k Kind) string { return tableFiles[k] }, func(b []byte, path string, k Kind) {
		pts, err := ParsePointCSV(bytes.NewReader(b), path, k)
		errs = append(errs, AsConfigErrors(err)...)
		t.Points = append(t.Points, pts...)
	})
	if err != nil {
		return nil, fmt.Errorf("model: read point table: %w", err)
	}
	if !found {
		return nil, &ConfigError{File: dir, Msg: "no point table files (telemetry.csv, signal.csv, control.csv, adjustment.csv)"}
	}
	if len(errs) == 0 {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	return t, errs.Err()
}

// ParsePointCSV parses one point-table CSV of kind k. file names the source
// in errors. The header row is required; column order is free; unknown
// columns are errors. All problems of the file are returned together.
func ParsePointCSV(r io.Reader, file string, k Kind) ([]Point, error) {
	cr, header, err := openCSV(r, file)
	if err != nil {
		return nil, err
	}
	allowed := allowedColumns(k)
	var errs ConfigErrors
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !allowed[h] {
			errs = append(errs, &ConfigError{File: file, Line: 1, Column: i + 1, Field: h, Msg: "unknown column for a " + k.Name() + " table"})
			continue
		}
		if _, dup := col[h]; dup {
			errs = append(errs, &ConfigError{File: file, Line: 1, Column: i + 1, Field: h, Msg: "duplicate column"})
			continue
		}
		col[h] = i
	}
	var missing []string
	for _, c := range baseColumns {
		if _, ok := col[c]; !ok && requiredColumns[c] {
			missing = append(missing, c)
		}
	}
	for _, c := range missing {
		errs = append(errs, &ConfigError{File: file, Line: 1, Column: len(header) + 1, Field: c, Msg: "missing required column"})
	}
	if len(missing) > 0 {
		return nil, errs
	}
	var pts []Point
	seen := map[uint32]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvError(file, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err == csv.ErrFieldCount {
				continue
			}
			break
		}
		line, _ := cr.FieldPos(0)
		cell := func(name string) (string, int) {
			i, ok := col[name]
			if !ok || i >= len(rec) {
				return "", 0
			}
			return strings.TrimSpace(rec[i]), i + 1
		}
		bad := func(name, v string, c int, msg string) {
			errs = append(errs, &ConfigError{File: file, Line: line, Column: c, Field: name, Value: v, Msg: msg})
		}
		num := func(name string, def float64) (float64, bool) {
			v, c := cell(name)
			if v == "" {
				return def, false
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				bad(name, v, c, "not a finite number")
				return def, false
			}
			return f, true
		}
		p := Point{Kind: k}
		if v, c := cell("point_id"); v == "" {
			bad("point_id", v, c, "missing point id")
		} else if n, err := strconv.ParseUint(v, 10, 32); err != nil {
			bad("point_id", v, c, "not a point number (want a non-negative integer)")
		} else {
			p.ID = uint32(n)
			if prev, dup := seen[p.ID]; dup {
				bad("point_id", v, c, fmt.Sprintf("duplicate point id (first on line %d)", prev))
			}
			seen[p.ID] = line
		}
		p.Name, _ = cell("signal_name")
		p.Unit, _ = cell("unit")
		var ok bool
		p.Scale, ok = num("scale", 1)
		if v, c := cell("scale"); ok && p.Scale == 0 {
			bad("scale", v, c, "scale must not be 0")
		}
		p.Offset, _ = num("offset", 0)
		if v, c := cell("reverse"); v != "" {
			switch strings.ToLower(v) {
			case "1", "true", "yes", "y":
				p.Reverse = true
			case "0", "false", "no", "n":
			default:
				bad("reverse", v, c, "not a boolean (want true/false or 1/0)")
			}
		}
		if v, c := cell("data_type"); v == "" {
			bad("data_type", v, c, "missing data type")
		} else if dt, err := ParseDataType(v); err != nil {
			bad("data_type", v, c, err.Error())
		} else {
			p.DataType = dt
		}
		switch k {
		case Control:
			p.OnValue, _ = num("on_value", 0)
			p.OffValue, _ = num("off_value", 0)
			if pm, ok := num("pulse_ms", 0); ok {
				if pm < 0 || pm != math.Trunc(pm) || pm > 3600_000 {
					v, c := cell("pulse_ms")
					bad("pulse_ms", v, c, "pulse_ms must be a whole number of milliseconds between 0 and 3600000")
				} else {
					p.PulseMS = int(pm)
				}
			}
		case Adjustment:
			p.Min, p.HasMin = num("min", 0)
			p.Max, p.HasMax = num("max", 0)
			p.Step, _ = num("step", 0)
			if p.HasMin && p.HasMax && p.Min > p.Max {
				v, c := cell("min")
				bad("min", v, c, fmt.Sprintf("min is above max %g", p.Max))
			}
			if p.Step < 0 {
				v, c := cell("step")
				bad("step", v, c, "step must be >= 0")
			}
		}
		pts = append(pts, p)
	}
	return pts, errs.Err()
}

func csvError(file string, err error) *ConfigError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ConfigError{File: file, Line: pe.Line, Column: pe.Column, Msg: pe.Err.Error()}
	}
	return &ConfigError{File: file, Msg: err.Error()}
}

// yamlPoint is the YAML form of a point, with presence for min and max.
type yamlPoint struct {
	PointID  *uint32  `yaml:"point_id"`
	Name     string   `yaml:"signal_name"`
	Unit     string   `yaml:"unit"`
	Scale    *float64 `yaml:"scale"`
	Offset   float64  `yaml:"offset"`
	Reverse  bool     `yaml:"reverse"`
	DataType string   `yaml:"data_type"`
	OnValue  float64  `yaml:"on_value"`
	OffValue float64  `yaml:"off_value"`
	PulseMS  int      `yaml:"pulse_ms"`
	Min      *float64 `yaml:"min"`
	Max      *float64 `yaml:"max"`
	Step     float64  `yaml:"step"`
}

type yamlTable struct {
	Channel    string      `yaml:"channel"`
	Telemetry  []yaml.Node `yaml:"telemetry"`
	Signal     []yaml.Node `yaml:"signal"`
	Control    []yaml.Node `yaml:"control"`
	Adjustment []yaml.Node `yaml:"adjustment"`
}

// LoadPointTableYAML reads a point table from a YAML file of the form
//
//	channel: ch1
//	telemetry:
//	  - {point_id: 1, signal_name: voltage, unit: V, scale: 0.1, data_type: uint16}
//	signal: [...]
//	control: [...]
//	adjustment: [...]
func LoadPointTableYAML(path string) (*PointTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: read point table: %w", err)
	}
	return ParsePointTableYAML(b, path)
}

// ParsePointTableYAML parses the YAML form of a point table; file names the
// source in errors. Unknown keys are errors.
func ParsePointTableYAML(b []byte, file string) (*PointTable, error) {
	var yt yamlTable
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&yt); err != nil && err != io.EOF {
		return nil, YAMLErrors(file, err)
	}
	t := &PointTable{Channel: yt.Channel}
	var errs ConfigErrors
	if yt.Channel == "" {
		errs = append(errs, &ConfigError{File: file, Line: 1, Field: "channel", Msg: "missing channel name"})
	}
	for _, group := range []struct {
		k     Kind
		nodes []yaml.Node
	}{{Telemetry, yt.Telemetry}, {Signal, yt.Signal}, {Control, yt.Control}, {Adjustment, yt.Adjustment}} {
		seen := map[uint32]int{}
		allowed := allowedColumns(group.k)
		for i := range group.nodes {
			n := &group.nodes[i]
			var yp yamlPoint
			if n.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(n.Content); j += 2 {
					if key := n.Content[j]; !allowed[key.Value] {
						errs = append(errs, &ConfigError{File: file, Line: key.Line, Column: key.Column, Field: key.Value, Msg: "unknown field for a " + group.k.Name() + " point"})
					}
				}
			}
			if err := n.Decode(&yp); err != nil {
				errs = append(errs, YAMLErrors(file, err)...)
				continue
			}
			bad := func(field, v, msg string) {
				errs = append(errs, &ConfigError{File: file, Line: n.Line, Column: n.Column, Field: field, Value: v, Msg: msg})
			}
			p := Point{Kind: group.k, Name: yp.Name, Unit: yp.Unit, Offset: yp.Offset, Reverse: yp.Reverse,
				OnValue: yp.OnValue, OffValue: yp.OffValue, PulseMS: yp.PulseMS, Step: yp.Step, Scale: 1}
			if yp.PointID == nil {
				bad("point_id", "", "missing point id")
			} else {
				p.ID = *yp.PointID
				if l, dup := seen[p.ID]; dup {
					bad("point_id", strconv.FormatUint(uint64(p.ID), 10), fmt.Sprintf("duplicate point id (first on line %d)", l))
				}
				seen[p.ID] = n.Line
			}
			if yp.Scale != nil {
				p.Scale = *yp.Scale
			}
			if yp.Min != nil {
				p.Min, p.HasMin = *yp.Min, true
			}
			if yp.Max != nil {
				p.Max, p.HasMax = *yp.Max, true
			}
			if dt, err := ParseDataType(yp.DataType); err != nil {
				bad("data_type", yp.DataType, err.Error())
			} else {
				p.DataType = dt
				for _, e := range p.check("") {
					if e.Field != "data_type" {
						bad(e.Field, e.Value, e.Msg)
					}
				}
			}
			t.Points = append(t.Points, p)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// Mapping is one row of a protocol mapping file (telemetry_mapping.csv and
// so on): the point it maps and its protocol fields, uninterpreted. A
// protocol package (collect/modbus) turns Fields into its own typed mapping
// and reports errors with File, Line and Columns.
type Mapping struct {
	File    string
	Line    int
	Kind    Kind
	PointID uint32
	Fields  map[string]string // lower-case column name -> trimmed cell
	Columns map[string]int    // lower-case column name -> 1-based column
}

// LoadMappingDir reads telemetry_mapping.csv, signal_mapping.csv,
// control_mapping.csv and adjustment_mapping.csv from dir (missing files
// mean no mappings of that kind).
func LoadMappingDir(dir string) ([]Mapping, error) {
	var out []Mapping
	var errs ConfigErrors
	_, err := eachKindFile(dir, func(k Kind) string { return k.Name() + "_mapping.csv" }, func(b []byte, path string, k Kind) {
		ms, err := ParseMappingCSV(bytes.NewReader(b), path, k)
		errs = append(errs, AsConfigErrors(err)...)
		out = append(out, ms...)
	})
	if err != nil {
		return nil, fmt.Errorf("model: read mapping: %w", err)
	}
	return out, errs.Err()
}

// eachKindFile calls fn with the content of dir/name(k) for every kind
// whose file exists, in T, S, C, A order. found reports whether any did.
func eachKindFile(dir string, name func(Kind) string, fn func(b []byte, path string, k Kind)) (found bool, err error) {
	for _, k := range Kinds {
		path := filepath.Join(dir, name(k))
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return found, err
		}
		found = true
		fn(b, path, k)
	}
	return found, nil
}

// openCSV returns a reader positioned after the header row, and the header.
func openCSV(r io.Reader, file string) (*csv.Reader, []string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, &ConfigError{File: file, Line: 1, Msg: "empty file: a header row is required"}
	}
	if err != nil {
		return nil, nil, csvError(file, err)
	}
	return cr, header, nil
}

// ParseMappingCSV parses a mapping CSV of kind k. The header is required
// and must contain point_id; point ids must be unique.
func ParseMappingCSV(r io.Reader, file string, k Kind) ([]Mapping, error) {
	cr, header, err := openCSV(r, file)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(header))
	idCol := -1
	var errs ConfigErrors
	for i, h := range header {
		names[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if names[i] == "point_id" {
			idCol = i
		}
	}
	if idCol < 0 {
		return nil, &ConfigError{File: file, Line: 1, Field: "point_id", Msg: "missing required column"}
	}
	var out []Mapping
	seen := map[uint32]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvError(file, err))
			break
		}
		line, _ := cr.FieldPos(0)
		m := Mapping{File: file, Line: line, Kind: k, Fields: map[string]string{}, Columns: map[string]int{}}
		for i, v := range rec {
			if i >= len(names) {
				errs = append(errs, &ConfigError{File: file, Line: line, Column: i + 1, Msg: "more cells than header columns"})
				break
			}
			m.Fields[names[i]] = strings.TrimSpace(v)
			m.Columns[names[i]] = i + 1
		}
		v := m.Fields["point_id"]
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			errs = append(errs, &ConfigError{File: file, Line: line, Column: m.Columns["point_id"], Field: "point_id", Value: v, Msg: "not a point number (want a non-negative integer)"})
			continue
		}
		m.PointID = uint32(n)
		if l, dup := seen[m.PointID]; dup {
			errs = append(errs, &ConfigError{File: file, Line: line, Column: m.Columns["point_id"], Field: "point_id", Value: v, Msg: fmt.Sprintf("duplicate point id (first on line %d)", l)})
			continue
		}
		seen[m.PointID] = line
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PointID < out[j].PointID })
	return out, errs.Err()
}
