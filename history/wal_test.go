package history

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.seg"))
	return segs
}

// writeBatches writes n single-sample batches (one WAL record each) and
// closes the WAL without flushing, as a crash would leave it.
func crashAfter(t *testing.T, dir string, n int) {
	t.Helper()
	db := openT(t, dir, WithOutOfOrderWindow(time.Hour), WithSync(SyncNever, 0))
	for i := range n {
		mustWrite(t, db, model.Sample{Point: "w", Value: float64(i), Time: t0.Add(time.Duration(i) * time.Second)})
	}
	// Simulate a crash: stop goroutines and close files without Close's flush.
	close(db.stop)
	db.wg.Wait()
	db.wal.close()
	db.closeFiles()
}

func TestWALTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	crashAfter(t, dir, 10)
	segs := walSegments(t, dir)
	seg := segs[len(segs)-1]
	b, _ := os.ReadFile(seg)
	os.WriteFile(seg, b[:len(b)-5], 0o644) // half of the last record
	var logBuf bytes.Buffer
	db := openT(t, dir, WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	defer db.Close()
	pts := raw(t, db, "w", t0, t0.Add(time.Hour))
	if len(pts) != 9 || pts[8].Value != 8 {
		t.Fatalf("after torn tail: %d samples %v", len(pts), pts)
	}
	if !strings.Contains(logBuf.String(), "truncating torn WAL tail") {
		t.Errorf("no log line for the torn tail: %s", logBuf.String())
	}
	if st, _ := os.Stat(seg); st.Size() >= int64(len(b)-5) {
		t.Errorf("segment not truncated: %d bytes", st.Size())
	}
}

func TestWALCorruptRecordIsSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	crashAfter(t, dir, 10)
	segs := walSegments(t, dir)
	seg := segs[len(segs)-1]
	b, _ := os.ReadFile(seg)
	// Records are equal in size here; corrupt a value byte of the 4th.
	recLen := len(b) / 10
	b[3*recLen+recLen-3] ^= 0x10
	os.WriteFile(seg, b, 0o644)
	db := openT(t, dir)
	defer db.Close()
	pts := raw(t, db, "w", t0, t0.Add(time.Hour))
	if len(pts) != 9 {
		t.Fatalf("%d samples, want 9 (one corrupt record skipped)", len(pts))
	}
	for _, p := range pts {
		if p.Value == 3 {
			t.Fatalf("value of the corrupt record returned: %v", pts)
		}
		if p.Value != float64(p.Time.Sub(t0)/time.Second) {
			t.Fatalf("wrong value %v", p)
		}
	}
	if db.Stats().Corrupt != 1 {
		t.Errorf("corrupt count %d, want 1", db.Stats().Corrupt)
	}
}

func TestWALReplayAfterCheckpointAndRotation(t *testing.T) {
	defer func(old int64) { checkpointMinBytes = old }(checkpointMinBytes)
	checkpointMinBytes = 1 << 10 // checkpoint on every flush
	dir := t.TempDir()
	db := openT(t, dir, WithOutOfOrderWindow(30*time.Second), WithWALSegmentSize(64<<10), WithSync(SyncAlways, 0))
	ctx := context.Background()
	var batch []model.Sample
	for i := range 5000 {
		batch = append(batch[:0], model.Sample{Point: "r", Value: float64(i % 100), Time: t0.Add(time.Duration(i) * time.Second)}, model.Sample{Point: "q", Value: 1, Time: t0.Add(time.Duration(i) * time.Second)})
		mustWrite(t, db, batch...)
		if i == 2500 {
			if err := db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(walSegments(t, dir)); n < 2 {
		t.Fatalf("expected rotated segments, have %d", n)
	}
	ckpts, _ := filepath.Glob(filepath.Join(dir, "wal", ckptPrefix+"*"))
	if len(ckpts) != 1 {
		t.Fatalf("checkpoints: %v", ckpts)
	}
	// Segments before the checkpoint are gone.
	var ck int
	fmt.Sscanf(filepath.Base(ckpts[0]), ckptPrefix+"%d", &ck)
	for _, s := range walSegments(t, dir) {
		var n int
		fmt.Sscanf(filepath.Base(s), "%d", &n)
		if n < ck {
			t.Errorf("segment %s survived checkpoint %d", s, ck)
		}
	}
	close(db.stop)
	db.wg.Wait()
	db.wal.close()
	db.closeFiles()
	db = openT(t, dir)
	defer db.Close()
	if pts := raw(t, db, "r", t0, t0.Add(2*time.Hour)); len(pts) != 5000 {
		t.Fatalf("%d samples after replay, want 5000", len(pts))
	}
}

// FuzzWALReplay feeds arbitrary segment bytes to the WAL reader.
func FuzzWALReplay(f *testing.F) {
	dir := f.TempDir()
	var r recBuilder
	r.def(1, "pcs1.p")
	r.def(2, "bms.soc")
	r.add(1, 1_700_000_000_000, 12.5, 0)
	r.add(2, 1_700_000_001_000, 55.1, 0x81)
	good := bytes.Clone(r.finish())
	f.Add(bytes.Clone(good))
	f.Add(append(bytes.Clone(good), good[:7]...))
	f.Add(append(bytes.Clone(good), good...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		dict := walDict{}
		consumed, bad := replayBytes(b, dict, func(p []byte, _ int64, _ float64, _ uint8) {
			if len(p) == 0 {
				t.Fatal("empty point replayed")
			}
			n++
		})
		if bad >= 0 && consumed != bad {
			t.Fatalf("consumed %d but bad record at %d", consumed, bad)
		}
		if next := resync(b, max(bad, 0)+1, dict); next >= 0 && next <= bad {
			t.Fatalf("resync went backwards: %d <= %d", next, bad)
		}
		// The full replay path on a file must never panic either.
		os.WriteFile(filepath.Join(dir, segName(1)), b, 0o644)
		_, _, _ = replayWAL(dir, slog.New(slog.DiscardHandler), func([]byte, int64, float64, uint8) {})
	})
}
