package alarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/voltage-ems/ems/model"
	"go.yaml.in/yaml/v3"
)

// Definition configures the alarms of one point. Exactly one of Limits,
// Discrete, Rate, Deviation, Stale or Quality must be set. A definition
// with Limits yields one alarm per configured level, with the id
// "<id>.hh", "<id>.h", "<id>.l" and "<id>.ll"; every other kind yields one
// alarm with the definition's id.
//
// When Template is set the definition is applied to every instance of that
// device template (model.InstancesOf): the alarm id becomes
// "<instance>.<id>", Point (a measurement name) becomes
// "<instance>.<point>", and every "self." in Deviation.Point, DependsOn and
// SuppressWhen is replaced by "<instance>.".
type Definition struct {
	ID       string            `json:"id" yaml:"id"`
	Point    string            `json:"point" yaml:"point"`
	Template string            `json:"template,omitempty" yaml:"template,omitempty"`
	Priority Priority          `json:"priority,omitempty" yaml:"priority,omitempty"`
	Message  string            `json:"message,omitempty" yaml:"message,omitempty"`
	Tags     map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	// Latched alarms stay in the list after they clear until an operator
	// resets them.
	Latched bool `json:"latched,omitempty" yaml:"latched,omitempty"`
	// OnDelay and OffDelay are the defaults of every level: the condition
	// must hold (or be gone) that long before the alarm activates (clears).
	OnDelay  Duration `json:"on_delay,omitempty" yaml:"on_delay,omitempty"`
	OffDelay Duration `json:"off_delay,omitempty" yaml:"off_delay,omitempty"`
	// SuppressWhen is an expr-lang condition; while it is true the alarm is
	// suppressed by design (still evaluated, not annunciated). Functions:
	// point("id") float64 (NaN when unknown), good("id") bool,
	// active("alarm id") bool.
	SuppressWhen string `json:"suppress_when,omitempty" yaml:"suppress_when,omitempty"`
	// DependsOn names an alarm (typically a device's comm-failure alarm):
	// while it is active this alarm is not created. It never blocks a clear.
	DependsOn string `json:"depends_on,omitempty" yaml:"depends_on,omitempty"`
	// Escalation raises the priority of an alarm left unacknowledged.
	Escalation []EscalationStep `json:"escalation,omitempty" yaml:"escalation,omitempty"`
	// Realarm re-annunciates an acknowledged alarm that is still active
	// after this long.
	Realarm Duration `json:"realarm,omitempty" yaml:"realarm,omitempty"`

	Limits    *Limits     `json:"limits,omitempty" yaml:"limits,omitempty"`
	Range     *Range      `json:"range,omitempty" yaml:"range,omitempty"`
	Discrete  *Discrete   `json:"discrete,omitempty" yaml:"discrete,omitempty"`
	Rate      *Rate       `json:"rate,omitempty" yaml:"rate,omitempty"`
	Deviation *Deviation  `json:"deviation,omitempty" yaml:"deviation,omitempty"`
	Stale     *Stale      `json:"stale,omitempty" yaml:"stale,omitempty"`
	Quality   *BadQuality `json:"quality,omitempty" yaml:"quality,omitempty"`
}

// Limits holds the four classic limit levels; any subset may be set.
type Limits struct {
	HH *Limit `json:"hh,omitempty" yaml:"hh,omitempty"`
	H  *Limit `json:"h,omitempty" yaml:"h,omitempty"`
	L  *Limit `json:"l,omitempty" yaml:"l,omitempty"`
	LL *Limit `json:"ll,omitempty" yaml:"ll,omitempty"`
}

// Limit is one level. A high level activates at value >= Value and clears
// below Value-deadband; a low level activates at value <= Value and clears
// above Value+deadband. The deadband is Deadband (absolute) or
// DeadbandPct percent of the definition's Range. Zero delays and priority
// inherit the definition's.
type Limit struct {
	Value       float64  `json:"value" yaml:"value"`
	Deadband    float64  `json:"deadband,omitempty" yaml:"deadband,omitempty"`
	DeadbandPct float64  `json:"deadband_pct,omitempty" yaml:"deadband_pct,omitempty"`
	OnDelay     Duration `json:"on_delay,omitempty" yaml:"on_delay,omitempty"`
	OffDelay    Duration `json:"off_delay,omitempty" yaml:"off_delay,omitempty"`
	Priority    Priority `json:"priority,omitempty" yaml:"priority,omitempty"`
}

