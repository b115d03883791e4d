package history

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

func TestSeriesJSONRoundTrip(t *testing.T) {
	in := []Series{{Point: "p", Points: []Point{
		{Time: t0, Value: 1.5},
		{Time: t0.Add(time.Second), Value: math.NaN(), Quality: model.Bad(model.ReasonCommFailure)},
		{Time: t0.Add(2 * time.Second), Value: math.Inf(-1)},
	}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []Series
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	for i, p := range out[0].Points {
		w := in[0].Points[i]
		if !p.Time.Equal(w.Time) || math.Float64bits(p.Value) != math.Float64bits(w.Value) || p.Quality != w.Quality {
			t.Fatalf("point %d: %+v, want %+v (json %s)", i, p, w, b)
		}
	}
	var a Aggregation
	if err := json.Unmarshal([]byte(`"max"`), &a); err != nil || a != AggMax {
		t.Fatalf("aggregation from JSON: %v %v", a, err)
	}
	if err := json.Unmarshal([]byte(`"p99"`), &a); err == nil {
		t.Fatal("unknown aggregation accepted from JSON")
	}
	var p Point
	if err := json.Unmarshal([]byte(`{"time":"2026-01-01T00:00:00Z","value":"lots"}`), &p); err == nil {
		t.Fatal("non-numeric value accepted")
	}
}
