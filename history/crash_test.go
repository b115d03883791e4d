package history

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

const crashChildEnv = "HISTORY_CRASH_CHILD_DIR"

// crashChild runs in a re-executed test binary: it writes batches with
// fsync always and prints the number of each acknowledged batch, until it
// is killed.
func crashChild() {
	db, err := Open(os.Getenv(crashChildEnv), WithSync(SyncAlways, 0), WithFlushInterval(50*time.Millisecond), WithOutOfOrderWindow(time.Second), WithMaxChunkSamples(64))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	base := time.Now().Truncate(time.Hour).Add(-time.Hour)
	start, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_START"))
	for i := start; ; i++ {
		batch := make([]model.Sample, 0, 10)
		for j := range 10 {
			batch = append(batch, model.Sample{Point: fmt.Sprintf("s%d", j), Value: float64(i) / 10, Time: base.Add(time.Duration(i) * time.Second)})
		}
		if err := db.Write(context.Background(), batch); err != nil {
			fmt.Println("write:", err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}

func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // kill, reopen, write more, kill again
		cmd := exec.Command(exe, "-test.run=^$")
		start := round * 1000
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_START=%d", crashChildEnv, start))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acked := -1
		target := start + 300
		for sc.Scan() {
			line := sc.Text()
			n, err := strconv.Atoi(line)
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %s", line)
			}
			acked = n
			if n >= target {
				break
			}
		}
		if err := cmd.Process.Signal(os.Kill); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if acked < target {
			t.Fatalf("child acknowledged only %d batches", acked)
		}
		db := openT(t, dir)
		base := time.Now().Truncate(time.Hour).Add(-time.Hour)
		for j := range 10 {
			pts := raw(t, db, fmt.Sprintf("s%d", j), base, base.Add(2*time.Hour))
			got := map[int64]float64{}
			for _, p := range pts {
				got[p.Time.Sub(base).Milliseconds()/1000] = p.Value
			}
			for i := start; i <= acked; i++ {
				if v, ok := got[int64(i)]; !ok || v != float64(i)/10 {
					t.Fatalf("round %d: s%d lost acknowledged batch %d (have %v, %v; %d samples)", round, j, i, v, ok, len(pts))
				}
			}
			if round > 0 {
				if v, ok := got[300]; !ok || v != 30 {
					t.Fatalf("round %d: s%d lost batch 300 of the first round", round, j)
				}
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
