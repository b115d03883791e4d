package history

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	tsz "github.com/dgryski/go-tsz"

	"github.com/voltage-ems/ems/history/internal/codec"
	"github.com/voltage-ems/ems/model"
)

// emsDataSet builds a deterministic, realistic day of one battery site at
// 1 s: PCS power (0.1 kW) following a dispatch schedule with measurement
// noise, SOC (0.1 %), temperatures (0.1 °C), cell voltages (mV), status
// bits, and energy counters (0.1 kWh).
func emsDataSet(hours int) map[string]*codec.Columns {
	rng := rand.New(rand.NewPCG(2026, 6))
	n := hours * 3600
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	out := map[string]*codec.Columns{}
	add := func(name string, v []float64) {
		c := &codec.Columns{T: make([]int64, n), V: v, Q: make([]uint8, n)}
		for i := range c.T {
			c.T[i] = start + int64(i)*1000
		}
		out[name] = c
	}
	round := func(v float64, d float64) float64 { return math.Round(v*d) / d }
	const pcs = 4
	soc := 50.0
	var chg, dis [pcs]float64
	power := make([][]float64, pcs)
	for p := range power {
		power[p] = make([]float64, n)
	}
	socs := make([]float64, n)
	setpoint := 0.0
	for i := range n {
		if i%900 == 0 { // new dispatch every 15 min
			setpoint = float64(rng.IntN(9)-4) * 50 // -200..200 kW per PCS
		}
		total := 0.0
		for p := range pcs {
			v := setpoint + rng.NormFloat64()*0.4
			if setpoint == 0 {
				v = 0 // an idle PCS reads exactly zero
			}
			v = round(v, 10)
			power[p][i] = v
			total += v
			if v > 0 {
				dis[p] += v / 3600
			} else {
				chg[p] -= v / 3600
			}
		}
		soc -= total / 3600 / 2000 * 100 // 2 MWh battery
		soc = math.Max(5, math.Min(95, soc))
		socs[i] = round(soc, 10)
	}
	for p := range pcs {
		add(fmt.Sprintf("pcs%d.active_power", p+1), power[p])
	}
	add("bms.soc", socs)
	for k := range 8 {
		v := make([]float64, n)
		base := 25 + float64(k)
		for i := range v {
			drift := 3 * math.Sin(float64(i)/float64(n)*2*math.Pi)
			v[i] = round(base+drift+rng.NormFloat64()*0.05, 10)
		}
		add(fmt.Sprintf("bms.temp%d", k+1), v)
	}
	for c := range 16 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Round(3200 + socs[i]*2 + float64(c%3) + rng.NormFloat64()*0.7)
		}
		add(fmt.Sprintf("bms.cell%02d.voltage", c+1), v)
	}
	for s := range 8 {
		v := make([]float64, n)
		state := 0.0
		for i := range v {
			if rng.IntN(3600) == 0 {
				state = 1 - state
			}
			v[i] = state
		}
		add(fmt.Sprintf("pcs.status.bit%d", s), v)
	}
	for p := range 2 {
		v := make([]float64, n)
		e := 12345.6 + float64(p)*1000
		for i := range v {
			e += math.Abs(power[p][i]) / 3600
			v[i] = round(e, 10)
		}
		add(fmt.Sprintf("meter%d.energy_kwh", p+1), v)
	}
	return out
}

// storeBytes encodes every series in blocks of the store's default size with
// its default codec choice, as a flush does.
func storeBytes(set map[string]*codec.Columns, chunk int) (bytes, samples int, err error) {
	var buf []byte
	for _, c := range set {
		for lo := 0; lo < len(c.T); lo += chunk {
			hi := min(lo+chunk, len(c.T))
			buf, _, err = codec.Encode(buf[:0], &codec.Columns{T: c.T[lo:hi], V: c.V[lo:hi], Q: c.Q[lo:hi]}, codec.Options{})
			if err != nil {
				return 0, 0, err
			}
			bytes += len(buf)
			samples += hi - lo
		}
	}
	return bytes, samples, nil
}

func gorillaBytes(set map[string]*codec.Columns, chunk int) int {
	total := 0
	for _, c := range set {
		for lo := 0; lo < len(c.T); lo += chunk {
			hi := min(lo+chunk, len(c.T))
			s := tsz.New(uint32(c.T[lo] / 1000))
			for i := lo; i < hi; i++ {
				s.Push(uint32(c.T[i]/1000), c.V[i])
			}
			s.Finish()
			total += len(s.Bytes())
		}
	}
	return total
}

// TestCompressionTarget guards the size targets (sizes are
// deterministic; speed is measured in BenchmarkCompression).
func TestCompressionTarget(t *testing.T) {
	set := emsDataSet(6)
	chunk := defaultConfig().maxChunk
	b, n, err := storeBytes(set, chunk)
	if err != nil {
		t.Fatal(err)
	}
	g := gorillaBytes(set, chunk)
	bps, gps := float64(b)/float64(n), float64(g)/float64(n)
	t.Logf("store %.3f B/sample, go-tsz %.3f B/sample, ratio %.2f", bps, gps, bps/gps)
	if bps > 1.0 || bps > 0.5*gps {
		t.Errorf("store %.3f B/sample, go-tsz %.3f: want <= 1.0 and <= 0.5x", bps, gps)
	}
}

func BenchmarkCompression(b *testing.B) {
	set := emsDataSet(24)
	chunk := defaultConfig().maxChunk
	var bytes, samples int
	for b.Loop() {
		var err error
		bytes, samples, err = storeBytes(set, chunk)
		if err != nil {
			b.Fatal(err)
		}
	}
	g := gorillaBytes(set, chunk)
	b.ReportMetric(float64(bytes)/float64(samples), "B/sample")
	b.ReportMetric(float64(g)/float64(samples), "gorilla-B/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

func BenchmarkWrite(b *testing.B) {
	const nSeries = 10_000
	db, err := Open(b.TempDir(), WithSync(SyncInterval, time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	names := make([]string, nSeries)
	for i := range names {
		names[i] = fmt.Sprintf("site1.dev%04d.p", i)
	}
	batch := make([]model.Sample, nSeries)
	start := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		ts := start.Add(time.Duration(i) * time.Second)
		for j := range batch {
			batch[j] = model.Sample{Point: names[j], Value: float64((i+j)%1000) / 10, Time: ts}
		}
		if err := db.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)*nSeries/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkQueryRollup(b *testing.B) {
	db, err := Open("", WithCacheSize(0))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	end := time.Now().Truncate(time.Hour)
	from := end.Add(-30 * 24 * time.Hour)
	rng := rand.New(rand.NewPCG(7, 7))
	batch := make([]model.Sample, 0, 3600)
	v := 100.0
	for h := 0; h < 30*24; h++ {
		batch = batch[:0]
		for s := range 3600 {
			v += float64(rng.IntN(11)-5) / 10
			batch = append(batch, model.Sample{Point: "pcs1.active_power", Value: math.Round(v*10) / 10, Time: from.Add(time.Duration(h*3600+s) * time.Second)})
		}
		if err := db.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if h%6 == 5 {
			if err := db.Maintain(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	q := Query{Points: []string{"pcs1.active_power"}, From: from, To: end, Step: time.Hour, Agg: AggAvg}
	res, err := db.Query(ctx, q)
	if err != nil || len(res) != 1 || len(res[0].Points) != 720 {
		b.Fatalf("query: %v, %d series", err, len(res))
	}
	for b.Loop() {
		if _, err := db.Query(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
