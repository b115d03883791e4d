package rule

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
)

// TriggerKind says when a rule is evaluated.
type TriggerKind string

// Trigger kinds.
const (
	// TriggerChange evaluates the rule when a point its condition reads receives a sample
	// (the default). The rule fires on the rising edge of its condition.
	TriggerChange TriggerKind = "change"
	// TriggerInterval evaluates the rule every Trigger.Every; it fires each time the condition holds.
	TriggerInterval TriggerKind = "interval"
	// TriggerCron evaluates the rule on a cron schedule (five fields, or six with seconds,
	// or descriptors such as @hourly); it fires each time the condition holds.
	TriggerCron TriggerKind = "cron"
	// TriggerChain evaluates the rule only when another rule reaches it along a chain edge.
	TriggerChain TriggerKind = "chain"
)

// Trigger is the evaluation trigger of a rule.
type Trigger struct {
	Kind  TriggerKind   `json:"kind" yaml:"kind"`
	Every time.Duration `json:"every,omitempty" yaml:"every,omitempty"`
	Cron  string        `json:"cron,omitempty" yaml:"cron,omitempty"`
}

// EdgeKind is the type of a chain edge.
type EdgeKind string

// Edge kinds.
const (
	EdgeTrue    EdgeKind = "true"    // the rule fired
	EdgeFalse   EdgeKind = "false"   // the rule evaluated false (change rules: the condition cleared)
	EdgeSuccess EdgeKind = "success" // the rule fired and every action succeeded
	EdgeFailure EdgeKind = "failure" // the rule fired and at least one action failed
)

// Edge links a rule to the next rule of a chain.
type Edge struct {
	On   EdgeKind `json:"on" yaml:"on"`
	Rule string   `json:"rule" yaml:"rule"`
}

// ActionType names what an action does.
type ActionType string

// Action types.
const (
	ActionSet     ActionType = "set"     // write a C or A point (a model.Command)
	ActionEvent   ActionType = "event"   // emit a model.Event
	ActionRaise   ActionType = "raise"   // raise a custom alarm (model.EventAlarmRaised)
	ActionClear   ActionType = "clear"   // clear a custom alarm (model.EventAlarmCleared)
	ActionPublish ActionType = "publish" // publish the current values of points through the relay
	ActionWebhook ActionType = "webhook" // call an HTTP endpoint (asynchronously, with retries)
	ActionLog     ActionType = "log"     // write a log record
)

// ActionSpec is one configured action of a rule. Which fields apply depends on Type.
// Value is an expression; Message and Body may embed expressions as {{ expr }}.
type ActionSpec struct {
	Type     ActionType     `json:"type"`
	Point    string         `json:"point,omitempty"`    // set
	Value    string         `json:"value,omitempty"`    // set: expression
	Alarm    string         `json:"alarm,omitempty"`    // raise, clear
	Kind     string         `json:"kind,omitempty"`     // event: event kind, default rule.fired
	Severity model.Severity `json:"severity,omitempty"` // event, raise
	Message  string         `json:"message,omitempty"`  // event, raise, log: template
	Points   []string       `json:"points,omitempty"`   // publish
	URL      string         `json:"url,omitempty"`      // webhook
	Method   string         `json:"method,omitempty"`   // webhook, default POST
	Body     string         `json:"body,omitempty"`     // webhook: template, default a JSON document
	Timeout  time.Duration  `json:"timeout,omitempty"`  // webhook, default 5s
	Retries  int            `json:"retries,omitempty"`  // webhook, default 2
	Level    string         `json:"level,omitempty"`    // log: debug, info, warn, error
}

// Partition runs a pattern once per key (per device). "$." in event conditions and
// action points is replaced by "<key>.".
type Partition struct {
	Keys     []string `json:"keys,omitempty"`
	Template string   `json:"template,omitempty"` // every instance of this template (needs WithModel)
}

// EventDef names a condition used as an event of a complex event pattern.
type EventDef struct {
	Name string `json:"name"`
	When string `json:"when"`
}

