package relay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
)

func nan() float64 { return math.NaN() }

func TestJSONFormatter(t *testing.T) {
	s := model.Sample{Point: "ch1.T.7", Value: 1.5e-9, Time: t0.Add(6), Quality: model.Bad(model.ReasonCommFailure)}
	b, err := relay.JSON{}.AppendSample(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"point":"ch1.T.7","value":1.5e-09,"time":"2026-01-02T03:04:05.000000006Z","quality":"bad:comm_failure"}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	var back model.Sample
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	e := model.Event{ID: "e\"1", Kind: model.EventAlarmRaised, Source: "alarm", Point: "bms1.soc", Severity: model.SeverityHigh,
		Message: "low\n<soc>", Attrs: map[string]string{"z": "1", "a": "\x01"}, Time: t0}
	b, _ = relay.JSON{}.AppendEvent(nil, e)
	var eb model.Event
	if err := json.Unmarshal(b, &eb); err != nil || eb.ID != e.ID || eb.Message != e.Message || eb.Attrs["a"] != "\x01" || eb.Severity != e.Severity {
		t.Fatalf("event round trip of %s: %+v %v", b, eb, err)
	}
	if !bytes.Contains(b, []byte(`"attrs":{"a":"\u0001","z":"1"}`)) {
		t.Fatalf("attrs not sorted/escaped: %s", b)
	}
}

func TestVoltageEMSFormatter(t *testing.T) {
	cases := []struct {
		s    model.Sample
		want string
	}{
		{model.Sample{Point: "1001.T.10001", Value: 220.1234564, Time: t0}, `{"channel":"1001","type":"m","point":10001,"value":"220.123456","ts":"2026-01-02T03:04:05.000Z"}`},
		{model.Sample{Point: "pcs1.active_power", Value: -15.5, Time: t0, Quality: model.Uncertain(model.ReasonStale)}, `{"channel":"pcs1","point":"active_power","value":"-15.500000","ts":"2026-01-02T03:04:05.000Z","quality":"uncertain:stale"}`},
		{model.Sample{Point: "ch2.S.3", Value: 1, Time: t0}, `{"channel":"ch2","type":"s","point":3,"value":"1.000000","ts":"2026-01-02T03:04:05.000Z"}`},
	}
	for _, c := range cases {
		b, err := relay.VoltageEMS{}.AppendSample(nil, c.s)
		if err != nil || string(b) != c.want {
			t.Errorf("%v: got %s (%v)\nwant %s", c.s, b, err, c.want)
		}
	}
}

