package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voltage-ems/ems/model"
)

// ErrMalformed is wrapped by ParseCommand errors.
var ErrMalformed = errors.New("mqtt: malformed command")

// ParseCommand parses an inbound write payload. Two forms are accepted:
//
//	{"id":"c1","point":"pcs1.power_setpoint","value":50}
//	{"id":"c1","channel":"1001","type":"a","point":10001,"value":"50.000000"}
//
// The first names the point id directly. The second is the VoltageEMS
// netsrv form: channel (string or number), type c/a (or yk/yt, control,
// adjustment) and a numeric point, turned into the channel point id
// "1001.A.10001". value is a JSON number, a numeric string or a boolean
// (true = 1). Unknown fields, non-finite values, empty or over-long ids
// and points are errors wrapping ErrMalformed.
func ParseCommand(payload []byte) (model.Command, error) {
	var raw struct {
		ID      *string          `json:"id"`
		Point   *json.RawMessage `json:"point"`
		Value   *json.RawMessage `json:"value"`
		Channel *json.RawMessage `json:"channel"`
		Type    *string          `json:"type"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return model.Command{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return model.Command{}, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	var cmd model.Command
	if raw.ID != nil {
		if len(*raw.ID) > 128 || !printable(*raw.ID) {
			return cmd, fmt.Errorf("%w: id must be at most 128 printable characters", ErrMalformed)
		}
		cmd.ID = *raw.ID
	}
	if raw.Point == nil {
		return cmd, fmt.Errorf("%w: missing point", ErrMalformed)
	}
	if raw.Value == nil {
		return cmd, fmt.Errorf("%w: missing value", ErrMalformed)
	}
	v, err := parseValue(*raw.Value)
	if err != nil {
		return cmd, err
	}
	cmd.Value = v
	if raw.Channel == nil {
		if raw.Type != nil {
			return cmd, fmt.Errorf("%w: type needs channel (VoltageEMS form)", ErrMalformed)
		}
		var p string
		if err := json.Unmarshal(*raw.Point, &p); err != nil {
			return cmd, fmt.Errorf("%w: point must be a string", ErrMalformed)
		}
		if p == "" || len(p) > 256 || !printable(p) {
			return cmd, fmt.Errorf("%w: point must be 1-256 printable characters", ErrMalformed)
		}
		cmd.Point = p
		return cmd, nil
	}
	// VoltageEMS form.
	ch, err := stringOrNumber(*raw.Channel)
	if err != nil || ch == "" || len(ch) > 128 || !printable(ch) || strings.Contains(ch, ".") {
		return cmd, fmt.Errorf("%w: channel must be a non-empty name or number without dots", ErrMalformed)
	}
	if raw.Type == nil {
		return cmd, fmt.Errorf("%w: missing type (c or a)", ErrMalformed)
	}
	var k model.Kind
	switch strings.ToLower(*raw.Type) {
	case "c", "yk", "control":
		k = model.Control
	case "a", "yt", "adjustment":
		k = model.Adjustment
	default:
		return cmd, fmt.Errorf("%w: type %q, want c or a", ErrMalformed, *raw.Type)
	}
	ps, err := stringOrNumber(*raw.Point)
	if err != nil {
		return cmd, fmt.Errorf("%w: point must be a number", ErrMalformed)
	}
	n, err := strconv.ParseUint(ps, 10, 32)
	if err != nil {
		return cmd, fmt.Errorf("%w: point %q is not a point number", ErrMalformed, ps)
	}
	cmd.Point = model.ChannelPointID(ch, k, uint32(n))
	return cmd, nil
}

func parseValue(r json.RawMessage) (float64, error) {
	switch string(r) {
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	s, err := stringOrNumber(r)
	if err != nil {
		return 0, fmt.Errorf("%w: value must be a number", ErrMalformed)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: value %q is not a finite number", ErrMalformed, s)
	}
	return v, nil
}

// stringOrNumber returns a JSON string's content or a JSON number's text.
func stringOrNumber(r json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return s, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return "", err
	}
	return n.String(), nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// reply is the JSON published to the reply topic.
type reply struct {
	ID    string  `json:"id,omitempty"`
	Point string  `json:"point,omitempty"`
	Value float64 `json:"value"`
	OK    bool    `json:"ok"`
	Code  string  `json:"code,omitempty"`
	Error string  `json:"error,omitempty"`
}

// errorCode maps an executor error to a reply code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, model.ErrUnknownPoint):
		return "unknown_point"
	case errors.Is(err, model.ErrNotWritable):
		return "not_writable"
	case errors.Is(err, model.ErrOutOfRange):
		return "out_of_range"
	case errors.Is(err, model.ErrBadStep):
		return "bad_step"
	case errors.Is(err, model.ErrOverflow):
		return "overflow"
	case errors.Is(err, model.ErrInvalidValue):
		return "invalid_value"
	}
	return "failed"
}
