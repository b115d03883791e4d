package modbus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

// benchTable is a realistic 1,000-point map on one unit: 16-, 32- and
// 64-bit values in holding registers with gaps every ten points, input
// registers, bits of status registers, coils and discrete inputs.
func benchTable(tb testing.TB, dev *testDevice) *table {
	var t table
	id := uint32(1)
	addT := func(fc string, addr int, dt, order string) {
		t.add(tb, model.Point{ID: id, Kind: model.Telemetry, Scale: 0.1}, "slave_id", "1", "function_code", fc,
			"register_address", fmt.Sprint(addr), "data_type", dt, "byte_order", order)
		id++
	}
	addr := 0
	types := []struct{ dt, order string }{{"uint16", ""}, {"int16", ""}, {"int32", "ABCD"}, {"float32", "CDAB"}, {"uint32", "DCBA"}, {"float64", "ABCDEFGH"}, {"int64", "GHEFCDAB"}}
	for i := 0; i < 500; i++ {
		ty := types[i%len(types)]
		if i%7 >= 5 && i%3 != 0 { // keep the mix mostly 16/32-bit
			ty = types[i%2]
		}
		addT("3", addr, ty.dt, ty.order)
		var m Mapping
		m.DataType, _ = model.ParseDataType(ty.dt)
		addr += m.DataType.Registers()
		if i%10 == 9 {
			addr += 3 // gap
		}
	}
	for i := 0; i < 200; i++ {
		addT("4", i+i/20*2, "uint16", "")
	}
	sid := uint32(1)
	addS := func(fc string, addr, bit int) {
		kv := []string{"slave_id", "1", "function_code", fc, "register_address", fmt.Sprint(addr)}
		if bit >= 0 {
			kv = append(kv, "bit_position", fmt.Sprint(bit))
		}
		t.add(tb, model.Point{ID: sid, Kind: model.Signal}, kv...)
		sid++
	}
	for i := 0; i < 100; i++ {
		addS("3", 1000+i/16, i%16)
	}
	for i := 0; i < 100; i++ {
		addS("1", i+i/10*5, -1)
	}
	for i := 0; i < 100; i++ {
		addS("2", i*2, -1)
	}
	u := dev.unit(1)
	dev.mu.Lock()
	for i := range 2000 {
		u.hr[i], u.ir[i] = uint16(i*7), uint16(i*3)
		u.coils[i], u.di[i] = i%3 == 0, i%5 == 0
	}
	dev.mu.Unlock()
	if n := len(t.points); n != 1000 {
		tb.Fatalf("%d points", n)
	}
	return &t
}

// BenchmarkPoll reads a 1,000-point map over one TCP link from the
// in-process server, with the planner (coalesced requests) and with one
// request per point, and reports points/s.
func BenchmarkPoll(b *testing.B) {
	dev := newTestDevice(1)
	srv := startServer(b, dev)
	tbl := benchTable(b, dev)
	for _, mode := range []struct {
		name string
		lim  Limits
	}{{"planned", Limits{}}, {"per-point", Limits{NoCoalesce: true}}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := baseConfig(srv.addr, tbl)
			cfg.Limits = mode.lim
			cfg.Timeout = 10 * time.Second
			c, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			w := c.newWorker(collect.SinkFunc(func(context.Context, []model.Sample) error { return nil }))
			ctx := context.Background()
			reqs := 0
			for _, g := range c.groups {
				reqs += len(g.reqs)
			}
			points := 0
			for b.Loop() {
				w.batch = w.batch[:0]
				w.cycle(ctx, c.groups)
				if len(w.batch) != 1000 {
					b.Fatalf("cycle published %d samples", len(w.batch))
				}
				points += len(w.batch)
			}
			for _, s := range w.batch {
				if !s.Quality.IsGood() {
					b.Fatalf("%v", s)
				}
			}
			b.ReportMetric(float64(points)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(reqs), "requests/cycle")
		})
	}
}