// Spec is the configuration of one rule, as loaded from YAML or given to Add.
type Spec struct {
	ID          string        `json:"id"`
	Description string        `json:"description,omitempty"`
	Priority    int           `json:"priority"`
	Disabled    bool          `json:"disabled,omitempty"` // YAML: enabled: false
	Trigger     Trigger       `json:"trigger"`
	Condition   string        `json:"condition,omitempty"`
	Hold        time.Duration `json:"hold,omitempty"`
	Cooldown    time.Duration `json:"cooldown,omitempty"`
	// Actions run when the rule fires. Else runs on a false outcome: for a
	// change-triggered rule when its condition clears after it fired, for an
	// interval, cron or chain rule on each evaluation that is false.
	Actions   []ActionSpec `json:"actions,omitempty"`
	Else      []ActionSpec `json:"else,omitempty"`
	Next      []Edge       `json:"next,omitempty"`
	Events    []EventDef   `json:"events,omitempty"`
	Pattern   string       `json:"pattern,omitempty"`
	Partition *Partition   `json:"partition,omitempty"`

	file string
	pos  map[string][2]int // field path -> line, column (from YAML)
	node map[string]*yaml.Node
}

// at returns the line and column of a field of the spec, or of the rule itself.
func (s *Spec) at(field string) (int, int) {
	if p, ok := s.pos[field]; ok {
		return p[0], p[1]
	}
	if p, ok := s.pos[""]; ok {
		return p[0], p[1]
	}
	return 0, 0
}

func (s *Spec) errf(field, value, format string, a ...any) *model.ConfigError {
	l, c := s.at(field)
	return &model.ConfigError{File: s.file, Line: l, Column: c, Field: field, Value: value, ID: s.ID, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks the parts of a spec that need no point catalogue: ids, trigger,
// durations, action shapes, the pattern syntax. Expressions and points are checked
// when the rule is compiled (New, Add, Update, Replace).
func (s *Spec) Validate() error {
	var errs model.ConfigErrors
	s.validate(&errs)
	return errs.Err()
}

func (s *Spec) validate(errs *model.ConfigErrors) {
	add := func(e *model.ConfigError) { *errs = append(*errs, e) }
	if s.ID == "" {
		add(s.errf("id", "", "a rule needs an id"))
	} else if strings.ContainsAny(s.ID, " \t\n/") {
		add(s.errf("id", s.ID, "a rule id may not contain spaces or slashes"))
	}
	switch s.Trigger.Kind {
	case "", TriggerChange, TriggerChain:
	case TriggerInterval:
		if s.Trigger.Every <= 0 {
			add(s.errf("trigger", s.Trigger.Every.String(), "an interval trigger needs a positive duration"))
		}
	case TriggerCron:
		if _, err := cronParser.Parse(s.Trigger.Cron); err != nil {
			add(s.errf("trigger", s.Trigger.Cron, "invalid cron spec: %v", err))
		}
	default:
		add(s.errf("trigger", string(s.Trigger.Kind), "unknown trigger (want change, interval, cron or chain)"))
	}
	if s.Hold < 0 {
		add(s.errf("hold", s.Hold.String(), "must not be negative"))
	}
	if s.Cooldown < 0 {
		add(s.errf("cooldown", s.Cooldown.String(), "must not be negative"))
	}
	sched := s.Trigger.Kind == TriggerInterval || s.Trigger.Kind == TriggerCron || s.Trigger.Kind == TriggerChain
	if s.Hold > 0 && (sched || s.Pattern != "") {
		add(s.errf("hold", s.Hold.String(), "hold applies only to rules triggered on change"))
	}
	if s.Pattern != "" {
		if s.Condition != "" {
			add(s.errf("condition", s.Condition, "a rule has either a condition or a pattern, not both"))
		}
		if s.Trigger.Kind != "" && s.Trigger.Kind != TriggerChange {
			add(s.errf("trigger", string(s.Trigger.Kind), "a pattern rule is driven by its events; it takes no trigger"))
		}
		if len(s.Events) == 0 {
			add(s.errf("events", "", "a pattern needs events"))
		}
		if _, err := ParsePattern(s.Pattern); err != nil {
			e := s.errf("pattern", s.Pattern, "%v", err)
			if pe, ok := err.(*PatternError); ok {
				e.Msg = pe.Msg
				if n := s.node["pattern"]; n != nil && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
					e.Column = n.Column + pe.Offset
					if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
						e.Column++
					}
				}
			}
			add(e)
		}
	} else {
		if len(s.Events) > 0 {
			add(s.errf("events", "", "events are only used by a pattern"))
		}
		if s.Partition != nil {
			add(s.errf("partition", "", "partition applies only to pattern rules"))
		}
		if s.Condition == "" && (s.Trigger.Kind == "" || s.Trigger.Kind == TriggerChange) {
			add(s.errf("condition", "", "a rule triggered on change needs a condition"))
		}
	}
	if s.Partition != nil && len(s.Partition.Keys) == 0 && s.Partition.Template == "" {
		add(s.errf("partition", "", "a partition needs keys or a template"))
	}
	seen := map[string]bool{}
	for i, ev := range s.Events {
		f := fmt.Sprintf("events.%s", ev.Name)
		if !isName(ev.Name) {
			add(s.errf(f, ev.Name, "an event name must be an identifier"))
		}
		if seen[ev.Name] {
			add(s.errf(f, ev.Name, "duplicate event name"))
		}
		seen[ev.Name] = true
		if strings.TrimSpace(ev.When) == "" {
			add(s.errf(f, "", "an event needs a condition"))
		}
		_ = i
	}
	if len(s.Actions) == 0 && len(s.Next) == 0 && len(s.Else) == 0 {
		add(s.errf("actions", "", "a rule needs at least one action or chain edge"))
	}
	for i := range s.Actions {
		s.validateAction(fmt.Sprintf("actions[%d]", i), &s.Actions[i], add)
	}
	for i := range s.Else {
		s.validateAction(fmt.Sprintf("else[%d]", i), &s.Else[i], add)
	}
	for i, e := range s.Next {
		f := fmt.Sprintf("next[%d]", i)
		switch e.On {
		case EdgeTrue, EdgeFalse, EdgeSuccess, EdgeFailure:
		default:
			add(s.errf(f+".on", string(e.On), "unknown edge (want true, false, success or failure)"))
		}
		if e.Rule == "" {
			add(s.errf(f+".rule", "", "an edge needs a target rule"))
		} else if e.Rule == s.ID {
			add(s.errf(f+".rule", e.Rule, "a rule cannot chain to itself"))
		}
	}
}

