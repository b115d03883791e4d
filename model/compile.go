package model

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// LoadModel reads a device model from a YAML file. Unknown keys are errors.
// The model is not compiled; call Compile.
func LoadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: read device model: %w", err)
	}
	return ParseModel(b, path)
}

// ParseModel parses the YAML form of a device model; file names the source
// in errors.
func ParseModel(b []byte, file string) (*Model, error) {
	var m Model
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && err != io.EOF {
		return nil, YAMLErrors(file, err)
	}
	return &m, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Compile validates the model and prepares routing and computed points.
// When tables are given, uplink sources must be T or S points and downlink
// targets C or A points of those tables. All problems are returned
// together as ConfigErrors: every unknown route endpoint is listed, and a
// computed-point cycle is named point by point.
func (m *Model) Compile(tables ...*PointTable) error {
	var errs ConfigErrors
	add := func(id, field, value, format string, a ...any) {
		errs = append(errs, &ConfigError{ID: id, Field: field, Value: value, Msg: fmt.Sprintf(format, a...)})
	}
	// Templates.
	tpls := map[string]bool{}
	for _, t := range m.Templates {
		if !validName(t.Name) {
			add("template "+t.Name, "name", t.Name, "template name must be letters, digits, _ or -")
		}
		if tpls[t.Name] {
			add("template "+t.Name, "name", t.Name, "duplicate template")
		}
		tpls[t.Name] = true
	}
	for _, t := range m.Templates {
		if t.Parent != "" && !tpls[t.Parent] {
			add("template "+t.Name, "parent", t.Parent, "unknown parent template")
		}
		// Inheritance cycle.
		seen := map[string]bool{t.Name: true}
		for p := t.Parent; p != ""; {
			if seen[p] {
				add("template "+t.Name, "parent", t.Parent, "inheritance cycle through %q", p)
				break
			}
			seen[p] = true
			pt, ok := m.Template(p)
			if !ok {
				break
			}
			p = pt.Parent
		}
		names := map[string]bool{}
		for _, ms := range t.Measurements {
			if !validName(ms.Name) || names[ms.Name] {
				add("template "+t.Name, "measurements", ms.Name, "measurement name empty, invalid or duplicate")
			}
			names[ms.Name] = true
			if ms.Kind != 0 && ms.Kind != Telemetry && ms.Kind != Signal {
				add("template "+t.Name, "measurements."+ms.Name+".kind", ms.Kind.String(), "a measurement is T or S")
			}
		}
		for _, a := range t.Actions {
			if !validName(a.Name) || names[a.Name] {
				add("template "+t.Name, "actions", a.Name, "action name empty, invalid or duplicate (names are shared with measurements)")
			}
			names[a.Name] = true
			if a.Kind != 0 && !a.Kind.Writable() {
				add("template "+t.Name, "actions."+a.Name+".kind", a.Kind.String(), "an action is C or A")
			}
			if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
				add("template "+t.Name, "actions."+a.Name+".min", fmt.Sprint(*a.Min), "min is above max %g", *a.Max)
			}
			if a.Step < 0 {
				add("template "+t.Name, "actions."+a.Name+".step", fmt.Sprint(a.Step), "step must be >= 0")
			}
		}
	}
	// Instances.
	insts := map[string]bool{}
	for _, in := range m.Instances {
		if !validName(in.Name) {
			add("instance "+in.Name, "name", in.Name, "instance name must be letters, digits, _ or - (no dots)")
		}
		if insts[in.Name] {
			add("instance "+in.Name, "name", in.Name, "duplicate instance")
		}
		insts[in.Name] = true
		if !tpls[in.Template] {
			add("instance "+in.Name, "template", in.Template, "unknown template")
			continue
		}
		props := map[string]bool{}
		for _, p := range m.Properties(in.Template) {
			props[p.Name] = true
		}
		for k := range in.Properties {
			if !props[k] {
				add("instance "+in.Name, "properties."+k, k, "template %s has no such property", in.Template)
			}
		}
	}
	if len(errs) > 0 {
		sortErrs(errs)
		return errs
	}

	c := &compiled{points: map[string]struct{}{}, uplink: map[string][]string{}, downlink: map[string]downlink{}, meas: map[string]Measurement{}, acts: map[string]Action{}}
	for _, in := range m.Instances {
		for _, ms := range m.Measurements(in.Template) {
			id := in.Name + "." + ms.Name
			c.points[id] = struct{}{}
			c.meas[id] = ms
		}
		for _, a := range m.Actions(in.Template) {
			id := in.Name + "." + a.Name
			c.points[id] = struct{}{}
			c.acts[id] = a
		}
	}
	for _, cp := range m.Computed {
		if _, dup := c.points[cp.Point]; dup || cp.Point == "" {
			add("computed "+cp.Point, "point", cp.Point, "empty or duplicate point id")
		}
		c.points[cp.Point] = struct{}{}
		c.meas[cp.Point] = Measurement{Name: cp.Point, Unit: cp.Unit, Expr: cp.Expr}
	}

	// Channel points known from the tables.
	chans := map[string]*Point{}
	for _, t := range tables {
		for i := range t.Points {
			p := &t.Points[i]
			chans[ChannelPointID(t.Channel, p.Kind, p.ID)] = p
		}
	}
	checkChannel := func(id, field, value string, writable bool) {
		_, k, _, err := ParseChannelPointID(value)
		if err != nil {
			add(id, field, value, "not a channel point id (want channel.K.N)")
			return
		}
		if len(tables) > 0 {
			if _, ok := chans[value]; !ok {
				add(id, field, value, "unknown channel point")
				return
			}
		}
		if writable != k.Writable() {
			if writable {
				add(id, field, value, "a downlink goes to a C or A point, not %s", k)
			} else {
				add(id, field, value, "an uplink comes from a T or S point, not %s", k)
			}
		}
	}
	fed := map[string]string{}
	for i, r := range m.Uplinks {
		id := fmt.Sprintf("uplinks[%d]", i)
		checkChannel(id, "from", r.From, false)
		ms, ok := c.meas[r.To]
		switch {
		case !ok:
			if _, isAct := c.acts[r.To]; isAct {
				add(id, "to", r.To, "uplink target is an action, not a measurement")
			} else {
				add(id, "to", r.To, "unknown instance measurement")
			}
		case ms.Expr != "":
			add(id, "to", r.To, "uplink target is a computed point")
		case fed[r.To] != "":
			add(id, "to", r.To, "measurement already fed by %s", fed[r.To])
		default:
			fed[r.To] = r.From
			c.uplink[r.From] = append(c.uplink[r.From], r.To)
		}
	}
	for i, r := range m.Downlinks {
		id := fmt.Sprintf("downlinks[%d]", i)
		a, ok := c.acts[r.From]
		if !ok {
			add(id, "from", r.From, "unknown instance action")
		}
		checkChannel(id, "to", r.To, true)
		if _, dup := c.downlink[r.From]; dup {
			add(id, "from", r.From, "action already routed")
		}
		c.downlink[r.From] = downlink{channel: r.To, action: a}
	}

	// Computed points: template expressions per instance, then site ones.
	var comps []*computedPoint
	for _, in := range m.Instances {
		for _, ms := range m.Measurements(in.Template) {
			if ms.Expr == "" {
				continue
			}
			comps = append(comps, &computedPoint{point: in.Name + "." + ms.Name, src: ms.Expr, self: in.Name, props: m.instanceProps(&in)})
		}
	}
	for _, cp := range m.Computed {
		comps = append(comps, &computedPoint{point: cp.Point, src: cp.Expr})
	}
	byPoint := map[string]*computedPoint{}
	for _, cp := range comps {
		byPoint[cp.point] = cp
	}
	for _, cp := range comps {
		if err := cp.compile(c.points); err != nil {
			add("computed "+cp.point, "expr", cp.src, "%v", err)
		}
	}
	if len(errs) == 0 {
		order, cycle := topoSort(comps, byPoint)
		if cycle != nil {
			add("computed "+cycle[0], "expr", byPoint[cycle[0]].src, "computed points form a cycle: %s", strings.Join(cycle, " -> "))
		} else {
			c.computed = order
			c.dependents = map[string][]int{}
			for i, cp := range order {
				cp.index = i
			}
			// Transitive dependents of every input, in topological order.
			for _, cp := range order {
				for _, in := range cp.inputs {
					c.dependents[in] = append(c.dependents[in], cp.index)
				}
			}
			for in := range c.dependents {
				c.dependents[in] = closure(c.dependents[in], order)
			}
		}
	}
	if len(errs) > 0 {
		sortErrs(errs)
		return errs
	}
	m.compiled = c
	return nil
}