func TestLineProtocolFormatter(t *testing.T) {
	b, err := relay.LineProtocol{}.AppendSample(nil, model.Sample{Point: "pcs 1,a=b", Value: 12.5, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	want := `ems,point=pcs\ 1\,a\=b,quality=good value=12.5 ` + strconv.FormatInt(t0.UnixNano(), 10)
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	if _, err := (relay.LineProtocol{}).AppendSample(nil, model.Sample{Point: "p", Value: math.Inf(1)}); !errors.Is(err, relay.ErrFormat) {
		t.Fatalf("Inf: %v, want ErrFormat", err)
	}
	b, _ = relay.LineProtocol{Measurement: "m"}.AppendEvent(nil, model.Event{ID: "1", Kind: model.EventAlarmRaised, Source: "alarm", Message: `say "hi"`, Time: t0})
	want = `ems_event,kind=alarm.raised,source=alarm,severity=info id="1",message="say \"hi\"" ` + strconv.FormatInt(t0.UnixNano(), 10)
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

func TestTemplateFormatter(t *testing.T) {
	f, err := relay.NewTemplate(`{{.Point}} {{json .Value}} {{unixms .Time}} {{.Quality}}`, `{{.Kind}}:{{json .Message}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.AppendSample([]byte("x:"), model.Sample{Point: "a.b", Value: 2, Time: t0})
	if want := "x:a.b 2 " + strconv.FormatInt(t0.UnixMilli(), 10) + " good"; string(b) != want {
		t.Fatalf("got %q want %q", b, want)
	}
	b, _ = f.AppendEvent(nil, model.Event{Kind: model.EventRuleFired, Message: "q\""})
	if string(b) != `rule.fired:"q\""` {
		t.Fatalf("got %s", b)
	}
	if _, err := relay.NewTemplate(`{{.Point`, ""); !errors.Is(err, relay.ErrFormat) || !strings.Contains(err.Error(), "sample template") {
		t.Fatalf("bad template: %v", err)
	}
	f, _ = relay.NewTemplate(`{{.Nope}}`, "")
	if _, err := f.AppendSample(nil, model.Sample{}); !errors.Is(err, relay.ErrFormat) {
		t.Fatalf("unknown field: %v, want ErrFormat", err)
	}
}

func FuzzJSONFormatter(f *testing.F) {
	f.Add("pcs1.p", 1.5, int64(0), uint8(0), "msg", "k", "v")
	f.Add("p", 0.0, int64(1767323045123456000), uint8(0), "", "", "")
	f.Add("p", 0.0, int64(math.MinInt64), uint8(0), "", "", "")
	f.Add("\xff\u2028\"\\", math.NaN(), int64(-1), uint8(0x81), "\x00\n", "", "\t")
	f.Fuzz(func(t *testing.T, point string, v float64, ns int64, q uint8, msg, k, av string) {
		tm := time.Unix(0, ns).UTC()
		b, err := relay.JSON{}.AppendSample(nil, model.Sample{Point: point, Value: v, Time: tm, Quality: model.Quality(q)})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		if strings.ToValidUTF8(point, "\ufffd") == point && m["point"] != point {
			t.Fatalf("point %q came back as %q", point, m["point"])
		}
		if !math.IsNaN(v) && !math.IsInf(v, 0) && m["value"] != v {
			t.Fatalf("value %v came back as %v", v, m["value"])
		}
		if want := tm.Format(time.RFC3339Nano); m["time"] != want {
			t.Fatalf("time %s written as %v", want, m["time"])
		}
		b, _ = relay.JSON{}.AppendEvent(nil, model.Event{ID: point, Message: msg, Attrs: map[string]string{k: av}, Time: tm})
		if !json.Valid(b) {
			t.Fatalf("invalid event JSON %q", b)
		}
		b, _ = relay.VoltageEMS{}.AppendSample(nil, model.Sample{Point: point, Value: v, Time: tm, Quality: model.Quality(q)})
		if !json.Valid(b) {
			t.Fatalf("invalid VoltageEMS JSON %q", b)
		}
	})
}

// parseLP splits one line-protocol line into measurement, tags, fields and
// timestamp, undoing the escapes (a minimal reader for the test).
func parseLP(line string) (meas string, tags map[string]string, fields string, ts string, ok bool) {
	var parts []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(c)
			cur.WriteByte(line[i+1])
			i++
		case c == '"' && len(parts) == 1: // quotes matter in the field set only
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == ' ' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	if len(parts) != 3 {
		return "", nil, "", "", false
	}
	unesc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	split := func(s string, sep byte) []string {
		var out []string
		start := 0
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == sep {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
		return append(out, s[start:])
	}
	kv := split(parts[0], ',')
	tags = map[string]string{}
	for _, t := range kv[1:] {
		p := split(t, '=')
		if len(p) != 2 {
			return "", nil, "", "", false
		}
		tags[unesc(p[0])] = unesc(p[1])
	}
	return unesc(kv[0]), tags, parts[1], parts[2], true
}

func FuzzLineProtocolFormatter(f *testing.F) {
	f.Add("pcs1.p", 1.5, int64(1))
	f.Add(`a\ ,=b`, math.Copysign(0, -1), int64(-5))
	f.Add("x\ny", 1e300, int64(0))
	f.Fuzz(func(t *testing.T, point string, v float64, ns int64) {
		s := model.Sample{Point: point, Value: v, Time: time.Unix(0, ns)}
		b, err := relay.LineProtocol{}.AppendSample(nil, s)
		if math.IsNaN(v) || math.IsInf(v, 0) || point == "" {
			if !errors.Is(err, relay.ErrFormat) {
				t.Fatalf("value %v point %q: err %v, want ErrFormat", v, point, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("line %q contains a newline", b)
		}
		meas, tags, fields, ts, ok := parseLP(string(b))
		if !ok || meas != "ems" {
			t.Fatalf("cannot parse %q", b)
		}
		wantPoint := strings.NewReplacer("\n", " ", "\r", " ").Replace(point)
		if tags["point"] != wantPoint {
			t.Fatalf("point %q came back as %q from %q", wantPoint, tags["point"], b)
		}
		fv, err := strconv.ParseFloat(strings.TrimPrefix(fields, "value="), 64)
		if err != nil || fv != v {
			t.Fatalf("value %v came back as %q", v, fields)
		}
		if ts != strconv.FormatInt(ns, 10) {
			t.Fatalf("timestamp %d came back as %s", ns, ts)
		}
	})
}

func FuzzTemplateFormatter(f *testing.F) {
	f.Add(`{{.Point}}={{.Value}}`, "p", 1.0)
	f.Add(`{{json .Point}}{{rfc3339 .Time}}`, "\"", -1.0)
	f.Add(`{{range .}}`, "", 0.0)
	f.Fuzz(func(t *testing.T, text, point string, v float64) {
		tm, err := relay.NewTemplate(text, text)
		if err != nil {
			if !errors.Is(err, relay.ErrFormat) {
				t.Fatalf("parse error %v does not wrap ErrFormat", err)
			}
			return
		}
		prefix := []byte("keep")
		b, err := tm.AppendSample(prefix, model.Sample{Point: point, Value: v})
		if err != nil && !errors.Is(err, relay.ErrFormat) {
			t.Fatalf("exec error %v does not wrap ErrFormat", err)
		}
		if !bytes.HasPrefix(b, []byte("keep")) {
			t.Fatalf("dst prefix lost: %q", b)
		}
		_, _ = tm.AppendEvent(nil, model.Event{Point: point})
	})
}
