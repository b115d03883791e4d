package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

// t0 is recent so that the default retention keeps the test data.
var t0 = time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)

func openT(t testing.TB, dir string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustWrite(t testing.TB, db *DB, batch ...model.Sample) {
	t.Helper()
	if err := db.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func raw(t testing.TB, db *DB, point string, from, to time.Time) []Point {
	t.Helper()
	res, err := db.Query(context.Background(), Query{Points: []string{point}, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		return nil
	}
	if len(res) != 1 || res[0].Point != point {
		t.Fatalf("query %s: got %d series", point, len(res))
	}
	return res[0].Points
}

// gen writes n samples of a few series at 1 s, returning them.
func gen(rng *rand.Rand, names []string, start time.Time, n int) []model.Sample {
	var out []model.Sample
	for i := range n {
		for j, name := range names {
			v := float64(rng.IntN(2001)-1000) / 10
			var q model.Quality
			if rng.IntN(50) == 0 {
				q = model.Bad(model.ReasonCommFailure)
			}
			if j == 2 && i%97 == 5 {
				v = math.NaN()
			}
			out = append(out, model.Sample{Point: name, Value: v, Time: start.Add(time.Duration(i) * time.Second), Quality: q})
		}
	}
	return out
}

func TestWriteQueryRoundTripMemoryAndDisk(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		t.Run(fmt.Sprintf("disk=%v", dir != ""), func(t *testing.T) {
			db := openT(t, dir, WithOutOfOrderWindow(time.Minute), WithMaxChunkSamples(100))
			rng := rand.New(rand.NewPCG(1, 1))
			names := []string{"pcs1.p", "pcs2.p", "bms.soc"}
			all := gen(rng, names, t0, 2000)
			for i := 0; i < len(all); i += 300 {
				mustWrite(t, db, all[i:min(i+300, len(all))]...)
				if i%900 == 0 {
					if err := db.Maintain(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			check := func(db *DB) {
				t.Helper()
				for _, name := range names {
					pts := raw(t, db, name, t0, t0.Add(time.Hour))
					var want []model.Sample
					for _, s := range all {
						if s.Point == name {
							want = append(want, s)
						}
					}
					if len(pts) != len(want) {
						t.Fatalf("%s: %d samples, want %d", name, len(pts), len(want))
					}
					for i, p := range pts {
						w := want[i]
						if !p.Time.Equal(w.Time) || math.Float64bits(p.Value) != math.Float64bits(w.Value) || p.Quality != w.Quality {
							t.Fatalf("%s[%d] = %v %v %v, want %v", name, i, p.Time, p.Value, p.Quality, w)
						}
					}
				}
			}
			check(db)
			if st := db.Stats(); st.Files == 0 || st.BlocksDelta == 0 {
				t.Errorf("expected delta blocks on disk/memory files, stats %+v", st)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if dir != "" {
				db = openT(t, dir)
				check(db)
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// bruteAgg computes what an aggregated query must return from raw samples.
func bruteAgg(samples []model.Sample, point string, from, to time.Time, step time.Duration, agg Aggregation) []Point {
	f, tt, st := from.UnixMilli(), to.UnixMilli(), step.Milliseconds()
	accs := map[int64]*acc{}
	var keys []int64
	for _, s := range samples {
		ms := s.Time.UnixMilli()
		if s.Point != point || ms < f || ms >= tt || s.Quality.IsBad() || math.IsNaN(s.Value) {
			continue
		}
		b := floorDiv(ms, st) * st
		if accs[b] == nil {
			accs[b] = &acc{}
			keys = append(keys, b)
		}
		accs[b].add(s.Value)
	}
	var out []Point
	for _, k := range keys {
		out = append(out, Point{Time: time.UnixMilli(k), Value: accs[k].value(agg)})
	}
	return out
}

func closeEnough(a, b float64, agg Aggregation) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if agg == AggSum || agg == AggAvg {
		return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
	}
	return a == b
}

func TestAggregationsMatchRawAcrossTiers(t *testing.T) {
	db := openT(t, "", WithOutOfOrderWindow(30*time.Second), WithTiers(Tier{Resolution: time.Minute}, Tier{Resolution: time.Hour}), WithCacheSize(0))
	defer db.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	all := gen(rng, []string{"a", "b", "c"}, t0.Add(-17*time.Second), 3*3600+100)
	for i := 0; i < len(all); i += 500 {
		mustWrite(t, db, all[i:min(i+500, len(all))]...)
		if i%3000 == 0 {
			if err := db.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ranges := []struct {
		from, to time.Time
		step     time.Duration
	}{
		{t0, t0.Add(3 * time.Hour), time.Hour},                                       // whole 1 h buckets
		{t0.Add(-17 * time.Second), t0.Add(3*time.Hour + 50*time.Second), time.Hour}, // ragged edges
		{t0.Add(90 * time.Second), t0.Add(2*time.Hour + 7*time.Second), 5 * time.Minute},
		{t0.Add(13 * time.Second), t0.Add(100 * time.Second), 7 * time.Second},     // no tier
		{t0.Add(2*time.Hour + 50*time.Minute), t0.Add(4 * time.Hour), time.Minute}, // head included
	}
	// Raw queries over random sub-ranges cut across chunks and the head.
	rr := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		from := t0.Add(time.Duration(rr.IntN(3*3600+200)-30) * time.Second).Add(time.Duration(rr.IntN(1000)) * time.Millisecond)
		to := from.Add(time.Duration(rr.IntN(7200)) * time.Second)
		pts := raw(t, db, "b", from, to)
		var want []model.Sample
		for _, s := range all {
			if s.Point == "b" && !s.Time.Before(from) && s.Time.Before(to) {
				want = append(want, s)
			}
		}
		if len(pts) != len(want) {
			t.Fatalf("raw %v..%v: %d samples, want %d", from, to, len(pts), len(want))
		}
		for i := range want {
			if !pts[i].Time.Equal(want[i].Time) || math.Float64bits(pts[i].Value) != math.Float64bits(want[i].Value) {
				t.Fatalf("raw %v..%v [%d]: %v, want %v", from, to, i, pts[i], want[i])
			}
		}
	}
	steps := []time.Duration{7 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute, 5 * time.Minute, time.Hour, 2 * time.Hour}
	for range 30 {
		from := t0.Add(time.Duration(rr.IntN(3*3600+200)-60) * time.Second)
		ranges = append(ranges, struct {
			from, to time.Time
			step     time.Duration
		}{from, from.Add(time.Duration(rr.IntN(4*3600)) * time.Second), steps[rr.IntN(len(steps))]})
	}
	for _, r := range ranges {
		for agg := AggAvg; agg <= AggLast; agg++ {
			for _, p := range []string{"a", "c"} {
				res, err := db.Query(context.Background(), Query{Points: []string{p}, From: r.from, To: r.to, Step: r.step, Agg: agg})
				if err != nil {
					t.Fatal(err)
				}
				want := bruteAgg(all, p, r.from, r.to, r.step, agg)
				var got []Point
				if len(res) == 1 {
					got = res[0].Points
				}
				if len(got) != len(want) {
					t.Fatalf("%s %s %v..%v/%s: %d buckets, want %d", p, agg, r.from, r.to, r.step, len(got), len(want))
				}
				for i := range got {
					if !got[i].Time.Equal(want[i].Time) || !closeEnough(got[i].Value, want[i].Value, agg) {
						t.Fatalf("%s %s %v/%s bucket %d: %v=%v, want %v=%v", p, agg, r.from, r.step, i, got[i].Time, got[i].Value, want[i].Time, want[i].Value)
					}
				}
			}
		}
	}
}

func TestQueryValidationAndLimits(t *testing.T) {
	db := openT(t, "", WithLimits(2, 50))
	defer db.Close()
	for i := range 3 {
		var b []model.Sample
		for j := range 40 {
			b = append(b, model.Sample{Point: fmt.Sprintf("p%d.v", i), Value: float64(j), Time: t0.Add(time.Duration(j) * time.Second)})
		}
		mustWrite(t, db, b...)
	}
	ctx := context.Background()
	bad := []struct {
		q     Query
		field string
	}{
		{Query{Points: []string{"p0.v"}, From: t0.Add(time.Second), To: t0}, "from"},
		{Query{Points: []string{"p0.v"}, From: t0, To: t0.Add(time.Hour), Agg: AggAvg}, "step"},
		{Query{Points: []string{"p0.v"}, From: t0, To: t0.Add(time.Hour), Agg: AggAvg, Step: -time.Second}, "step"},
		{Query{Points: []string{"p0.v"}, From: t0, To: t0.Add(time.Hour), Agg: Aggregation(42), Step: time.Second}, "aggregation"},
		{Query{Points: nil, From: t0, To: t0.Add(time.Hour)}, "points"},
		{Query{Points: []string{"p[0"}, From: t0, To: t0.Add(time.Hour)}, "points"},
	}
	for _, tc := range bad {
		_, err := db.Query(ctx, tc.q)
		var qe *QueryError
		if !errors.As(err, &qe) || !errors.Is(err, ErrInvalidQuery) || qe.Field != tc.field {
			t.Errorf("query %+v: err %v, want QueryError on %s", tc.q, err, tc.field)
		}
	}
	if _, err := ParseAggregation("median"); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("ParseAggregation(median): %v", err)
	}
	for _, name := range aggNames {
		if a, err := ParseAggregation(name); err != nil || a.String() != name {
			t.Errorf("ParseAggregation(%q) = %v, %v", name, a, err)
		}
	}
	res, err := db.Query(ctx, Query{Points: []string{"nothing.*", "absent"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil || len(res) != 0 {
		t.Errorf("glob matching nothing: %v, %v; want empty, nil", res, err)
	}
	_, err = db.Query(ctx, Query{Points: []string{"p*.v"}, From: t0, To: t0.Add(time.Hour)})
	var le *LimitError
	if !errors.As(err, &le) || le.What != "points" || !errors.Is(err, ErrLimit) {
		t.Errorf("3 points past limit 2: %v", err)
	}
	_, err = db.Query(ctx, Query{Points: []string{"p0.v", "p1.v"}, From: t0, To: t0.Add(time.Hour)})
	if !errors.As(err, &le) || le.What != "samples" {
		t.Errorf("80 samples past limit 50: %v", err)
	}
	_, err = db.Query(ctx, Query{Points: []string{"p0.v"}, From: t0, To: t0.Add(time.Hour), Step: time.Second, Agg: AggMax})
	if !errors.Is(err, ErrLimit) {
		t.Errorf("3600 buckets past limit 50: %v", err)
	}
	res, err = db.Query(ctx, Query{Points: []string{"p1.v", "p0.v", "p1.v"}, From: t0, To: t0.Add(20 * time.Second)})
	if err != nil || len(res) != 2 || res[0].Point != "p0.v" || res[1].Point != "p1.v" || len(res[0].Points) != 20 {
		t.Errorf("ordered, deduplicated result: %v, %v", res, err)
	}
}

func TestOutOfOrderDuplicatesQuality(t *testing.T) {
	db := openT(t, "", WithOutOfOrderWindow(time.Minute))
	defer db.Close()
	ctx := context.Background()
	mustWrite(t, db, model.Sample{Point: "x", Value: 1, Time: t0.Add(10 * time.Minute)})
	// Within the window, out of order: accepted and sorted.
	mustWrite(t, db, model.Sample{Point: "x", Value: 2, Time: t0.Add(9*time.Minute + 30*time.Second)})
	// Duplicate: last write wins; quality kept.
	mustWrite(t, db, model.Sample{Point: "x", Value: 3, Time: t0.Add(10 * time.Minute), Quality: model.Uncertain(model.ReasonStale)})
	// Beyond the window: rejected with a typed error, rest of the batch stored.
	err := db.Write(ctx, []model.Sample{
		{Point: "x", Value: 4, Time: t0.Add(5 * time.Minute)},
		{Point: "x", Value: 5, Time: t0.Add(11 * time.Minute)},
	})
	var oe *OutOfOrderError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOutOfOrder) || oe.Rejected != 1 || oe.Point != "x" {
		t.Fatalf("err %v, want one rejected sample", err)
	}
	if db.Stats().Rejected != 1 {
		t.Errorf("rejected counter %d", db.Stats().Rejected)
	}
	pts := raw(t, db, "x", t0, t0.Add(time.Hour))
	want := []Point{
		{Time: t0.Add(9*time.Minute + 30*time.Second), Value: 2},
		{Time: t0.Add(10 * time.Minute), Value: 3, Quality: model.Uncertain(model.ReasonStale)},
		{Time: t0.Add(11 * time.Minute), Value: 5},
	}
	if len(pts) != len(want) {
		t.Fatalf("got %v, want %v", pts, want)
	}
	for i := range want {
		if !pts[i].Time.Equal(want[i].Time) || pts[i].Value != want[i].Value || pts[i].Quality != want[i].Quality {
			t.Fatalf("got %v, want %v", pts, want)
		}
	}
	// A duplicate of a flushed (cut) sample is out of order, never a second copy.
	mustWrite(t, db, model.Sample{Point: "x", Value: 6, Time: t0.Add(20 * time.Minute)})
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, []model.Sample{{Point: "x", Value: 7, Time: t0.Add(11 * time.Minute)}}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("rewrite of a cut sample: %v", err)
	}
	// Bad samples are stored but skipped by aggregations.
	mustWrite(t, db, model.Sample{Point: "x", Value: 1000, Time: t0.Add(20*time.Minute + time.Second), Quality: model.Bad(model.ReasonOutOfRange)})
	res, err := db.Query(ctx, Query{Points: []string{"x"}, From: t0, To: t0.Add(time.Hour), Step: time.Hour, Agg: AggMax})
	if err != nil || len(res) != 1 || res[0].Points[0].Value != 6 {
		t.Fatalf("max skipping bad: %v %v", res, err)
	}
	if pts := raw(t, db, "x", t0.Add(20*time.Minute), t0.Add(time.Hour)); len(pts) != 2 || !pts[1].Quality.IsBad() {
		t.Fatalf("bad sample not stored with its quality: %v", pts)
	}
	if err := db.Write(ctx, []model.Sample{{Point: "", Value: 1, Time: t0}}); err == nil {
		t.Error("empty point accepted")
	}
}

func TestDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open of the same directory: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, dir) // released by Close
	db.Close()
}

func TestClosedAndOptions(t *testing.T) {
	db := openT(t, "")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), []model.Sample{{Point: "a", Time: t0}}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if _, err := db.Query(context.Background(), Query{Points: []string{"a"}, From: t0, To: t0}); !errors.Is(err, ErrClosed) {
		t.Errorf("query after close: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	for _, o := range []Option{
		WithSync(SyncInterval, 0), WithSync(Sync(9), time.Second), WithTiers(Tier{Resolution: time.Minute}, Tier{Resolution: 90 * time.Second}),
		WithTiers(Tier{Resolution: time.Millisecond}), WithLimits(0, 1), WithCacheSize(-1), WithOutOfOrderWindow(-1),
		WithAggregateSeries(AggregateSeries{Name: "s", Members: []string{"a"}, Agg: AggFirst}), WithColdArchive(nil, time.Hour), nil,
		WithRetention(-time.Hour), WithFlushInterval(0), WithMaxChunkSamples(1), WithWALSegmentSize(10),
	} {
		if _, err := Open("", o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("invalid option accepted: %v", err)
		}
	}
}

func TestCorruptBlockGivesTypedError(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, WithOutOfOrderWindow(0), WithCacheSize(0), WithTiers())
	rng := rand.New(rand.NewPCG(5, 5))
	all := gen(rng, []string{"a", "b"}, t0, 600)
	mustWrite(t, db, all...)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.blk"))
	if len(files) != 1 {
		t.Fatalf("%d block files", len(files))
	}
	b, _ := os.ReadFile(files[0])
	b[20] ^= 0x40 // inside the first chunk (series "a")
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	db = openT(t, dir, WithCacheSize(0), WithTiers())
	_, err := db.Query(context.Background(), Query{Points: []string{"a"}, From: t0, To: t0.Add(time.Hour)})
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Point != "a" {
		t.Fatalf("query over corrupt block: %v", err)
	}
	// The other series' block is intact.
	if pts := raw(t, db, "b", t0, t0.Add(time.Hour)); len(pts) != 600 {
		t.Fatalf("intact series: %d samples", len(pts))
	}
	if db.Stats().Corrupt == 0 {
		t.Error("corruption not counted")
	}
	// Corrupt index: the file is skipped with a counted warning.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b[len(b)-20] ^= 0xff
	os.WriteFile(files[0], b, 0o644)
	db = openT(t, dir, WithCacheSize(0), WithTiers())
	defer db.Close()
	if st := db.Stats(); st.Corrupt != 1 || st.Files != 0 {
		t.Errorf("corrupt index: stats %+v", st)
	}
	// What remains comes from the WAL (not yet checkpointed): only true values.
	want := map[int64]float64{}
	for _, x := range all {
		if x.Point == "b" {
			want[x.Time.UnixMilli()] = x.Value
		}
	}
	for _, p := range raw(t, db, "b", t0, t0.Add(time.Hour)) {
		if v, ok := want[p.Time.UnixMilli()]; !ok || math.Float64bits(v) != math.Float64bits(p.Value) {
			t.Fatalf("wrong sample after skipping a corrupt file: %v", p)
		}
	}
}
