package model

import (
	"sort"
)

// Model is the device model of a site: templates, their instances, the
// routes between channel points and instance points, and site-level
// computed points. Build it from YAML with LoadModel or as a literal, then
// call Compile (directly or through ems.New) before use.
//
// A compiled Model is read-only and safe for concurrent use.
type Model struct {
	Templates []Template `json:"templates" yaml:"templates"`
	Instances []Instance `json:"instances" yaml:"instances"`
	Uplinks   []Route    `json:"uplinks,omitempty" yaml:"uplinks,omitempty"`
	Downlinks []Route    `json:"downlinks,omitempty" yaml:"downlinks,omitempty"`
	Computed  []Computed `json:"computed,omitempty" yaml:"computed,omitempty"`

	compiled *compiled
}

// Template returns the template with the given name.
func (m *Model) Template(name string) (*Template, bool) {
	for i := range m.Templates {
		if m.Templates[i].Name == name {
			return &m.Templates[i], true
		}
	}
	return nil, false
}

// IsA reports whether template t is template base or inherits from it.
func (m *Model) IsA(t, base string) bool {
	seen := 0
	for t != "" && seen <= len(m.Templates) {
		if t == base {
			return true
		}
		tpl, ok := m.Template(t)
		if !ok {
			return false
		}
		t = tpl.Parent
		seen++
	}
	return false
}

// InstancesOf returns the names of the instances of template (or of a
// template derived from it), sorted.
func (m *Model) InstancesOf(template string) []string {
	var out []string
	for _, in := range m.Instances {
		if m.IsA(in.Template, template) {
			out = append(out, in.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Instance returns the instance with the given name.
func (m *Model) Instance(name string) (*Instance, bool) {
	for i := range m.Instances {
		if m.Instances[i].Name == name {
			return &m.Instances[i], true
		}
	}
	return nil, false
}

// Measurements returns the measurements of template t including inherited
// ones (parents first). A child's measurement overrides a parent's of the
// same name.
func (m *Model) Measurements(t string) []Measurement {
	return inherited(m.chain(t), func(t *Template) []Measurement { return t.Measurements },
		func(x Measurement) string { return x.Name })
}

// Actions returns the actions of template t including inherited ones.
func (m *Model) Actions(t string) []Action {
	return inherited(m.chain(t), func(t *Template) []Action { return t.Actions },
		func(x Action) string { return x.Name })
}

// Properties returns the properties of template t including inherited ones.
func (m *Model) Properties(t string) []Property {
	return inherited(m.chain(t), func(t *Template) []Property { return t.Properties },
		func(x Property) string { return x.Name })
}

// inherited merges the items of a template chain (child first), parents'
// items first, a child's item replacing a parent's of the same name.
func inherited[T any](chain []*Template, items func(*Template) []T, name func(T) string) []T {
	var out []T
	idx := map[string]int{}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, x := range items(chain[i]) {
			if j, ok := idx[name(x)]; ok {
				out[j] = x
				continue
			}
			idx[name(x)] = len(out)
			out = append(out, x)
		}
	}
	return out
}

// chain returns t and its ancestors, t first. It stops at a missing
// template or a cycle (Validate reports both).
func (m *Model) chain(t string) []*Template {
	var out []*Template
	seen := map[string]bool{}
	for t != "" && !seen[t] {
		seen[t] = true
		tpl, ok := m.Template(t)
		if !ok {
			break
		}
		out = append(out, tpl)
		t = tpl.Parent
	}
	return out
}

// Points returns every instance point id of the model (measurements,
// actions and site computed points), sorted.
func (m *Model) Points() []string {
	var out []string
	for _, in := range m.Instances {
		for _, ms := range m.Measurements(in.Template) {
			out = append(out, in.Name+"."+ms.Name)
		}
		for _, a := range m.Actions(in.Template) {
			out = append(out, in.Name+"."+a.Name)
		}
	}
	for _, c := range m.Computed {
		out = append(out, c.Point)
	}
	sort.Strings(out)
	return out
}

// HasPoint reports whether id is an instance point of the model
// (measurement, action or computed point).
func (m *Model) HasPoint(id string) bool {
	if m.compiled != nil {
		_, ok := m.compiled.points[id]
		return ok
	}
	pts := m.Points()
	i := sort.SearchStrings(pts, id)
	return i < len(pts) && pts[i] == id
}