func (s *Spec) validateAction(f string, a *ActionSpec, add func(*model.ConfigError)) {
	switch a.Type {
	case ActionSet:
		if a.Point == "" {
			add(s.errf(f+".point", "", "set needs a point"))
		}
		if strings.TrimSpace(a.Value) == "" {
			add(s.errf(f+".value", "", "set needs a value expression"))
		}
	case ActionEvent, ActionLog:
		if a.Message == "" {
			add(s.errf(f+".message", "", "%s needs a message", a.Type))
		}
		if a.Type == ActionLog {
			switch a.Level {
			case "", "debug", "info", "warn", "error":
			default:
				add(s.errf(f+".level", a.Level, "unknown level (want debug, info, warn or error)"))
			}
		}
	case ActionRaise, ActionClear:
		if a.Alarm == "" {
			add(s.errf(f+".alarm", "", "%s needs an alarm name", a.Type))
		}
	case ActionPublish:
		if len(a.Points) == 0 {
			add(s.errf(f+".points", "", "publish needs points"))
		}
	case ActionWebhook:
		if !strings.HasPrefix(a.URL, "http://") && !strings.HasPrefix(a.URL, "https://") {
			add(s.errf(f+".url", a.URL, "webhook needs an http or https url"))
		}
		if a.Timeout < 0 || a.Retries < 0 || a.Retries > 10 {
			add(s.errf(f, "", "webhook timeout must be positive and retries between 0 and 10"))
		}
	default:
		add(s.errf(f, string(a.Type), "unknown action (want set, event, raise, clear, publish, webhook or log)"))
	}
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// LoadFile reads a rule file. See Parse.
func LoadFile(path string) ([]Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes a YAML rule file:
//
//	rules:
//	  - id: soc_high
//	    priority: 10
//	    condition: bms1.soc > 95 && pcs1.active_power < 0
//	    hold: 10s
//	    cooldown: 5m
//	    actions:
//	      - set: {point: pcs1.power_setpoint, value: "0"}
//
// Every problem of the file (syntax, unknown fields, bad values, duplicate ids,
// chain cycles) is returned together as model.ConfigErrors, each with the rule id,
// line and column, wrapped so that errors.Is(err, ErrInvalidRule) holds.
// Expressions and point references are checked later, by compilation.
func Parse(data []byte, file string) ([]Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, invalid(model.YAMLErrors(file, err))
	}
	var errs model.ConfigErrors
	d := &decoder{file: file, errs: &errs}
	var specs []Spec
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		d.fail(root, "", "", "", "a rule file is a mapping with a rules: list")
		return nil, invalid(errs)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "rules" {
			d.fail(k, "", k.Value, "", "unknown field (want rules)")
			continue
		}
		if v.Kind != yaml.SequenceNode {
			if v.Tag == "!!null" {
				continue
			}
			d.fail(v, "", "rules", "", "rules must be a list")
			continue
		}
		for _, rn := range v.Content {
			specs = append(specs, d.rule(rn))
		}
	}
	ids := map[string]int{}
	for i := range specs {
		s := &specs[i]
		s.validate(&errs)
		if s.ID != "" {
			if j, dup := ids[s.ID]; dup {
				l, _ := specs[j].at("")
				errs = append(errs, s.errf("id", s.ID, "duplicate rule id (first defined at line %d)", l))
			} else {
				ids[s.ID] = i
			}
		}
	}
	errs = append(errs, chainErrors(specs)...)
	if len(errs) > 0 {
		return nil, invalid(errs)
	}
	return specs, nil
}

