package model

// Template is a product type in the device model: Station, ESS, Battery,
// PCS, PV, Load, Meter. A template inherits the properties, measurements
// and actions of its Parent (and the parent's parent).
type Template struct {
	Name         string        `json:"name" yaml:"name"`
	Parent       string        `json:"parent,omitempty" yaml:"parent,omitempty"`
	Description  string        `json:"description,omitempty" yaml:"description,omitempty"`
	Properties   []Property    `json:"properties,omitempty" yaml:"properties,omitempty"`
	Measurements []Measurement `json:"measurements,omitempty" yaml:"measurements,omitempty"`
	Actions      []Action      `json:"actions,omitempty" yaml:"actions,omitempty"`
}

// Property is a static attribute of a template (rated power, capacity).
// Default is used when an instance gives no value.
type Property struct {
	Name    string  `json:"name" yaml:"name"`
	Unit    string  `json:"unit,omitempty" yaml:"unit,omitempty"`
	Default float64 `json:"default,omitempty" yaml:"default,omitempty"`
}

// Measurement is a value a template produces: an uplink of a channel T or S
// point, or a computed expression over other points.
type Measurement struct {
	Name string `json:"name" yaml:"name"`
	Kind Kind   `json:"kind,omitempty" yaml:"kind,omitempty"` // T (default) or S
	Unit string `json:"unit,omitempty" yaml:"unit,omitempty"`
	// Expr, when set, makes this a computed point: an expr-lang expression
	// over point ids. Inside a template, "self." names the instance's own
	// points (self.voltage * self.current); instance properties are
	// available as props.name.
	Expr string `json:"expr,omitempty" yaml:"expr,omitempty"`
}

// Action is a command a template accepts; it is routed to a channel C or A
// point. Min, Max and Step (engineering units) are checked before the
// channel point's own limits.
type Action struct {
	Name string   `json:"name" yaml:"name"`
	Kind Kind     `json:"kind,omitempty" yaml:"kind,omitempty"` // A (default) or C
	Unit string   `json:"unit,omitempty" yaml:"unit,omitempty"`
	Min  *float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max  *float64 `json:"max,omitempty" yaml:"max,omitempty"`
	Step float64  `json:"step,omitempty" yaml:"step,omitempty"`
}

// Instance is one device of the site: a named instance of a template with
// property values. Its points are named "instance.measurement" and
// "instance.action".
type Instance struct {
	Name       string             `json:"name" yaml:"name"`
	Template   string             `json:"template" yaml:"template"`
	Properties map[string]float64 `json:"properties,omitempty" yaml:"properties,omitempty"`
}

// Route connects a channel point to an instance point. An uplink route maps
// a channel T/S point (From) to an instance measurement (To); a downlink
// route maps an instance action (From) to a channel C/A point (To).
type Route struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
}

// Computed is a site-level computed point outside any template:
// Point = Expr, where Expr is an expr-lang expression over point ids.
type Computed struct {
	Point string `json:"point" yaml:"point"`
	Expr  string `json:"expr" yaml:"expr"`
	Unit  string `json:"unit,omitempty" yaml:"unit,omitempty"`
}