func sortErrs(errs ConfigErrors) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].ID < errs[j].ID })
}

func (m *Model) instanceProps(in *Instance) map[string]any {
	props := map[string]any{}
	for _, p := range m.Properties(in.Template) {
		props[p.Name] = p.Default
	}
	for k, v := range in.Properties {
		props[k] = v
	}
	return props
}

// closure extends idx with every computed point downstream of them,
// returned in topological order.
func closure(idx []int, order []*computedPoint) []int {
	mark := make([]bool, len(order))
	for _, i := range idx {
		mark[i] = true
	}
	for i, cp := range order {
		if mark[i] {
			continue
		}
		for _, in := range cp.inputs {
			for j := 0; j < i; j++ {
				if mark[j] && order[j].point == in {
					mark[i] = true
				}
			}
		}
	}
	var out []int
	for i, ok := range mark {
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// topoSort orders computed points so inputs come first. On a cycle it
// returns the cycle's points, starting and ending with the same point.
func topoSort(comps []*computedPoint, byPoint map[string]*computedPoint) ([]*computedPoint, []string) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var order []*computedPoint
	var stack []string
	var cycle []string
	var visit func(cp *computedPoint) bool
	visit = func(cp *computedPoint) bool {
		color[cp.point] = grey
		stack = append(stack, cp.point)
		for _, in := range cp.inputs {
			dep, ok := byPoint[in]
			if !ok {
				continue
			}
			switch color[in] {
			case grey:
				i := slices.Index(stack, in)
				cycle = append(append([]string{}, stack[i:]...), in)
				return false
			case white:
				if !visit(dep) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[cp.point] = black
		order = append(order, cp)
		return true
	}
	sorted := slices.Clone(comps)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].point < sorted[j].point })
	for _, cp := range sorted {
		if color[cp.point] == white && !visit(cp) {
			return nil, cycle
		}
	}
	return order, nil
}