type decoder struct {
	file string
	errs *model.ConfigErrors
}

func (d *decoder) fail(n *yaml.Node, id, field, value, format string, a ...any) {
	*d.errs = append(*d.errs, &model.ConfigError{File: d.file, Line: n.Line, Column: n.Column, ID: id, Field: field, Value: value, Msg: fmt.Sprintf(format, a...)})
}

func (d *decoder) rule(n *yaml.Node) Spec {
	s := Spec{file: d.file, pos: map[string][2]int{"": {n.Line, n.Column}}, node: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "", "", "", "a rule must be a mapping")
		return s
	}
	// Find the id first so that every error names its rule.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			s.ID = n.Content[i+1].Value
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if seen[key] {
			d.fail(k, s.ID, key, "", "duplicate field")
			continue
		}
		seen[key] = true
		s.pos[key] = [2]int{v.Line, v.Column}
		s.node[key] = v
		switch key {
		case "id":
			s.ID = d.str(v, s.ID, key)
		case "description":
			s.Description = d.str(v, s.ID, key)
		case "priority":
			s.Priority = d.int(v, s.ID, key)
		case "enabled":
			s.Disabled = !d.bool(v, s.ID, key)
		case "trigger":
			s.Trigger = d.trigger(v, s.ID)
		case "condition", "when":
			s.Condition = d.str(v, s.ID, key)
			s.pos["condition"], s.node["condition"] = s.pos[key], v
		case "hold":
			s.Hold = d.dur(v, s.ID, key)
		case "cooldown":
			s.Cooldown = d.dur(v, s.ID, key)
		case "actions":
			s.Actions = d.actions(v, &s, key)
		case "else":
			s.Else = d.actions(v, &s, key)
		case "next":
			s.Next = d.edges(v, &s)
		case "events":
			s.Events = d.events(v, &s)
		case "pattern":
			s.Pattern = d.str(v, s.ID, key)
		case "partition":
			s.Partition = d.partition(v, s.ID)
		default:
			d.fail(k, s.ID, key, "", "unknown field")
		}
	}
	return s
}

func (d *decoder) scalar(v *yaml.Node, id, field string) bool {
	if v.Kind != yaml.ScalarNode {
		d.fail(v, id, field, "", "must be a single value")
		return false
	}
	return true
}

func (d *decoder) str(v *yaml.Node, id, field string) string {
	if !d.scalar(v, id, field) {
		return ""
	}
	return v.Value
}

func (d *decoder) int(v *yaml.Node, id, field string) int {
	if !d.scalar(v, id, field) {
		return 0
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		d.fail(v, id, field, v.Value, "must be an integer")
	}
	return n
}

