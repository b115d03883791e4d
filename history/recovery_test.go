package history

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A compaction that crashed after writing its output but before deleting
// its inputs must not double the data (or the rollups) on reopen.
func TestCrashedCompactionInputsAreDropped(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := openT(t, dir, WithOutOfOrderWindow(0), WithCacheSize(0))
	for k := range 4 {
		mustWrite(t, db, series1s("cc", t0.Add(time.Duration(k)*10*time.Minute), 600, func(i int) float64 { return 1 })...)
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	inputs, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.blk"))
	if len(inputs) != 4 {
		t.Fatalf("%d level-0 files, want 4", len(inputs))
	}
	saved := map[string][]byte{}
	for _, p := range inputs {
		saved[p], _ = os.ReadFile(p)
	}
	if err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for p, b := range saved { // the inputs "survive" the crash
		os.WriteFile(p, b, 0o644)
	}
	db = openT(t, dir, WithCacheSize(0))
	defer db.Close()
	res, err := db.Query(ctx, Query{Points: []string{"cc"}, From: t0, To: t0.Add(time.Hour), Step: time.Hour, Agg: AggCount})
	if err != nil || len(res) != 1 || res[0].Points[0].Value != 2400 {
		t.Fatalf("count after crashed compaction: %v %v, want 2400", res, err)
	}
	if n := len(raw(t, db, "cc", t0, t0.Add(time.Hour))); n != 2400 {
		t.Fatalf("%d raw samples, want 2400", n)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.blk"))
	if len(left) != 1 {
		t.Errorf("superseded files not removed: %v", left)
	}
}

func TestCorruptRollupGivesTypedError(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, WithOutOfOrderWindow(0), WithTiers(Tier{Resolution: time.Minute}))
	mustWrite(t, db, series1s("r", t0, 600, func(i int) float64 { return float64(i) })...)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.blk"))
	b, _ := os.ReadFile(files[0])
	_, entries, err := parseIndex(files[0], b, int64(len(b)), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.tier == 1 {
			b[e.ref.off+int64(e.ref.size)/2] ^= 0x08
		}
	}
	os.WriteFile(files[0], b, 0o644)
	db = openT(t, dir, WithCacheSize(0), WithTiers(Tier{Resolution: time.Minute}))
	defer db.Close()
	ctx := context.Background()
	_, err = db.Query(ctx, Query{Points: []string{"r"}, From: t0, To: t0.Add(10 * time.Minute), Step: time.Minute, Agg: AggSum})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("aggregate over corrupt rollup: %v", err)
	}
	// Raw data and steps the tier does not serve still work.
	if n := len(raw(t, db, "r", t0, t0.Add(time.Hour))); n != 600 {
		t.Fatalf("raw: %d", n)
	}
	res, err := db.Query(ctx, Query{Points: []string{"r"}, From: t0, To: t0.Add(10 * time.Minute), Step: 30 * time.Second, Agg: AggSum})
	if err != nil || len(res[0].Points) != 20 {
		t.Fatalf("30 s buckets from raw: %v", err)
	}
}
