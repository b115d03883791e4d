package alarm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/voltage-ems/ems/model"
)

func benchDefs(n int) []Definition {
	defs := make([]Definition, n)
	for i := range defs {
		defs[i] = Definition{ID: fmt.Sprintf("a%05d", i), Point: fmt.Sprintf("p%05d", i), Limits: &Limits{
			HH: &Limit{Value: 95, Deadband: 2}, H: &Limit{Value: 85, Deadband: 2},
			L: &Limit{Value: 15, Deadband: 2}, LL: &Limit{Value: 5, Deadband: 2},
		}}
	}
	return defs
}

// walk returns nb batches of size samples: a random walk per point,
// points visited in a shuffled order.
func walk(points, nb, size int, seed uint64) [][]model.Sample {
	r := rand.New(rand.NewPCG(seed, 1))
	vals := make([]float64, points)
	names := make([]string, points)
	for i := range vals {
		vals[i] = 20 + r.Float64()*60
		names[i] = fmt.Sprintf("p%05d", i)
	}
	out := make([][]model.Sample, nb)
	k := 0
	for b := range out {
		out[b] = make([]model.Sample, size)
		for i := range out[b] {
			p := k % points
			if p == 0 {
				r.Shuffle(len(names), func(i, j int) { names[i], names[j], vals[i], vals[j] = names[j], names[i], vals[j], vals[i] })
			}
			k++
			vals[p] += r.NormFloat64()
			if vals[p] < -20 || vals[p] > 120 {
				vals[p] = 50
			}
			out[b][i] = model.Sample{Point: names[p], Value: vals[p]}
		}
	}
	return out
}

// BenchmarkProcess: 10,000 points with HH/H/L/LL limits and deadbands,
// random-walk values, batches of 1,000 samples.
func BenchmarkProcess(b *testing.B) {
	e, err := New(WithDefinitions(benchDefs(10000)...))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batches := walk(10000, 200, 1000, 1)
	ctx := context.Background()
	b.ReportAllocs()
	n, events := 0, 0
	for b.Loop() {
		evs, err := e.Process(ctx, batches[n%len(batches)])
		if err != nil {
			b.Fatal(err)
		}
		events += len(evs)
		n++
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(n*1000)/secs, "samples/s")
	b.ReportMetric(float64(events)/float64(n*1000), "events/sample")
	b.ReportMetric(float64(e.KPIs().Annunciations)/float64(n*1000), "alarms/sample")
}

// TestProcessZeroAlloc checks that samples that change no alarm allocate
// nothing.
func TestProcessZeroAlloc(t *testing.T) {
	defs := benchDefs(1000)
	defs[0].SuppressWhen = `point("mode") == 1` // not re-evaluated while mode does not change
	e := mustNew(t, WithDefinitions(defs...))
	batch := make([]model.Sample, 1000)
	for i := range batch {
		batch[i] = model.Sample{Point: fmt.Sprintf("p%05d", i), Value: 50}
	}
	ctx := context.Background()
	e.Process(ctx, batch)
	k := 0
	allocs := testing.AllocsPerRun(50, func() {
		k++
		for i := range batch {
			batch[i].Value = 40 + float64((i+k)%20) // stays between the limits
		}
		if evs, _ := e.Process(ctx, batch); len(evs) != 0 {
			t.Fatalf("unexpected events %v", evs)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 1,000 non-transition samples", allocs)
	}
}

// BenchmarkProcessLargeBatch: the same 10,000 points in batches of 10,000,
// partitioned across GOMAXPROCS workers.
func BenchmarkProcessLargeBatch(b *testing.B) {
	e, err := New(WithDefinitions(benchDefs(10000)...), WithParallel(runtime.GOMAXPROCS(0), 4096))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batches := walk(10000, 20, 10000, 1)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := e.Process(ctx, batches[n%len(batches)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*10000)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkTick: one Tick with 10,000 active alarms (H and HH of 5,000
// points) and 10,000 stale-data alarms to scan.
func BenchmarkTick(b *testing.B) {
	defs := benchDefs(5000)
	for i := 0; i < 10000; i++ {
		defs = append(defs, Definition{ID: fmt.Sprintf("s%05d", i), Point: fmt.Sprintf("q%05d", i), Stale: &Stale{After: Duration(time.Hour)}})
	}
	e, err := New(WithDefinitions(defs...))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batch := make([]model.Sample, 5000)
	for i := range batch {
		batch[i] = model.Sample{Point: fmt.Sprintf("p%05d", i), Value: 99}
	}
	ctx := context.Background()
	e.Process(ctx, batch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Tick(ctx, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotLayout guards the cache-line layout the hot path relies on (on
// 64-bit platforms): one line per point and per alarm condition.
func TestHotLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("layout is tuned for 64-bit platforms")
	}
	if s := unsafe.Sizeof(hot{}); s != 64 {
		t.Errorf("hot is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(pointState{}); s != 64 {
		t.Errorf("pointState is %d bytes, want 64", s)
	}
}

// BenchmarkProcessEventLatency measures the engine's share of detection
// latency: the time of a Process call on a batch of 1,000 samples of which
// one crosses a limit, until the alarm Event is returned (p50/p99 over the
// iterations). Flood and chatter handling are off so that every crossing
// is annunciated.
func BenchmarkProcessEventLatency(b *testing.B) {
	e, err := New(WithDefinitions(benchDefs(10000)...), WithFlood(0, 0, 0), WithChatter(0, 0, 0))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batch := walk(10000, 1, 1000, 3)[0]
	for i := range batch {
		batch[i].Value = 50 // all normal
	}
	ctx := context.Background()
	var lat []time.Duration
	n := 0
	for b.Loop() {
		batch[0].Value = 90 // H active
		if n%2 == 1 {
			batch[0].Value = 50 // clear
		}
		start := time.Now()
		evs, err := e.Process(ctx, batch)
		d := time.Since(start)
		if err != nil || len(evs) != 1 {
			b.Fatalf("got %d events, %v", len(evs), err)
		}
		lat = append(lat, d)
		n++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}
