package history

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Writes, queries, flushes and compactions at once: every written sample
// is found exactly once at the end, and queries never fail meanwhile.
func TestConcurrentMaintenanceKeepsData(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			dir := ""
			if disk {
				dir = t.TempDir()
			}
			db := openT(t, dir, WithOutOfOrderWindow(5*time.Second), WithMaxChunkSamples(32), WithCacheSize(16))
			defer db.Close()
			ctx := context.Background()
			const writers, rounds, per = 3, 200, 5
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				for !stop.Load() {
					if err := db.Maintain(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
			wg.Go(func() {
				for !stop.Load() {
					_, err := db.Query(ctx, Query{Points: []string{"st.*"}, From: t0, To: t0.Add(time.Hour), Step: time.Minute, Agg: AggCount})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
			var ww sync.WaitGroup
			for w := range writers {
				ww.Go(func() {
					batch := make([]model.Sample, per)
					for r := range rounds {
						for j := range batch {
							batch[j] = model.Sample{Point: fmt.Sprintf("st.%d", w), Value: float64(r), Time: t0.Add(time.Duration(r*per+j) * time.Second)}
						}
						if err := db.Write(ctx, batch); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			ww.Wait()
			stop.Store(true)
			wg.Wait()
			res, err := db.Query(ctx, Query{Points: []string{"st.*"}, From: t0, To: t0.Add(time.Hour), Step: time.Hour, Agg: AggCount})
			if err != nil || len(res) != writers {
				t.Fatalf("%v %v", res, err)
			}
			for _, s := range res {
				if s.Points[0].Value != rounds*per {
					t.Errorf("%s: count %v, want %d", s.Point, s.Points[0].Value, rounds*per)
				}
				if n := len(raw(t, db, s.Point, t0, t0.Add(time.Hour))); n != rounds*per {
					t.Errorf("%s: %d raw samples, want %d", s.Point, n, rounds*per)
				}
			}
		})
	}
}
