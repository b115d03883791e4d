package history

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/model"
)

func series1s(point string, from time.Time, n int, v func(i int) float64) []model.Sample {
	out := make([]model.Sample, n)
	for i := range out {
		out[i] = model.Sample{Point: point, Value: v(i), Time: from.Add(time.Duration(i) * time.Second)}
	}
	return out
}

func TestRetentionAndCompactionInBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		db := openT(t, "", WithRetention(time.Hour), WithTiers(Tier{Resolution: time.Minute, Retention: 3 * time.Hour}),
			WithFlushInterval(10*time.Minute), WithOutOfOrderWindow(0), WithMaxChunkSamples(60), WithMetrics(reg), WithCacheSize(0))
		defer db.Close()
		ctx := context.Background()
		start := time.Now()
		// Two hours of 1 s data, written as time passes; the background
		// goroutine flushes every 10 minutes and compacts every 4 files.
		for m := range 120 {
			mustWrite(t, db, series1s("p", start.Add(time.Duration(m)*time.Minute), 60, func(i int) float64 { return float64(m) })...)
			time.Sleep(time.Minute)
			synctest.Wait()
		}
		st := db.Stats()
		if st.HeadSamples > 11*60 {
			t.Errorf("head not flushed in the background: %d samples", st.HeadSamples)
		}
		if st.Compactions < 2 {
			t.Errorf("compactions: %d, want >= 2", st.Compactions)
		}
		mfs, err := reg.Gather()
		if err != nil || len(mfs) < 5 {
			t.Errorf("metrics: %d families, %v", len(mfs), err)
		}
		// Raw samples older than an hour are gone (chunk granularity: 1 min).
		now := time.Now()
		pts := raw(t, db, "p", start, now)
		if first := pts[0].Time; first.Before(now.Add(-time.Hour - time.Minute)) {
			t.Errorf("raw sample at %v survived the 1 h retention (now %v)", first, now)
		}
		// The 1-minute tier still answers for the first hour, exactly.
		res, err := db.Query(ctx, Query{Points: []string{"p"}, From: start, To: start.Add(30 * time.Minute), Step: time.Minute, Agg: AggAvg})
		if err != nil || len(res) != 1 || len(res[0].Points) != 30 {
			t.Fatalf("tier query: %v %v", res, err)
		}
		for i, p := range res[0].Points {
			if p.Value != float64(i) {
				t.Fatalf("minute %d avg %v, want %d", i, p.Value, i)
			}
		}
		// After three more hours the tier is past its retention too and the
		// files are removed.
		time.Sleep(3*time.Hour + 10*time.Minute)
		synctest.Wait()
		res, err = db.Query(ctx, Query{Points: []string{"p"}, From: start, To: start.Add(30 * time.Minute), Step: time.Minute, Agg: AggAvg})
		if err != nil || len(res) != 0 {
			t.Fatalf("tier past retention still answers: %v %v", res, err)
		}
		if st := db.Stats(); st.Files > 1 {
			t.Errorf("%d files left after retention", st.Files)
		}
	})
}

func TestIntervalFsyncAndCloseInBubble(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		db := openT(t, dir, WithSync(SyncInterval, 100*time.Millisecond))
		mustWrite(t, db, series1s("a", time.Now(), 10, func(i int) float64 { return float64(i) })...)
		time.Sleep(time.Second) // the fsync goroutine runs ten times
		synctest.Wait()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
	db := openT(t, dir)
	defer db.Close()
	if n := len(raw(t, db, "a", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))); n != 10 {
		t.Fatalf("%d samples after reopen, want 10", n)
	}
}