func (d *decoder) bool(v *yaml.Node, id, field string) bool {
	if !d.scalar(v, id, field) {
		return false
	}
	switch v.Value {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	d.fail(v, id, field, v.Value, "must be true or false")
	return false
}

func (d *decoder) dur(v *yaml.Node, id, field string) time.Duration {
	if !d.scalar(v, id, field) {
		return 0
	}
	t, err := time.ParseDuration(v.Value)
	if err != nil {
		d.fail(v, id, field, v.Value, "invalid duration (e.g. 500ms, 10s, 5m)")
	}
	return t
}

// trigger accepts "change", "chain", {interval: 10s}, {cron: "*/5 * * * *"},
// or {kind: ..., every: ..., cron: ...}.
func (d *decoder) trigger(v *yaml.Node, id string) Trigger {
	var t Trigger
	if v.Kind == yaml.ScalarNode {
		t.Kind = TriggerKind(v.Value)
		if t.Kind != TriggerChange && t.Kind != TriggerChain {
			d.fail(v, id, "trigger", v.Value, "unknown trigger (want change, chain, {interval: D} or {cron: SPEC})")
		}
		return t
	}
	if v.Kind != yaml.MappingNode {
		d.fail(v, id, "trigger", "", "must be change, chain or a mapping")
		return t
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "interval", "every":
			t.Kind = TriggerInterval
			t.Every = d.dur(x, id, "trigger."+k.Value)
		case "cron":
			t.Kind = TriggerCron
			t.Cron = d.str(x, id, "trigger.cron")
			if _, err := cronParser.Parse(t.Cron); err != nil {
				d.fail(x, id, "trigger.cron", t.Cron, "invalid cron spec: %v", err)
				t.Cron = "@every 1h" // reported; keep Validate from reporting it twice
			}
		case "kind":
			t.Kind = TriggerKind(d.str(x, id, "trigger.kind"))
		default:
			d.fail(k, id, "trigger."+k.Value, "", "unknown field (want interval or cron)")
		}
	}
	return t
}

func (d *decoder) actions(v *yaml.Node, s *Spec, field string) []ActionSpec {
	if v.Kind != yaml.SequenceNode {
		d.fail(v, s.ID, field, "", "must be a list of actions")
		return nil
	}
	var out []ActionSpec
	for i, an := range v.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		s.pos[f] = [2]int{an.Line, an.Column}
		if an.Kind != yaml.MappingNode || len(an.Content) != 2 {
			d.fail(an, s.ID, f, "", "an action is a mapping with one key: set, event, raise, clear, publish, webhook or log")
			continue
		}
		k, body := an.Content[0], an.Content[1]
		a := ActionSpec{Type: ActionType(k.Value)}
		switch a.Type {
		case ActionSet, ActionEvent, ActionRaise, ActionClear, ActionPublish, ActionWebhook, ActionLog:
		default:
			d.fail(k, s.ID, f, k.Value, "unknown action (want set, event, raise, clear, publish, webhook or log)")
			continue
		}
		// Short forms: "log: message", "raise: alarm", "clear: alarm", "publish: [points]".
		if body.Kind == yaml.ScalarNode {
			switch a.Type {
			case ActionLog, ActionEvent:
				a.Message = body.Value
			case ActionRaise, ActionClear:
				a.Alarm = body.Value
			case ActionWebhook:
				a.URL = body.Value
			default:
				d.fail(body, s.ID, f, body.Value, "%s needs a mapping", a.Type)
			}
			out = append(out, a)
			continue
		}
		if a.Type == ActionPublish && body.Kind == yaml.SequenceNode {
			a.Points = d.strs(body, s.ID, f)
			out = append(out, a)
			continue
		}
		if body.Kind != yaml.MappingNode {
			d.fail(body, s.ID, f, "", "%s needs a mapping", a.Type)
			continue
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			kk, x := body.Content[j], body.Content[j+1]
			ff := f + "." + kk.Value
			s.pos[ff] = [2]int{x.Line, x.Column}
			s.node[ff] = x
			switch kk.Value {
			case "point":
				a.Point = d.str(x, s.ID, ff)
			case "value":
				a.Value = d.str(x, s.ID, ff)
			case "alarm":
				a.Alarm = d.str(x, s.ID, ff)
			case "kind":
				a.Kind = d.str(x, s.ID, ff)
			case "severity":
				sev, err := model.ParseSeverity(d.str(x, s.ID, ff))
				if err != nil {
					d.fail(x, s.ID, ff, x.Value, "unknown severity (want info, low, medium, high or critical)")
				}
				a.Severity = sev
			case "message":
				a.Message = d.str(x, s.ID, ff)
			case "points":
				a.Points = d.strs(x, s.ID, ff)
			case "url":
				a.URL = d.str(x, s.ID, ff)
			case "method":
				a.Method = strings.ToUpper(d.str(x, s.ID, ff))
			case "body":
				a.Body = d.str(x, s.ID, ff)
			case "timeout":
				a.Timeout = d.dur(x, s.ID, ff)
			case "retries":
				a.Retries = d.int(x, s.ID, ff)
			case "level":
				a.Level = d.str(x, s.ID, ff)
			default:
				d.fail(kk, s.ID, ff, "", "unknown field")
			}
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) strs(v *yaml.Node, id, field string) []string {
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(v, id, field, "", "must be a list")
		return nil
	}
	var out []string
	for _, x := range v.Content {
		if d.scalar(x, id, field) {
			out = append(out, x.Value)
		}
	}
	return out
}

