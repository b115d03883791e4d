package relay

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/voltage-ems/ems/model"
)

// Formatter turns samples and events into payload bytes. Append methods
// append to dst and return the extended slice, as strconv.Append* do.
// A Formatter is used from one goroutine at a time per pipeline, but the
// formatters of this package are safe for concurrent use.
type Formatter interface {
	AppendSample(dst []byte, s model.Sample) ([]byte, error)
	AppendEvent(dst []byte, e model.Event) ([]byte, error)
}

// JSON is the default formatter: one JSON object per sample or event.
//
//	{"point":"pcs1.p","value":12.5,"time":"2026-01-02T03:04:05.000000006Z","quality":"good"}
//	{"id":"e1","time":"...","kind":"alarm.raised","source":"alarm","point":"bms1.soc","severity":"high","message":"low","attrs":{"k":"v"}}
//
// A sample value that is NaN or infinite is written as null.
type JSON struct{}

// AppendSample implements Formatter.
func (JSON) AppendSample(dst []byte, s model.Sample) ([]byte, error) {
	dst = append(dst, `{"point":`...)
	dst = appendJSONString(dst, s.Point)
	dst = append(dst, `,"value":`...)
	dst = appendJSONFloat(dst, s.Value)
	dst = append(dst, `,"time":"`...)
	dst = appendTime(dst, s.Time)
	dst = append(dst, `","quality":"`...)
	dst = append(dst, s.Quality.String()...)
	dst = append(dst, `"}`...)
	return dst, nil
}

// AppendEvent implements Formatter.
func (JSON) AppendEvent(dst []byte, e model.Event) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.ID)
	dst = append(dst, `,"time":"`...)
	dst = appendTime(dst, e.Time)
	dst = append(dst, `","kind":`...)
	dst = appendJSONString(dst, string(e.Kind))
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, e.Source)
	if e.Point != "" {
		dst = append(dst, `,"point":`...)
		dst = appendJSONString(dst, e.Point)
	}
	dst = append(dst, `,"severity":`...)
	dst = appendJSONString(dst, e.Severity.String())
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.Message)
	if len(e.Attrs) > 0 {
		dst = append(dst, `,"attrs":{`...)
		for i, k := range sortedKeys(e.Attrs) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, e.Attrs[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	return dst, nil
}

// VoltageEMS formats samples as the original VoltageEMS netsrv "standard"
// JSON structure: channel, type (m, s, c, a), point, the value as a string
// with six decimals, and ts in RFC 3339 with milliseconds:
//
//	{"channel":"1001","type":"m","point":10001,"value":"220.123456","ts":"2025-07-23T10:00:00.000Z"}
//
// A channel point id ("1001.T.10001") gives channel, type and a numeric
// point; any other id ("pcs1.active_power") gives channel "pcs1", point
// "active_power" and no type. Quality other than good adds "quality".
// Events use the JSON formatter.
type VoltageEMS struct{}

// AppendSample implements Formatter.
func (VoltageEMS) AppendSample(dst []byte, s model.Sample) ([]byte, error) {
	dst = append(dst, `{"channel":`...)
	if ch, k, id, err := model.ParseChannelPointID(s.Point); err == nil {
		dst = appendJSONString(dst, ch)
		dst = append(dst, `,"type":"`...)
		dst = append(dst, vemsType(k)...)
		dst = append(dst, `","point":`...)
		dst = strconv.AppendUint(dst, uint64(id), 10)
	} else {
		dev, pt, ok := strings.Cut(s.Point, ".")
		if !ok {
			dev, pt = "", s.Point
		}
		dst = appendJSONString(dst, dev)
		dst = append(dst, `,"point":`...)
		dst = appendJSONString(dst, pt)
	}
	dst = append(dst, `,"value":`...)
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = strconv.AppendFloat(dst, s.Value, 'f', 6, 64)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"ts":"`...)
	dst = s.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, '"')
	if !s.Quality.IsGood() || s.Quality.Reason() != model.ReasonNone {
		dst = append(dst, `,"quality":"`...)
		dst = append(dst, s.Quality.String()...)
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// AppendEvent implements Formatter (as JSON does).
func (VoltageEMS) AppendEvent(dst []byte, e model.Event) ([]byte, error) {
	return JSON{}.AppendEvent(dst, e)
}

func vemsType(k model.Kind) string {
	switch k {
	case model.Telemetry:
		return "m"
	case model.Signal:
		return "s"
	case model.Control:
		return "c"
	case model.Adjustment:
		return "a"
	}
	return ""
}

// LineProtocol formats samples and events as InfluxDB line protocol, one
// line per item, without the trailing newline (adapters that send batches
// join them with '\n'):
//
//	ems,point=pcs1.p,quality=good value=12.5 1767323045000000006
//	ems_event,kind=alarm.raised,source=alarm,point=bms1.soc,severity=high id="e1",message="low" 1767323045000000006
//
// Non-finite values have no line-protocol form and fail with ErrFormat.
// Newlines in tag and field values are replaced by spaces, since line
// protocol cannot carry them.
type LineProtocol struct {
	Measurement      string // default "ems"
	EventMeasurement string // default "ems_event"
}

// AppendSample implements Formatter.
func (l LineProtocol) AppendSample(dst []byte, s model.Sample) ([]byte, error) {
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return dst, fmt.Errorf("%w: %s: value %v has no line-protocol form", ErrFormat, s.Point, s.Value)
	}
	if s.Point == "" {
		return dst, fmt.Errorf("%w: sample without a point", ErrFormat)
	}
	m := l.Measurement
	if m == "" {
		m = "ems"
	}
	dst = appendLPKey(dst, m, true)
	dst = append(dst, ",point="...)
	dst = appendLPKey(dst, s.Point, false)
	dst = append(dst, ",quality="...)
	dst = appendLPKey(dst, s.Quality.String(), false)
	dst = append(dst, " value="...)
	dst = strconv.AppendFloat(dst, s.Value, 'g', -1, 64)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, s.Time.UnixNano(), 10)
	return dst, nil
}

