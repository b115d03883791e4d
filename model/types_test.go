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