// Range is the engineering range of the point, needed for percentage
// deadbands.
type Range struct {
	Min float64 `json:"min" yaml:"min"`
	Max float64 `json:"max" yaml:"max"`
}

// Discrete alarms watch a signal (S) point: either the point equals Value,
// or a Transition ("rising", "falling" or "change") happened. A transition
// alarm activates and returns to normal in the same step, so it waits for
// acknowledgement in the returned-to-normal-unacknowledged state.
type Discrete struct {
	Value      *float64 `json:"value,omitempty" yaml:"value,omitempty"`
	Transition string   `json:"transition,omitempty" yaml:"transition,omitempty"`
}

// Rate alarms when |Δvalue| per Per exceeds Limit (Per defaults to 1s),
// computed between consecutive samples of the point.
type Rate struct {
	Limit    float64  `json:"limit" yaml:"limit"`
	Per      Duration `json:"per,omitempty" yaml:"per,omitempty"`
	Deadband float64  `json:"deadband,omitempty" yaml:"deadband,omitempty"`
}

// Deviation alarms when |value - reference| >= Limit, the reference being
// another point or a fixed Setpoint.
type Deviation struct {
	Point    string   `json:"point,omitempty" yaml:"point,omitempty"`
	Setpoint *float64 `json:"setpoint,omitempty" yaml:"setpoint,omitempty"`
	Limit    float64  `json:"limit" yaml:"limit"`
	Deadband float64  `json:"deadband,omitempty" yaml:"deadband,omitempty"`
}

// Stale alarms when the point had no update for After.
type Stale struct {
	After Duration `json:"after" yaml:"after"`
}

// BadQuality alarms while the point's samples have bad quality (and, with
// Uncertain, uncertain quality too).
type BadQuality struct {
	Uncertain bool `json:"uncertain,omitempty" yaml:"uncertain,omitempty"`
}

// EscalationStep raises an unacknowledged alarm to Priority After it was
// raised.
type EscalationStep struct {
	After    Duration `json:"after" yaml:"after"`
	Priority Priority `json:"priority" yaml:"priority"`
}

// Duration is a time.Duration written as "5s", "10m" in YAML and JSON.
type Duration = model.Duration

// Priority ranks alarms from 1 to 1000. The names low, medium, high and
// critical stand for 250, 500, 750 and 1000. Zero means "not set".
type Priority int

// Named priorities.
const (
	PriorityLow      Priority = 250
	PriorityMedium   Priority = 500
	PriorityHigh     Priority = 750
	PriorityCritical Priority = 1000
)

// Severity maps the priority to a model.Severity: >= 900 critical,
// >= 650 high, >= 400 medium, otherwise low.
func (p Priority) Severity() model.Severity {
	switch {
	case p >= 900:
		return model.SeverityCritical
	case p >= 650:
		return model.SeverityHigh
	case p >= 400:
		return model.SeverityMedium
	}
	return model.SeverityLow
}

// String returns the name of a named priority, the number otherwise.
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityMedium:
		return "medium"
	case PriorityHigh:
		return "high"
	case PriorityCritical:
		return "critical"
	}
	return strconv.Itoa(int(p))
}

// ParsePriority parses a priority name or a number from 1 to 1000.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return PriorityLow, nil
	case "medium":
		return PriorityMedium, nil
	case "high":
		return PriorityHigh, nil
	case "critical":
		return PriorityCritical, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("invalid priority %q (want low, medium, high, critical or 1-1000)", s)
	}
	return Priority(n), nil
}

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParsePriority.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// UnmarshalJSON accepts a number or a string.
func (p *Priority) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	return p.UnmarshalText([]byte(s))
}

