package historytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
)

// Opener returns a fresh, empty store for one subtest. The suite does not
// close it: register cleanup with t.Cleanup.
type Opener func(t *testing.T) history.Store

// Run runs every conformance test against stores from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, history.Store)
	}{
		{"RawRoundTrip", testRawRoundTrip},
		{"OrderAndGlobs", testOrderAndGlobs},
		{"Aggregations", testAggregations},
		{"DuplicatesLastWriteWins", testDuplicates},
		{"QualityStored", testQuality},
		{"InvalidQueries", testInvalidQueries},
		{"BatchNotRetained", testBatchNotRetained},
		{"ConcurrentWriteQuery", testConcurrent},
		{"HalfOpenRange", testHalfOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// base is recent, so stores with a retention keep the data.
func base() time.Time { return time.Now().UTC().Truncate(time.Hour).Add(-6 * time.Hour) }

func write(t *testing.T, s history.Store, batch ...model.Sample) {
	t.Helper()
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func query(t *testing.T, s history.Store, q history.Query) []history.Series {
	t.Helper()
	res, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return res
}

func testRawRoundTrip(t *testing.T, s history.Store) {
	b := base()
	vals := []float64{0, -1.5, 12345.678, math.Inf(1), math.NaN(), 1e-9, -0.1}
	var batch []model.Sample
	for i, v := range vals {
		batch = append(batch, model.Sample{Point: "rt.v", Value: v, Time: b.Add(time.Duration(i) * 1500 * time.Millisecond)})
	}
	write(t, s, batch...)
	res := query(t, s, history.Query{Points: []string{"rt.v"}, From: b, To: b.Add(time.Hour)})
	if len(res) != 1 || res[0].Point != "rt.v" || len(res[0].Points) != len(vals) {
		t.Fatalf("got %d series (%v), want 1 with %d points", len(res), res, len(vals))
	}
	for i, p := range res[0].Points {
		if !p.Time.Equal(batch[i].Time) || math.Float64bits(p.Value) != math.Float64bits(vals[i]) {
			t.Errorf("point %d = %v %v, want %v %v", i, p.Time, p.Value, batch[i].Time, vals[i])
		}
	}
}

func testOrderAndGlobs(t *testing.T, s history.Store) {
	b := base()
	// Written out of order, within one batch and across batches.
	write(t, s, model.Sample{Point: "site.b.p", Value: 2, Time: b.Add(2 * time.Second)}, model.Sample{Point: "site.a.p", Value: 1, Time: b.Add(time.Second)})
	write(t, s, model.Sample{Point: "site.a.p", Value: 0, Time: b}, model.Sample{Point: "other.p", Value: 9, Time: b})
	res := query(t, s, history.Query{Points: []string{"site.*.p"}, From: b, To: b.Add(time.Minute)})
	if len(res) != 2 || res[0].Point != "site.a.p" || res[1].Point != "site.b.p" {
		t.Fatalf("glob site.*.p: %v", res)
	}
	if len(res[0].Points) != 2 || res[0].Points[0].Value != 0 || res[0].Points[1].Value != 1 {
		t.Errorf("site.a.p not in time order: %v", res[0].Points)
	}
	if res := query(t, s, history.Query{Points: []string{"nomatch.*", "missing"}, From: b, To: b.Add(time.Minute)}); len(res) != 0 {
		t.Errorf("points matching nothing: %v, want empty", res)
	}
}

func testAggregations(t *testing.T, s history.Store) {
	b := base()
	var batch []model.Sample
	for i := range 120 { // two minutes at 1 s: values 0..119
		batch = append(batch, model.Sample{Point: "agg.v", Value: float64(i), Time: b.Add(time.Duration(i) * time.Second)})
	}
	write(t, s, batch...)
	want := map[history.Aggregation][2]float64{
		history.AggAvg:   {29.5, 89.5},
		history.AggMin:   {0, 60},
		history.AggMax:   {59, 119},
		history.AggSum:   {1770, 5370},
		history.AggCount: {60, 60},
		history.AggFirst: {0, 60},
		history.AggLast:  {59, 119},
	}
	for agg, w := range want {
		res := query(t, s, history.Query{Points: []string{"agg.v"}, From: b, To: b.Add(2 * time.Minute), Step: time.Minute, Agg: agg})
		if len(res) != 1 || len(res[0].Points) != 2 {
			t.Fatalf("%s: %v", agg, res)
		}
		for i, p := range res[0].Points {
			if p.Value != w[i] || !p.Time.Equal(b.Add(time.Duration(i)*time.Minute)) {
				t.Errorf("%s bucket %d = %v at %v, want %v at %v", agg, i, p.Value, p.Time, w[i], b.Add(time.Duration(i)*time.Minute))
			}
		}
	}
	// Empty buckets are omitted.
	res := query(t, s, history.Query{Points: []string{"agg.v"}, From: b.Add(-time.Hour), To: b.Add(time.Hour), Step: 30 * time.Minute, Agg: history.AggCount})
	if len(res) != 1 || len(res[0].Points) != 1 || res[0].Points[0].Value != 120 {
		t.Errorf("30 min count buckets: %v", res)
	}
}

func testDuplicates(t *testing.T, s history.Store) {
	b := base()
	write(t, s, model.Sample{Point: "dup", Value: 1, Time: b}, model.Sample{Point: "dup", Value: 2, Time: b})
	write(t, s, model.Sample{Point: "dup", Value: 3, Time: b})
	res := query(t, s, history.Query{Points: []string{"dup"}, From: b, To: b.Add(time.Second)})
	if len(res) != 1 || len(res[0].Points) != 1 || res[0].Points[0].Value != 3 {
		t.Fatalf("duplicates: %v, want the last write (3) only", res)
	}
}

func testQuality(t *testing.T, s history.Store) {
	b := base()
	q := []model.Quality{model.Good, model.Bad(model.ReasonCommFailure), model.Uncertain(model.ReasonStale)}
	for i, qq := range q {
		write(t, s, model.Sample{Point: "q", Value: float64(i), Time: b.Add(time.Duration(i) * time.Second), Quality: qq})
	}
	res := query(t, s, history.Query{Points: []string{"q"}, From: b, To: b.Add(time.Minute)})
	if len(res) != 1 || len(res[0].Points) != 3 {
		t.Fatalf("quality: %v", res)
	}
	for i, p := range res[0].Points {
		if p.Quality != q[i] {
			t.Errorf("sample %d quality %s, want %s", i, p.Quality, q[i])
		}
	}
}

func testInvalidQueries(t *testing.T, s history.Store) {
	b := base()
	for _, q := range []history.Query{
		{Points: []string{"x"}, From: b.Add(time.Second), To: b},
		{Points: []string{"x"}, From: b, To: b.Add(time.Hour), Step: 0, Agg: history.AggAvg},
		{Points: []string{"x"}, From: b, To: b.Add(time.Hour), Step: -time.Second, Agg: history.AggMax},
		{Points: []string{"x"}, From: b, To: b.Add(time.Hour), Step: time.Second, Agg: history.Aggregation(200)},
	} {
		if _, err := s.Query(context.Background(), q); !errors.Is(err, history.ErrInvalidQuery) {
			t.Errorf("Query(%+v) = %v, want ErrInvalidQuery", q, err)
		}
	}
}

func testBatchNotRetained(t *testing.T, s history.Store) {
	b := base()
	batch := []model.Sample{{Point: "keep", Value: 1, Time: b}}
	write(t, s, batch...)
	batch[0] = model.Sample{Point: "keep", Value: 666, Time: b}
	res := query(t, s, history.Query{Points: []string{"keep"}, From: b, To: b.Add(time.Second)})
	if len(res) != 1 || res[0].Points[0].Value != 1 {
		t.Fatalf("store kept a reference to the batch: %v", res)
	}
}

func testConcurrent(t *testing.T, s history.Store) {
	b := base()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			batch := make([]model.Sample, 10)
			for i := range 50 {
				for j := range batch {
					batch[j] = model.Sample{Point: fmt.Sprintf("cc.%d", w), Value: float64(i*10 + j), Time: b.Add(time.Duration(i*10+j) * time.Second)}
				}
				if err := s.Write(context.Background(), batch); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Query(context.Background(), history.Query{Points: []string{"cc.*"}, From: b, To: b.Add(time.Hour), Step: time.Minute, Agg: history.AggAvg}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	res := query(t, s, history.Query{Points: []string{"cc.*"}, From: b, To: b.Add(time.Hour), Step: time.Hour, Agg: history.AggCount})
	if len(res) != 4 {
		t.Fatalf("%d series, want 4", len(res))
	}
	for _, r := range res {
		if r.Points[0].Value != 500 {
			t.Errorf("%s: count %v, want 500", r.Point, r.Points[0].Value)
		}
	}
}

func testHalfOpen(t *testing.T, s history.Store) {
	b := base()
	write(t, s, model.Sample{Point: "ho", Value: 1, Time: b}, model.Sample{Point: "ho", Value: 2, Time: b.Add(time.Minute)})
	res := query(t, s, history.Query{Points: []string{"ho"}, From: b, To: b.Add(time.Minute)})
	if len(res) != 1 || len(res[0].Points) != 1 || res[0].Points[0].Value != 1 {
		t.Fatalf("[from, to) must include from and exclude to: %v", res)
	}
}
