package model

import (
	"errors"
	"fmt"
	"strings"
)

// ConfigError locates one problem in a configuration file: the file, the
// 1-based line and column (0 when unknown), the field and the offending
// value. Every loader of this module reports bad input with it.
type ConfigError struct {
	File   string // file name as given to the loader
	Line   int    // 1-based line, 0 when unknown
	Column int    // 1-based column, 0 when unknown
	Field  string // column or key name, e.g. "scale"
	Value  string // the offending value, quoted in the message
	ID     string // the id of the object the field belongs to, when known (alarm id, rule id, point id)
	Msg    string // what is wrong
}

// Error formats the location as file:line:column followed by the field,
// value and message.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.ID != "" {
		fmt.Fprintf(&b, "%s: ", e.ID)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "%s", e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is a list of problems found in one load, reported together.
type ConfigErrors []*ConfigError

// Error joins the messages, one per line.
func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Err returns nil for an empty list and the list itself otherwise.
func (es ConfigErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// AsConfigErrors returns every *ConfigError inside err.
func AsConfigErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range m.Unwrap() {
				walk(x)
			}
			return
		}
		walk(errors.Unwrap(e))
	}
	walk(err)
	return out
}