func TestQueryCacheInvalidation(t *testing.T) {
	db := openT(t, "", WithOutOfOrderWindow(time.Minute))
	defer db.Close()
	ctx := context.Background()
	mustWrite(t, db, series1s("c", t0, 600, func(i int) float64 { return 1 })...)
	q := Query{Points: []string{"c"}, From: t0, To: t0.Add(5 * time.Minute), Step: time.Minute, Agg: AggSum}
	first, err := db.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	first[0].Points[0].Value = -1 // callers may modify results
	again, _ := db.Query(ctx, q)
	if st := db.Stats(); st.CacheHits != 1 || again[0].Points[0].Value != 60 {
		t.Fatalf("second query: hits %d, value %v", st.CacheHits, again[0].Points[0].Value)
	}
	// A write far after the range (beyond the window) cannot touch it.
	mustWrite(t, db, model.Sample{Point: "c", Value: 1, Time: t0.Add(time.Hour)})
	if _, err := db.Query(ctx, q); err != nil || db.Stats().CacheHits != 2 {
		t.Fatalf("unrelated write invalidated the cache: hits %d", db.Stats().CacheHits)
	}
	// A query reaching into the window is invalidated by a write in it.
	q2 := Query{Points: []string{"c"}, From: t0, To: t0.Add(2 * time.Hour), Step: time.Hour, Agg: AggCount}
	r1, _ := db.Query(ctx, q2)
	mustWrite(t, db, model.Sample{Point: "c", Value: 1, Time: t0.Add(time.Hour - 30*time.Second)})
	r2, _ := db.Query(ctx, q2)
	if r1[0].Points[0].Value != 600 || r2[0].Points[0].Value != 601 {
		t.Fatalf("count before/after write: %v / %v, want 600 / 601", r1[0].Points[0].Value, r2[0].Points[0].Value)
	}
	// A new series matching a glob invalidates glob queries.
	q3 := Query{Points: []string{"c*"}, From: t0, To: t0.Add(time.Minute)}
	r3, _ := db.Query(ctx, q3)
	mustWrite(t, db, model.Sample{Point: "c2", Value: 1, Time: t0})
	r4, _ := db.Query(ctx, q3)
	if len(r3) != 1 || len(r4) != 2 {
		t.Fatalf("glob before/after new series: %d / %d series", len(r3), len(r4))
	}
	// Concurrent identical queries all get the same answer.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := db.Query(ctx, q2)
			if err != nil || r[0].Points[0].Value != 601 {
				t.Errorf("concurrent query: %v %v", r, err)
			}
		})
	}
	wg.Wait()
}

func TestAggregateSeriesMaintainedOnWrite(t *testing.T) {
	db := openT(t, "", WithAggregateSeries(AggregateSeries{Name: "site.p", Members: []string{"pcs*.p"}, Agg: AggSum}))
	defer db.Close()
	mustWrite(t, db, model.Sample{Point: "pcs1.p", Value: 10, Time: t0}, model.Sample{Point: "pcs2.p", Value: 5, Time: t0}, model.Sample{Point: "bms.soc", Value: 50, Time: t0})
	mustWrite(t, db, model.Sample{Point: "pcs1.p", Value: 20, Time: t0.Add(time.Second)})
	mustWrite(t, db, model.Sample{Point: "pcs2.p", Value: 999, Time: t0.Add(2 * time.Second), Quality: model.Bad(model.ReasonCommFailure)})
	pts := raw(t, db, "site.p", t0, t0.Add(time.Minute))
	want := []float64{15, 25, 20}
	if len(pts) != len(want) {
		t.Fatalf("site.p = %v, want values %v", pts, want)
	}
	for i, w := range want {
		if pts[i].Value != w || !pts[i].Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("site.p[%d] = %v, want %v at +%ds", i, pts[i], w, i)
		}
	}
}

func TestColdArchive(t *testing.T) {
	dir, adir := t.TempDir(), t.TempDir()
	arch, err := NewDirArchive(adir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	db := openT(t, dir, WithColdArchive(arch, time.Hour), WithOutOfOrderWindow(0))
	mustWrite(t, db, series1s("cold", old, 100, func(i int) float64 { return float64(i) / 10 })...)
	if err := db.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.ColdFiles != 1 {
		t.Fatalf("stats %+v, want one cold file", st)
	}
	local, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.blk"))
	names, _ := arch.List(context.Background())
	if len(local) != 0 || len(names) != 1 {
		t.Fatalf("local %v, archived %v", local, names)
	}
	check := func(db *DB) {
		pts := raw(t, db, "cold", old, old.Add(time.Hour))
		if len(pts) != 100 || pts[99].Value != 9.9 {
			t.Fatalf("%d samples from the archive", len(pts))
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, dir, WithColdArchive(arch, time.Hour))
	defer db.Close()
	check(db)
	if _, err := os.Stat(filepath.Join(adir, names[0])); err != nil {
		t.Fatal(err)
	}
}