// file is the top-level YAML document.
type file struct {
	Alarms []Definition `yaml:"alarms"`
}

// LoadDefinitions reads a YAML document of the form
//
//	alarms:
//	  - id: pcs1_temp
//	    point: pcs1.temperature
//	    limits: {h: {value: 80, deadband: 2}}
//
// and checks every definition on its own (Definition.Validate) and against
// the others (duplicate ids). Every problem found is reported together as
// model.ConfigErrors, each naming file name, line, alarm id and field. The
// checks that need the device model or the engine's caps (unknown points,
// templates, the on-delay cap, dependencies) are done by New and by the
// run-time definition operations.
func LoadDefinitions(r io.Reader, name string) ([]Definition, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("alarm: read %s: %w", name, err)
	}
	defs, _, err := loadDefs(data, name)
	return defs, err
}

func loadDefs(data []byte, name string) ([]Definition, []*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, model.YAMLErrors(name, err)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, model.YAMLErrors(name, err)
	}
	items := alarmNodes(&root)
	nodes := make([]*yaml.Node, len(f.Alarms))
	var errs model.ConfigErrors
	seen := map[string]int{}
	for i := range f.Alarms {
		d := &f.Alarms[i]
		if i < len(items) {
			nodes[i] = items[i]
		}
		for _, e := range d.validate() {
			locate(e, name, nodes[i])
			errs = append(errs, e)
		}
		if d.ID != "" {
			if j, dup := seen[d.ID]; dup {
				e := &model.ConfigError{ID: d.ID, Field: "id", Value: d.ID, Msg: fmt.Sprintf("duplicate alarm id (first defined as alarm #%d)", j+1)}
				locate(e, name, nodes[i])
				errs = append(errs, e)
			} else {
				seen[d.ID] = i
			}
		}
	}
	if err := errs.Err(); err != nil {
		sortErrs(errs)
		return nil, nil, err
	}
	return f.Alarms, nodes, nil
}

// locateAny fills the location of e from a definition's source.
func locateAny(e *model.ConfigError, s srcLoc) {
	n, _ := s.node.(*yaml.Node)
	locate(e, s.file, n)
}

