package model

import (
	"encoding/json"
	"testing"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{
		"T": Telemetry, "yc": Telemetry, "Telemetry": Telemetry, " measurement ": Telemetry,
		"s": Signal, "YX": Signal, "SIGNAL": Signal,
		"C": Control, "yk": Control, "control": Control,
		"a": Adjustment, "YT": Adjustment, "Adjustment": Adjustment, "setpoint": Adjustment,
	} {
		got, err := ParseKind(in)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "TT", "yy"} {
		if _, err := ParseKind(in); err == nil {
			t.Errorf("ParseKind(%q) accepted", in)
		}
	}
	if !Control.Writable() || !Adjustment.Writable() || Telemetry.Writable() || Signal.Writable() {
		t.Error("Writable wrong")
	}
}

func TestQualityRoundTrip(t *testing.T) {
	for _, q := range []Quality{Good, Bad(ReasonCommFailure), Uncertain(ReasonStale), Bad(ReasonOverflow), Uncertain(ReasonSubstituted), Bad(ReasonNone)} {
		b, err := json.Marshal(Sample{Point: "p", Quality: q})
		if err != nil {
			t.Fatal(err)
		}
		var s Sample
		if err := json.Unmarshal(b, &s); err != nil || s.Quality != q {
			t.Errorf("%v -> %s -> %v, %v", q, b, s.Quality, err)
		}
	}
	if q := Bad(ReasonCommFailure); q.IsGood() || !q.IsBad() || q.Reason() != ReasonCommFailure || q.String() != "bad:comm_failure" {
		t.Errorf("Bad(comm) = %v", q)
	}
	for _, bad := range []string{"great", "bad:typo"} {
		if _, err := ParseQuality(bad); err == nil {
			t.Errorf("ParseQuality(%q) accepted", bad)
		}
	}
}

func TestParseDataType(t *testing.T) {
	for in, want := range map[string]DataType{"bool": Bool, "U16": Uint16, "int16": Int16, "dword": Uint32, "float": Float32, "double": Float64, "int64": Int64, "u64": Uint64, "string": String} {
		if got, err := ParseDataType(in); err != nil || got != want {
			t.Errorf("ParseDataType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDataType("float128"); err == nil {
		t.Error("accepted float128")
	}
	if Uint32.Registers() != 2 || Float64.Registers() != 4 || Int16.Registers() != 1 {
		t.Error("Registers wrong")
	}
}

func TestChannelPointID(t *testing.T) {
	id := ChannelPointID("pcs_1", Adjustment, 42)
	ch, k, n, err := ParseChannelPointID(id)
	if id != "pcs_1.A.42" || err != nil || ch != "pcs_1" || k != Adjustment || n != 42 {
		t.Errorf("%q -> %q %v %d %v", id, ch, k, n, err)
	}
	for _, bad := range []string{"x", "a.b", "ch.X.1", "ch.T.-1", ".T.1", "ch.YC.1"} {
		if _, _, _, err := ParseChannelPointID(bad); err == nil {
			t.Errorf("ParseChannelPointID(%q) accepted", bad)
		}
	}
}

// FuzzParseScalars: the small parsers never panic, and what they accept
// formats back to a form they accept again with the same result.
func FuzzParseScalars(f *testing.F) {
	for _, s := range []string{"T", "yc", "bad:comm_failure", "uncertain:stale", "uint16", "float", "critical", "ch1.A.3", "a.b.c.T.7", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParseKind(s); err == nil {
			if k2, err := ParseKind(k.String()); err != nil || k2 != k {
				t.Errorf("kind %q -> %v -> %v, %v", s, k, k2, err)
			}
		}
		if q, err := ParseQuality(s); err == nil {
			if q2, err := ParseQuality(q.String()); err != nil || q2 != q {
				t.Errorf("quality %q -> %v -> %v, %v", s, q, q2, err)
			}
		}
		if d, err := ParseDataType(s); err == nil {
			if d2, err := ParseDataType(d.String()); err != nil || d2 != d {
				t.Errorf("data type %q -> %v -> %v, %v", s, d, d2, err)
			}
		}
		if v, err := ParseSeverity(s); err == nil {
			if v2, err := ParseSeverity(v.String()); err != nil || v2 != v {
				t.Errorf("severity %q -> %v -> %v, %v", s, v, v2, err)
			}
		}
		if ch, k, id, err := ParseChannelPointID(s); err == nil {
			if got := ChannelPointID(ch, k, id); got != s {
				c2, k2, id2, err := ParseChannelPointID(got)
				if err != nil || c2 != ch || k2 != k || id2 != id {
					t.Errorf("channel id %q -> %q", s, got)
				}
			}
		}
	})
}