type downlink struct {
	channel string
	action  Action
}

type computedPoint struct {
	point  string
	src    string
	self   string
	props  map[string]any
	inputs []string
	prog   *vm.Program
	index  int
}

// pointPatcher collapses member chains (pcs1.active_power, self.soc) and
// p("ch1.T.7") calls into identifiers named by the full point id.
type pointPatcher struct {
	known  map[string]struct{}
	self   string
	inputs map[string]bool
	err    error
}

func (v *pointPatcher) dotted(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		if x.Value == "self" && v.self != "" {
			return v.self, true
		}
		return x.Value, true
	case *ast.MemberNode:
		prop, ok := x.Property.(*ast.StringNode)
		if !ok || x.Optional {
			return "", false
		}
		base, ok := v.dotted(x.Node)
		if !ok {
			return "", false
		}
		return base + "." + prop.Value, true
	}
	return "", false
}

func (v *pointPatcher) Visit(node *ast.Node) {
	switch x := (*node).(type) {
	case *ast.MemberNode:
		name, ok := v.dotted(x)
		if !ok {
			return
		}
		if _, known := v.known[name]; known {
			v.inputs[name] = true
			ast.Patch(node, &ast.IdentifierNode{Value: name})
		}
	case *ast.IdentifierNode:
		if _, known := v.known[x.Value]; known {
			v.inputs[x.Value] = true
		}
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "p" || len(x.Arguments) != 1 {
			return
		}
		s, ok := x.Arguments[0].(*ast.StringNode)
		if !ok {
			v.err = fmt.Errorf("p() takes a constant point id")
			return
		}
		if _, known := v.known[s.Value]; !known {
			v.err = fmt.Errorf("unknown point %q", s.Value)
			return
		}
		v.inputs[s.Value] = true
		ast.Patch(node, &ast.IdentifierNode{Value: s.Value})
	}
}

func (cp *computedPoint) compile(known map[string]struct{}) error {
	env := map[string]any{"props": cp.props}
	for k := range known {
		env[k] = 0.0
	}
	if cp.props == nil {
		env["props"] = map[string]any{}
	}
	pp := &pointPatcher{known: known, self: cp.self, inputs: map[string]bool{}}
	prog, err := expr.Compile(cp.src, expr.Env(env), expr.Patch(pp))
	if pp.err != nil {
		return pp.err
	}
	if err != nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	switch prog.Node().Type().Kind().String() {
	case "float64", "int", "bool", "interface":
	default:
		return fmt.Errorf("expression yields %s, want a number or bool", prog.Node().Type())
	}
	cp.prog = prog
	for in := range pp.inputs {
		cp.inputs = append(cp.inputs, in)
	}
	sort.Strings(cp.inputs)
	return nil
}

type compiled struct {
	points     map[string]struct{}
	meas       map[string]Measurement
	acts       map[string]Action
	uplink     map[string][]string
	downlink   map[string]downlink
	computed   []*computedPoint
	dependents map[string][]int
}