// alarmNodes returns the mapping node of every entry of the alarms list.
func alarmNodes(root *yaml.Node) []*yaml.Node {
	if root == nil || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if v := mapValue(doc, "alarms"); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// locate fills file, line and column of e from the alarm's node, following
// the dotted field path ("limits.hh.value") as deep as it exists.
func locate(e *model.ConfigError, name string, node *yaml.Node) {
	e.File = name
	if node == nil {
		return
	}
	e.Line, e.Column = node.Line, node.Column
	n := node
	for _, part := range strings.Split(e.Field, ".") {
		if i := strings.IndexByte(part, '['); i >= 0 {
			idx, _ := strconv.Atoi(strings.TrimSuffix(part[i+1:], "]"))
			v := mapValue(n, part[:i])
			if v == nil {
				return
			}
			e.Line, e.Column = v.Line, v.Column
			if v.Kind != yaml.SequenceNode || idx >= len(v.Content) {
				return
			}
			n = v.Content[idx]
			e.Line, e.Column = n.Line, n.Column
			continue
		}
		v := mapValue(n, part)
		if v == nil {
			return
		}
		e.Line, e.Column = v.Line, v.Column
		n = v
	}
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$`)

// Validate checks the definition on its own: ids, exactly one alarm kind,
// limit order (LL <= L <= H <= HH), non-negative deadbands and delays,
// positive stale and rate periods, priorities, expressions and message
// templates. It returns model.ConfigErrors naming the alarm id and field.
func (d *Definition) Validate() error {
	return model.ConfigErrors(d.validate()).Err()
}

func (d *Definition) validate() model.ConfigErrors {
	var errs model.ConfigErrors
	add := func(field, value, format string, args ...any) {
		errs = append(errs, &model.ConfigError{ID: d.ID, Field: field, Value: value, Msg: fmt.Sprintf(format, args...)})
	}
	if d.ID == "" {
		add("id", "", "missing alarm id")
	} else if !idRe.MatchString(d.ID) {
		add("id", d.ID, "invalid alarm id (letters, digits and _ . : / - only)")
	}
	if d.Point == "" {
		add("point", "", "missing point")
	}
	if d.Priority < 0 || d.Priority > 1000 {
		add("priority", d.Priority.String(), "priority must be 1-1000")
	}
	if d.OnDelay < 0 {
		add("on_delay", d.OnDelay.String(), "negative delay")
	}
	if d.OffDelay < 0 {
		add("off_delay", d.OffDelay.String(), "negative delay")
	}
	if d.Realarm < 0 {
		add("realarm", d.Realarm.String(), "negative re-alarm time")
	}
	if d.Message != "" {
		if _, err := template.New(d.ID).Option("missingkey=error").Parse(d.Message); err != nil {
			add("message", d.Message, "invalid message template: %v", err)
		}
	}
	if d.SuppressWhen != "" {
		if _, err := compileExpr(d.SuppressWhen, nil); err != nil {
			add("suppress_when", d.SuppressWhen, "invalid expression: %v", err)
		}
	}
	var last time.Duration
	for i, s := range d.Escalation {
		f := fmt.Sprintf("escalation[%d]", i)
		if s.After <= 0 {
			add(f+".after", s.After.String(), "escalation time must be positive")
		} else if time.Duration(s.After) <= last {
			add(f+".after", s.After.String(), "escalation steps must be in increasing time order")
		}
		last = time.Duration(s.After)
		if s.Priority < 1 || s.Priority > 1000 {
			add(f+".priority", s.Priority.String(), "priority must be 1-1000")
		}
	}
	n := 0
	for _, set := range []bool{d.Limits != nil, d.Discrete != nil, d.Rate != nil, d.Deviation != nil, d.Stale != nil, d.Quality != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		add("", "", "exactly one of limits, discrete, rate, deviation, stale or quality must be set (found %d)", n)
	}
	if d.Range != nil && !(d.Range.Max > d.Range.Min) {
		add("range.max", ftoa(d.Range.Max), "range max must be above min")
	}
	if d.Limits != nil {
		levels := d.Limits.levels()
		if len(levels) == 0 {
			add("limits", "", "no limit level set (hh, h, l or ll)")
		}
		for _, lv := range levels {
			f := "limits." + lv.name
			l := lv.limit
			if math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
				add(f+".value", ftoa(l.Value), "limit must be a finite number")
			}
			if l.Deadband < 0 || math.IsNaN(l.Deadband) {
				add(f+".deadband", ftoa(l.Deadband), "negative deadband")
			}
			if l.DeadbandPct < 0 || l.DeadbandPct > 100 || math.IsNaN(l.DeadbandPct) {
				add(f+".deadband_pct", ftoa(l.DeadbandPct), "deadband percentage must be 0-100")
			}
			if l.Deadband > 0 && l.DeadbandPct > 0 {
				add(f+".deadband_pct", ftoa(l.DeadbandPct), "set deadband or deadband_pct, not both")
			}
			if l.DeadbandPct > 0 && d.Range == nil {
				add(f+".deadband_pct", ftoa(l.DeadbandPct), "a percentage deadband needs the definition's range")
			}
			if l.OnDelay < 0 {
				add(f+".on_delay", l.OnDelay.String(), "negative delay")
			}
			if l.OffDelay < 0 {
				add(f+".off_delay", l.OffDelay.String(), "negative delay")
			}
			if l.Priority < 0 || l.Priority > 1000 {
				add(f+".priority", l.Priority.String(), "priority must be 1-1000")
			}
		}
		lm := d.Limits
		order := func(lo, hi *Limit, loName, hiName string) {
			if lo != nil && hi != nil && hi.Value < lo.Value {
				add("limits."+hiName+".value", ftoa(hi.Value), "%s (%g) is below %s (%g)", strings.ToUpper(hiName), hi.Value, strings.ToUpper(loName), lo.Value)
			}
		}
		order(lm.H, lm.HH, "h", "hh")
		order(lm.L, lm.H, "l", "h")
		order(lm.LL, lm.L, "ll", "l")
		if lm.H == nil {
			order(lm.L, lm.HH, "l", "hh")
		}
		if lm.L == nil {
			order(lm.LL, lm.H, "ll", "h")
		}
	}
	if d.Discrete != nil {
		switch d.Discrete.Transition {
		case "", "rising", "falling", "change":
		default:
			add("discrete.transition", d.Discrete.Transition, "transition must be rising, falling or change")
		}
		if (d.Discrete.Value == nil) == (d.Discrete.Transition == "") {
			add("discrete", "", "set exactly one of value or transition")
		}
	}
	if d.Rate != nil {
		if !(d.Rate.Limit > 0) {
			add("rate.limit", ftoa(d.Rate.Limit), "rate limit must be positive")
		}
		if d.Rate.Per < 0 {
			add("rate.per", d.Rate.Per.String(), "negative period")
		}
		if d.Rate.Deadband < 0 || math.IsNaN(d.Rate.Deadband) {
			add("rate.deadband", ftoa(d.Rate.Deadband), "negative deadband")
		}
	}
	if d.Deviation != nil {
		if (d.Deviation.Point == "") == (d.Deviation.Setpoint == nil) {
			add("deviation", "", "set exactly one of point or setpoint")
		}
		if d.Deviation.Point != "" && d.Deviation.Point == d.Point {
			add("deviation.point", d.Deviation.Point, "a point cannot deviate from itself")
		}
		if !(d.Deviation.Limit > 0) {
			add("deviation.limit", ftoa(d.Deviation.Limit), "deviation limit must be positive")
		}
		if d.Deviation.Deadband < 0 || math.IsNaN(d.Deviation.Deadband) {
			add("deviation.deadband", ftoa(d.Deviation.Deadband), "negative deadband")
		}
	}
	if d.Stale != nil && d.Stale.After <= 0 {
		add("stale.after", d.Stale.After.String(), "stale time must be positive")
	}
	return errs
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

type level struct {
	name  string
	limit *Limit
	high  bool
}

// levels returns the set levels in hh, h, l, ll order.
func (l *Limits) levels() []level {
	var out []level
	if l.HH != nil {
		out = append(out, level{"hh", l.HH, true})
	}
	if l.H != nil {
		out = append(out, level{"h", l.H, true})
	}
	if l.L != nil {
		out = append(out, level{"l", l.L, false})
	}
	if l.LL != nil {
		out = append(out, level{"ll", l.LL, false})
	}
	return out
}

// clone returns a deep copy of the definition.
func (d Definition) clone() Definition {
	c := d
	if d.Tags != nil {
		c.Tags = make(map[string]string, len(d.Tags))
		for k, v := range d.Tags {
			c.Tags[k] = v
		}
	}
	c.Escalation = append([]EscalationStep(nil), d.Escalation...)
	if d.Limits != nil {
		l := *d.Limits
		for _, p := range []**Limit{&l.HH, &l.H, &l.L, &l.LL} {
			*p = clonePtr(*p)
		}
		c.Limits = &l
	}
	c.Range = clonePtr(d.Range)
	if d.Discrete != nil {
		x := *d.Discrete
		x.Value = clonePtr(x.Value)
		c.Discrete = &x
	}
	c.Rate = clonePtr(d.Rate)
	if d.Deviation != nil {
		x := *d.Deviation
		x.Setpoint = clonePtr(x.Setpoint)
		c.Deviation = &x
	}
	c.Stale = clonePtr(d.Stale)
	c.Quality = clonePtr(d.Quality)
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// UnmarshalYAML parses a priority name or number, reporting the line of a
// bad one.
func (p *Priority) UnmarshalYAML(n *yaml.Node) error {
	if err := p.UnmarshalText([]byte(n.Value)); err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid priority %q (want low, medium, high, critical or 1-1000)", n.Line, n.Value)}}
	}
	return nil
}