// AppendEvent implements Formatter.
func (l LineProtocol) AppendEvent(dst []byte, e model.Event) ([]byte, error) {
	m := l.EventMeasurement
	if m == "" {
		m = "ems_event"
	}
	dst = appendLPKey(dst, m, true)
	tag := func(k, v string) {
		if v == "" {
			return
		}
		dst = append(dst, ',')
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = appendLPKey(dst, v, false)
	}
	tag("kind", string(e.Kind))
	tag("source", e.Source)
	tag("point", e.Point)
	tag("severity", e.Severity.String())
	dst = append(dst, " id="...)
	dst = appendLPString(dst, e.ID)
	dst = append(dst, ",message="...)
	dst = appendLPString(dst, e.Message)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.Time.UnixNano(), 10)
	return dst, nil
}

// appendLPKey escapes a measurement (commas, spaces) or a tag value
// (commas, equals signs, spaces). Backslashes before those are escaped too
// so the text reads back exactly; newlines become spaces.
func appendLPKey(dst []byte, s string, measurement bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\n', '\r':
			dst = append(dst, '\\', ' ')
			continue
		case ',', ' ':
			dst = append(dst, '\\')
		case '=':
			if !measurement {
				dst = append(dst, '\\')
			}
		case '\\':
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

// appendLPString writes a quoted string field value.
func appendLPString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			dst = append(dst, '\\')
		case '\n', '\r':
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// Template formats with text/template. The sample template sees a
// model.Sample (.Point .Value .Time .Quality) and the event template a
// model.Event; both have the functions json (a JSON string literal of its
// argument), unixms, unixns and rfc3339.
type Template struct {
	sample, event *template.Template
}

// NewTemplate parses the two templates. An empty text uses the JSON
// formatter for that item. It returns an error wrapping ErrFormat naming
// the template that failed to parse.
func NewTemplate(sampleText, eventText string) (*Template, error) {
	t := &Template{}
	var err error
	if sampleText != "" {
		if t.sample, err = template.New("sample").Funcs(tmplFuncs).Option("missingkey=error").Parse(sampleText); err != nil {
			return nil, fmt.Errorf("%w: sample template: %v", ErrFormat, err)
		}
	}
	if eventText != "" {
		if t.event, err = template.New("event").Funcs(tmplFuncs).Option("missingkey=error").Parse(eventText); err != nil {
			return nil, fmt.Errorf("%w: event template: %v", ErrFormat, err)
		}
	}
	return t, nil
}

var tmplFuncs = template.FuncMap{
	"json": func(v any) string {
		switch x := v.(type) {
		case string:
			return string(appendJSONString(nil, x))
		case float64:
			return string(appendJSONFloat(nil, x))
		case fmt.Stringer:
			return string(appendJSONString(nil, x.String()))
		}
		return string(appendJSONString(nil, fmt.Sprint(v)))
	},
	"unixms":  func(t time.Time) int64 { return t.UnixMilli() },
	"unixns":  func(t time.Time) int64 { return t.UnixNano() },
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
}

// AppendSample implements Formatter.
func (t *Template) AppendSample(dst []byte, s model.Sample) ([]byte, error) {
	if t.sample == nil {
		return JSON{}.AppendSample(dst, s)
	}
	return execTemplate(dst, t.sample, s)
}

// AppendEvent implements Formatter.
func (t *Template) AppendEvent(dst []byte, e model.Event) ([]byte, error) {
	if t.event == nil {
		return JSON{}.AppendEvent(dst, e)
	}
	return execTemplate(dst, t.event, e)
}

func execTemplate(dst []byte, t *template.Template, data any) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	if err := t.Execute(b, data); err != nil {
		return dst, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return b.Bytes(), nil
}

func appendJSONFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(v)
	f := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		f = 'e'
	}
	return strconv.AppendFloat(dst, v, f, -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendTime appends t in UTC as time.RFC3339Nano does, faster for the
// years 0-9999 (others fall back to Time.AppendFormat).
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [9]byte
		for i := 8; i >= 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for n > 0 && frac[n-1] == '0' {
			n--
		}
		dst = append(dst, '.')
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}
