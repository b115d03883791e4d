package history

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Aggregation is how samples are combined in each step bucket.
type Aggregation uint8

// The aggregations. Raw returns the stored samples unchanged (Step ignored).
// The others skip samples of bad quality and NaN values; a bucket without a
// usable sample is omitted from the result.
const (
	AggRaw Aggregation = iota
	AggAvg
	AggMin
	AggMax
	AggSum
	AggCount
	AggFirst
	AggLast
)

var aggNames = [...]string{"raw", "avg", "min", "max", "sum", "count", "first", "last"}

// String returns the lower-case name ("raw", "avg", ...).
func (a Aggregation) String() string {
	if int(a) < len(aggNames) {
		return aggNames[a]
	}
	return fmt.Sprintf("aggregation(%d)", uint8(a))
}

// ParseAggregation parses what String returns ("" means raw).
func ParseAggregation(s string) (Aggregation, error) {
	if s == "" {
		return AggRaw, nil
	}
	for i, n := range aggNames {
		if strings.EqualFold(s, n) {
			return Aggregation(i), nil
		}
	}
	return 0, &QueryError{Field: "aggregation", Value: s, Reason: "must be one of " + strings.Join(aggNames[:], ", ")}
}

// MarshalText implements encoding.TextMarshaler.
func (a Aggregation) MarshalText() ([]byte, error) {
	if int(a) >= len(aggNames) {
		return nil, &QueryError{Field: "aggregation", Value: a.String(), Reason: "unknown aggregation"}
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Aggregation) UnmarshalText(b []byte) error {
	v, err := ParseAggregation(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Query selects samples. The time range is half-open: From <= t < To.
type Query struct {
	// Points are point IDs or path.Match globs ("pcs*.active_power").
	// A glob or ID that matches nothing contributes nothing (no error).
	Points []string  `json:"points"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Step is the bucket width for aggregations; buckets are aligned to
	// multiples of Step since the Unix epoch. Must be > 0 unless Agg is raw
	// (ignored then). Sub-millisecond parts are invalid.
	Step time.Duration `json:"step"`
	Agg  Aggregation   `json:"agg"`
}

// Validate checks the query and returns a *QueryError.
func (q Query) Validate() error {
	if len(q.Points) == 0 {
		return &QueryError{Field: "points", Value: "", Reason: "at least one point ID or glob is required"}
	}
	for _, p := range q.Points {
		if p == "" {
			return &QueryError{Field: "points", Value: p, Reason: "empty point ID"}
		}
		if _, err := path.Match(p, ""); err != nil {
			return &QueryError{Field: "points", Value: p, Reason: "malformed glob: " + err.Error()}
		}
	}
	if q.From.After(q.To) {
		return &QueryError{Field: "from", Value: q.From.Format(time.RFC3339Nano), Reason: "after to " + q.To.Format(time.RFC3339Nano)}
	}
	if int(q.Agg) >= len(aggNames) {
		return &QueryError{Field: "aggregation", Value: q.Agg.String(), Reason: "unknown aggregation"}
	}
	if q.Step < 0 || (q.Step == 0 && q.Agg != AggRaw) {
		return &QueryError{Field: "step", Value: q.Step.String(), Reason: "must be > 0 for aggregation " + q.Agg.String()}
	}
	if q.Agg != AggRaw && q.Step%time.Millisecond != 0 {
		return &QueryError{Field: "step", Value: q.Step.String(), Reason: "must be a whole number of milliseconds"}
	}
	return nil
}

// key is the normalized form of a valid query (cache and singleflight key).
func (q Query) key() string {
	pts := slices.Clone(q.Points)
	slices.Sort(pts)
	pts = slices.Compact(pts)
	step := q.Step
	if q.Agg == AggRaw {
		step = 0
	}
	return fmt.Sprintf("%s|%d|%d|%d|%d", strings.Join(pts, "\x00"), q.From.UnixMilli(), q.To.UnixMilli(), step.Milliseconds(), q.Agg)
}

// Series is the result for one point, samples in time order.
type Series struct {
	Point  string  `json:"point"`
	Points []Point `json:"points"`
}

// Point is one stored sample or one aggregated bucket (Time = bucket start).
type Point struct {
	Time    time.Time
	Value   float64
	Quality model.Quality // stored quality (raw); Good for aggregates
}

type pointJSON struct {
	Time    time.Time     `json:"time"`
	Value   any           `json:"value"`
	Quality model.Quality `json:"quality"`
}

// MarshalJSON encodes the point; NaN and ±Inf, which JSON numbers cannot
// hold, become the strings "NaN", "+Inf" and "-Inf".
func (p Point) MarshalJSON() ([]byte, error) {
	var v any = p.Value
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		v = strconv.FormatFloat(p.Value, 'g', -1, 64)
	}
	return json.Marshal(pointJSON{Time: p.Time, Value: v, Quality: p.Quality})
}

// UnmarshalJSON accepts what MarshalJSON writes.
func (p *Point) UnmarshalJSON(b []byte) error {
	var raw struct {
		Time    time.Time       `json:"time"`
		Value   json.RawMessage `json:"value"`
		Quality model.Quality   `json:"quality"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var f float64
	if err := json.Unmarshal(raw.Value, &f); err != nil {
		var s string
		if json.Unmarshal(raw.Value, &s) != nil {
			return fmt.Errorf("history: point value %s is neither a number nor NaN/±Inf", raw.Value)
		}
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("history: point value %q: %w", s, err)
		}
	}
	p.Time, p.Value, p.Quality = raw.Time, f, raw.Quality
	return nil
}

func isGlob(p string) bool { return strings.ContainsAny(p, "*?[\\") }
