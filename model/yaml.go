package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// YAMLErrors converts an error of go.yaml.in/yaml/v3 (a syntax error, or a
// *yaml.TypeError listing every bad value of a document) into
// ConfigErrors: one per message, with the line taken from yaml's
// "line N: ..." prefix and, for unknown keys under KnownFields, the key as
// Field and "unknown field" as Msg. file names the source.
func YAMLErrors(file string, err error) ConfigErrors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	errs := make(ConfigErrors, 0, len(msgs))
	for _, m := range msgs {
		errs = append(errs, yamlMsg(file, m))
	}
	return errs
}

// yamlMsg parses "yaml: line 3: field x not found in type ..." into a ConfigError.
func yamlMsg(file, msg string) *ConfigError {
	msg = strings.TrimPrefix(msg, "yaml: ")
	ce := &ConfigError{File: file, Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if l, err := strconv.Atoi(n); err == nil {
				ce.Line, ce.Msg = l, strings.TrimSpace(after)
			}
		}
	}
	if i := strings.Index(ce.Msg, "field "); i >= 0 && strings.Contains(ce.Msg, "not found in type") {
		if f := strings.Fields(ce.Msg[i+len("field "):]); len(f) > 0 {
			ce.Field, ce.Msg = f[0], "unknown field"
		}
	}
	return ce
}

// Duration is a time.Duration written as "5s", "10m" in YAML and JSON.
// A bad value in YAML is reported with its line as a *yaml.TypeError, so
// a decoder lists every bad value of a document (see YAMLErrors).
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 5s, 10m)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String formats the duration as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration string, reporting the line of a bad one.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.UnmarshalText([]byte(n.Value)); err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q (want e.g. 5s, 10m)", n.Line, n.Value)}}
	}
	return nil
}