// Router maps channel samples to instance samples and recomputes computed
// points. It is made by Model.Router after Compile and is not safe for
// concurrent use: the EMS data path owns one.
type Router struct {
	c        *compiled
	keep     bool
	env      map[string]any
	quality  map[string]Quality
	dirty    []bool
	anyDirty bool
	vm       vm.VM
}

// Router returns a new router for a compiled model. When keepChannel is
// true, routed channel samples are passed on as well as their instance
// samples; otherwise only unrouted channel samples pass through.
func (m *Model) Router(keepChannel bool) (*Router, error) {
	if m.compiled == nil {
		if err := m.Compile(); err != nil {
			return nil, err
		}
	}
	r := &Router{c: m.compiled, keep: keepChannel, env: map[string]any{}, quality: map[string]Quality{}, dirty: make([]bool, len(m.compiled.computed))}
	for _, cp := range m.compiled.computed {
		r.env["props"] = cp.props
		for _, in := range cp.inputs {
			r.env[in] = math.NaN()
		}
	}
	return r, nil
}

// Route appends to out the routed form of in: each routed channel sample
// becomes one sample per instance measurement it feeds (same value, time
// and quality); computed points whose inputs changed are re-evaluated and
// appended after them, with the latest input time and the worst input
// quality. A computed point is not produced until all its inputs have a
// value. in is not modified or retained.
func (r *Router) Route(in []Sample, out []Sample) []Sample {
	var latest time.Time
	for i := range in {
		s := &in[i]
		targets, routed := r.c.uplink[s.Point]
		if !routed || r.keep {
			out = append(out, *s)
			r.track(s)
		}
		for _, to := range targets {
			o := *s
			o.Point = to
			out = append(out, o)
			r.track(&o)
		}
		if s.Time.After(latest) {
			latest = s.Time
		}
	}
	if r.anyDirty {
		out = r.recompute(out, latest)
	}
	return out
}

func (r *Router) track(s *Sample) {
	deps, ok := r.c.dependents[s.Point]
	if !ok {
		return
	}
	r.env[s.Point] = s.Value
	r.quality[s.Point] = s.Quality
	for _, d := range deps {
		r.dirty[d] = true
	}
	r.anyDirty = true
}

func (r *Router) recompute(out []Sample, t time.Time) []Sample {
	r.anyDirty = false
	for i, cp := range r.c.computed {
		if !r.dirty[i] {
			continue
		}
		r.dirty[i] = false
		q := Good
		ready := true
		for _, in := range cp.inputs {
			if _, seen := r.quality[in]; !seen {
				ready = false
				break
			}
			if iq := r.quality[in]; iq.Status() > q.Status() {
				q = iq
			}
		}
		if !ready {
			continue
		}
		if cp.self != "" {
			r.env["props"] = cp.props
		}
		res, err := r.vm.Run(cp.prog, r.env)
		s := Sample{Point: cp.point, Time: t, Quality: q}
		switch v := res.(type) {
		case float64:
			s.Value = v
		case int:
			s.Value = float64(v)
		case bool:
			if v {
				s.Value = 1
			}
		default:
			err = fmt.Errorf("result %T", res)
		}
		if err != nil {
			s.Value, s.Quality = math.NaN(), Bad(ReasonConfig)
		}
		out = append(out, s)
		r.env[cp.point] = s.Value
		r.quality[cp.point] = s.Quality
	}
	return out
}

// Downlink resolves an instance action to the channel point it is routed
// to, with the action's own limits. ok is false when the action has no
// downlink route.
func (m *Model) Downlink(action string) (channelPoint string, a Action, ok bool) {
	if m.compiled == nil {
		return "", Action{}, false
	}
	d, ok := m.compiled.downlink[action]
	return d.channel, d.action, ok
}

// IsAction reports whether id is an instance action of the compiled model.
func (m *Model) IsAction(id string) bool {
	if m.compiled == nil {
		return false
	}
	_, ok := m.compiled.acts[id]
	return ok
}

// Check validates an engineering value against the action's own limits.
func (a *Action) Check(point string, v float64) error {
	p := Point{Kind: a.Kind, Step: a.Step}
	if p.Kind == 0 {
		p.Kind = Adjustment
	}
	if a.Min != nil {
		p.Min, p.HasMin = *a.Min, true
	}
	if a.Max != nil {
		p.Max, p.HasMax = *a.Max, true
	}
	return p.Validate(point, v)
}