func (d *decoder) edges(v *yaml.Node, s *Spec) []Edge {
	if v.Kind != yaml.SequenceNode {
		d.fail(v, s.ID, "next", "", "must be a list of {on: true|false|success|failure, rule: id}")
		return nil
	}
	var out []Edge
	for i, en := range v.Content {
		f := fmt.Sprintf("next[%d]", i)
		s.pos[f] = [2]int{en.Line, en.Column}
		if en.Kind != yaml.MappingNode {
			d.fail(en, s.ID, f, "", "an edge is a mapping {on: ..., rule: ...}")
			continue
		}
		var e Edge
		for j := 0; j+1 < len(en.Content); j += 2 {
			k, x := en.Content[j], en.Content[j+1]
			s.pos[f+"."+k.Value] = [2]int{x.Line, x.Column}
			switch k.Value {
			case "on":
				e.On = EdgeKind(d.str(x, s.ID, f+".on"))
			case "rule":
				e.Rule = d.str(x, s.ID, f+".rule")
			default:
				d.fail(k, s.ID, f+"."+k.Value, "", "unknown field (want on, rule)")
			}
		}
		out = append(out, e)
	}
	return out
}

func (d *decoder) events(v *yaml.Node, s *Spec) []EventDef {
	if v.Kind != yaml.MappingNode {
		d.fail(v, s.ID, "events", "", "must be a mapping name: condition")
		return nil
	}
	var out []EventDef
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		f := "events." + k.Value
		s.pos[f] = [2]int{x.Line, x.Column}
		s.node[f] = x
		out = append(out, EventDef{Name: k.Value, When: d.str(x, s.ID, f)})
	}
	return out
}

func (d *decoder) partition(v *yaml.Node, id string) *Partition {
	p := &Partition{}
	switch v.Kind {
	case yaml.SequenceNode:
		p.Keys = d.strs(v, id, "partition")
		return p
	case yaml.MappingNode:
	default:
		d.fail(v, id, "partition", "", "must be a list of keys or {keys: [...]} or {template: name}")
		return p
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "keys":
			p.Keys = d.strs(x, id, "partition.keys")
		case "template":
			p.Template = d.str(x, id, "partition.template")
		default:
			d.fail(k, id, "partition."+k.Value, "", "unknown field (want keys or template)")
		}
	}
	return p
}

// chainErrors reports edges to unknown rules and cycles.
func chainErrors(specs []Spec) model.ConfigErrors {
	var errs model.ConfigErrors
	idx := map[string]int{}
	for i := range specs {
		if _, dup := idx[specs[i].ID]; !dup {
			idx[specs[i].ID] = i
		}
	}
	for i := range specs {
		for j, e := range specs[i].Next {
			t, ok := idx[e.Rule]
			switch {
			case !ok && e.Rule != "" && e.Rule != specs[i].ID:
				errs = append(errs, specs[i].errf(fmt.Sprintf("next[%d].rule", j), e.Rule, "edge to unknown rule"))
			case ok && specs[t].Pattern != "":
				errs = append(errs, specs[i].errf(fmt.Sprintf("next[%d].rule", j), e.Rule, "a chain cannot lead to a pattern rule"))
			}
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(specs))
	reported := map[string]bool{}
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, e := range specs[i].Next {
			j, ok := idx[e.Rule]
			if !ok || j == i {
				continue
			}
			switch color[j] {
			case grey:
				// cycle: from j to i along the stack
				var ids []string
				for k := len(stack) - 1; k >= 0; k-- {
					ids = append([]string{specs[stack[k]].ID}, ids...)
					if stack[k] == j {
						break
					}
				}
				ids = append(ids, specs[j].ID)
				key := specs[j].ID
				if !reported[key] {
					reported[key] = true
					errs = append(errs, specs[i].errf("next", e.Rule, "chain cycle: %s", strings.Join(ids, " -> ")))
				}
			case white:
				visit(j)
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range specs {
		if color[i] == white {
			visit(i)
		}
	}
	return errs
}
