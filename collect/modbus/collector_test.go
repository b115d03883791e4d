package modbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/model"
)

const wait = 10 * time.Second

func baseConfig(addr string, tb *table) Config {
	return Config{Channel: "pcs", Address: addr, Timeout: 500 * time.Millisecond, Interval: 20 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Points: tb.points, Mappings: tb.mappings}
}

// Every data type × byte order, bits of registers, coils and discrete
// inputs, read through a real server and converted to engineering units.
func TestCollectTypesOrdersAndBits(t *testing.T) {
	dev := newTestDevice(1, 2)
	srv := startServer(t, dev)
	var tb table
	type want struct {
		id string
		v  float64
	}
	var wants []want
	addr := uint16(0)
	id := uint32(1)
	orders := map[int][]string{2: {"", "BA"}, 4: {"ABCD", "DCBA", "BADC", "CDAB"}, 8: {"ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"}}
	values := map[model.DataType]float64{model.Int16: -1234, model.Uint16: 54321, model.Int32: -123456789, model.Uint32: 3456789012,
		model.Int64: -1234567890123, model.Uint64: 9876543210123, model.Float32: 123456, model.Float64: -98765.4321}
	for _, dt := range numericTypes {
		n := dt.Bits() / 8
		for _, os := range orders[n] {
			o, _ := ParseByteOrder(os)
			enc, err := EncodeRegisters(nil, values[dt], dt, o)
			if err != nil {
				t.Fatal(err)
			}
			fc := "3"
			if id%2 == 0 {
				dev.setIR(1, addr, enc)
				fc = "4"
			} else {
				dev.setHR(1, addr, enc)
			}
			tb.add(t, model.Point{ID: id, Kind: model.Telemetry, Scale: 1}, "slave_id", "1", "function_code", fc,
				"register_address", fmt.Sprint(addr), "data_type", dt.String(), "byte_order", os)
			wants = append(wants, want{model.ChannelPointID("pcs", model.Telemetry, id), values[dt]})
			addr += uint16(n/2) + 1 // leave a one-register gap
			id++
		}
	}
	// scale and offset from the point table: raw 2500 × 0.1 − 40 = 210
	dev.setHR(1, 500, regs(2500))
	tb.add(t, model.Point{ID: 100, Kind: model.Telemetry, Scale: 0.1, Offset: -40}, "slave_id", "1", "function_code", "3", "register_address", "500", "data_type", "uint16")
	wants = append(wants, want{"pcs.T.100", 210})
	// string point holding a number
	dev.setHR(1, 510, []byte("12.5\x00\x00"))
	tb.add(t, model.Point{ID: 101, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "510", "data_type", "string", "length", "6")
	wants = append(wants, want{"pcs.T.101", 12.5})
	// signals: bits of a register, coils, discrete inputs, on unit 2
	dev.setHR(2, 10, regs(0b1000_0000_0000_0101))
	u2 := dev.unit(2)
	u2.coils[7], u2.di[3] = true, true
	for i, c := range []struct {
		bit  string
		want float64
	}{{"0", 1}, {"1", 0}, {"2", 1}, {"15", 1}} {
		tb.add(t, model.Point{ID: uint32(10 + i), Kind: model.Signal}, "slave_id", "2", "function_code", "3", "register_address", "10", "bit_position", c.bit)
		wants = append(wants, want{model.ChannelPointID("pcs", model.Signal, uint32(10+i)), c.want})
	}
	tb.add(t, model.Point{ID: 20, Kind: model.Signal}, "slave_id", "2", "function_code", "1", "register_address", "7")
	tb.add(t, model.Point{ID: 21, Kind: model.Signal}, "slave_id", "2", "function_code", "1", "register_address", "8")
	tb.add(t, model.Point{ID: 22, Kind: model.Signal, Reverse: true}, "slave_id", "2", "function_code", "2", "register_address", "3")
	tb.add(t, model.Point{ID: 23, Kind: model.Signal}, "slave_id", "2", "function_code", "2", "register_address", "4")
	wants = append(wants, want{"pcs.S.20", 1}, want{"pcs.S.21", 0}, want{"pcs.S.22", 0}, want{"pcs.S.23", 0})

	reg := prometheus.NewRegistry()
	c, err := New(baseConfig(srv.addr, &tb), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	sink.waitFor(t, wait, "every point", func(get func(string) (model.Sample, bool)) bool {
		for _, w := range wants {
			if _, ok := get(w.id); !ok {
				return false
			}
		}
		return true
	})
	for _, w := range wants {
		s, _ := sink.get(w.id)
		if !s.Quality.IsGood() || math.Abs(s.Value-w.v) > 1e-9*math.Max(1, math.Abs(w.v)) {
			t.Errorf("%s = %v (%s), want %v", w.id, s.Value, s.Quality, w.v)
		}
	}
	if got := len(c.Points()); got != len(tb.points) {
		t.Errorf("Points() has %d ids, want %d", got, len(tb.points))
	}
	// The 28 numeric T points sit in one coalesced range per function code.
	if n := metricValue(t, c.met.points); n < float64(len(wants)) {
		t.Errorf("points metric %v", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"ems_modbus_requests_total", "ems_modbus_request_duration_seconds", "ems_modbus_points_total", "ems_modbus_link_up"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}

// A device refusing addresses inside a coalesced range: the collector
// splits it, keeps reading the rest, remembers the split and excludes the
// refused point; Plan shows both.
func TestIllegalAddressSplit(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	var tb table
	for i := uint32(0); i < 8; i++ {
		dev.setHR(1, uint16(i*2), regs(uint16(100+i)))
		tb.add(t, model.Point{ID: i + 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", fmt.Sprint(i*2))
	}
	dev.illegal[1] = map[uint16]bool{5: true, 10: true} // 5 is in a gap; 10 is point 6
	cfg := baseConfig(srv.addr, &tb)
	cfg.ReprobeInterval = 300 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Plan(); len(p.Requests) != 1 || p.Requests[0].Quantity != 15 {
		t.Fatalf("initial plan:\n%s", p)
	}
	sink := newRecSink()
	run(t, c, sink)
	sink.waitFor(t, wait, "all points", func(get func(string) (model.Sample, bool)) bool {
		for i := 1; i <= 8; i++ {
			if _, ok := get(fmt.Sprintf("pcs.T.%d", i)); !ok {
				return false
			}
		}
		return true
	})
	for i := uint32(1); i <= 8; i++ {
		s, _ := sink.get(fmt.Sprintf("pcs.T.%d", i))
		if i == 6 {
			if s.Quality != model.Bad(model.ReasonConfig) {
				t.Errorf("refused point: %v", s)
			}
			continue
		}
		if !s.Quality.IsGood() || s.Value != float64(99+i) {
			t.Errorf("point %d: %v", i, s)
		}
	}
	p := c.Plan()
	if len(p.Excluded) != 1 || p.Excluded[0].Point != "pcs.T.6" || p.Excluded[0].Address != 10 {
		t.Errorf("excluded: %+v", p.Excluded)
	}
	for _, r := range p.Requests {
		for a := r.Address; a < r.Address+r.Quantity; a++ {
			if a == 5 || a == 10 {
				t.Errorf("request still covers refused address %d: %s", a, r)
			}
		}
		if !strings.Contains(r.Note, "illegal data address") {
			t.Errorf("request without note: %s", r)
		}
	}
	// The remembered plan keeps working: the next cycles publish good values
	// without new exceptions.
	dev.mu.Lock()
	before := dev.reqs
	dev.mu.Unlock()
	sink.waitFor(t, wait, "another cycle", func(func(string) (model.Sample, bool)) bool {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		return dev.reqs >= before+2*len(p.Requests)
	})
	if s, _ := sink.get("pcs.T.7"); !s.Quality.IsGood() {
		t.Errorf("after split: %v", s)
	}
	// The device accepts address 10 again: the reprobe brings point 6 back.
	dev.mu.Lock()
	delete(dev.illegal[1], 10)
	dev.mu.Unlock()
	sink.waitFor(t, wait, "point 6 back", func(get func(string) (model.Sample, bool)) bool {
		s, _ := get("pcs.T.6")
		return s.Quality.IsGood() && s.Value == 105
	})
	if p := c.Plan(); len(p.Excluded) != 0 {
		t.Errorf("still excluded: %+v", p.Excluded)
	}
}

// A handler that stalls: requests time out and points go bad; when the
// device answers again the next reads succeed on the same connection
// (recovery drops the late replies).
func TestStalledHandler(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	var tb table
	dev.setHR(1, 0, regs(42))
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	cfg := baseConfig(srv.addr, &tb)
	cfg.Timeout = 100 * time.Millisecond
	reg := prometheus.NewRegistry()
	c, err := New(cfg, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	good := func(get func(string) (model.Sample, bool)) bool {
		s, ok := get("pcs.T.1")
		return ok && s.Quality.IsGood() && s.Value == 42
	}
	sink.waitFor(t, wait, "first value", good)
	stall := make(chan struct{})
	dev.mu.Lock()
	dev.stall = stall
	dev.mu.Unlock()
	sink.waitFor(t, wait, "bad quality", func(get func(string) (model.Sample, bool)) bool {
		s, ok := get("pcs.T.1")
		return ok && s.Quality == model.Bad(model.ReasonCommFailure) && s.Value == 42
	})
	dev.mu.Lock()
	dev.stall = nil
	dev.hr(1, 0, 43)
	dev.mu.Unlock()
	close(stall)
	sink.waitFor(t, wait, "recovery", func(get func(string) (model.Sample, bool)) bool {
		s, ok := get("pcs.T.1")
		return ok && s.Quality.IsGood() && s.Value == 43
	})
	if n := metricValue(t, c.met.errors.WithLabelValues("timeout", "")); n < 1 {
		t.Errorf("timeouts counted: %v", n)
	}
}

// The server stops and starts again: quality goes bad, then good after the
// reconnect; the reconnect is counted.
func TestServerRestart(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	var tb table
	dev.setHR(1, 0, regs(7))
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	reg := prometheus.NewRegistry()
	c, err := New(baseConfig(srv.addr, &tb), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	q := func(want model.Quality) func(get func(string) (model.Sample, bool)) bool {
		return func(get func(string) (model.Sample, bool)) bool {
			s, ok := get("pcs.T.1")
			return ok && s.Quality == want
		}
	}
	sink.waitFor(t, wait, "good", q(model.Good))
	srv.stop()
	sink.waitFor(t, wait, "bad after stop", q(model.Bad(model.ReasonCommFailure)))
	if up := metricValue(t, c.met.linkUp); up != 0 {
		t.Errorf("link_up = %v while down", up)
	}
	srv.start()
	sink.waitFor(t, wait, "good after restart", q(model.Good))
	if n := metricValue(t, c.met.reconnect); n != 1 {
		t.Errorf("reconnects = %v, want 1", n)
	}
}

// Busy replies (exception 6) are retried; a unit that fails does not stop
// another unit on the same link.
func TestBusyRetryAndDeadUnit(t *testing.T) {
	dev := newTestDevice(1) // unit 9 does not exist: exception 11
	srv := startServer(t, dev)
	var tb table
	dev.setHR(1, 0, regs(5))
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "9", "function_code", "3", "register_address", "0")
	dev.busy = 2
	cfg := baseConfig(srv.addr, &tb)
	cfg.BusyBackoff = time.Millisecond
	cfg.Interval = time.Hour // one cycle only
	c, err := New(cfg, WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	sink.waitFor(t, wait, "both points", func(get func(string) (model.Sample, bool)) bool {
		_, a := get("pcs.T.1")
		_, b := get("pcs.T.2")
		return a && b
	})
	if s, _ := sink.get("pcs.T.1"); !s.Quality.IsGood() || s.Value != 5 {
		t.Errorf("busy-retried point: %v", s)
	}
	if s, _ := sink.get("pcs.T.2"); s.Quality != model.Bad(model.ReasonCommFailure) {
		t.Errorf("dead unit point: %v", s)
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if dev.busy != 0 {
		t.Errorf("busy replies left: %d", dev.busy)
	}
	// errors by exception code: two busy replies, one gateway-target failure
	if n := metricValue(t, c.met.errors.WithLabelValues("exception", "6")); n != 2 {
		t.Errorf("busy exceptions counted: %v", n)
	}
	if n := metricValue(t, c.met.errors.WithLabelValues("exception", "11")); n != 1 {
		t.Errorf("exception 11 counted: %v", n)
	}
}

func (d *testDevice) hr(unit uint8, addr uint16, v uint16) { d.units[unit].hr[addr] = v }

// Writes: FC 5, 6, 15, 16; validation before sending; pulses; read-back;
// result events.
func TestWrites(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 1, Kind: model.Control}, "slave_id", "1", "function_code", "5", "register_address", "3", "verify", "true")
	tb.add(t, model.Point{ID: 2, Kind: model.Control, OnValue: 0xA5, OffValue: 0x5A}, "slave_id", "1", "function_code", "6", "register_address", "20")
	tb.add(t, model.Point{ID: 3, Kind: model.Control}, "slave_id", "1", "function_code", "15", "register_address", "4")
	tb.add(t, model.Point{ID: 4, Kind: model.Control, PulseMS: 30}, "slave_id", "1", "function_code", "5", "register_address", "5")
	tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 0.1, Min: -500, Max: 500, HasMin: true, HasMax: true, Step: 0.5},
		"slave_id", "1", "function_code", "16", "register_address", "30", "data_type", "int32", "byte_order", "CDAB", "verify", "true")
	tb.add(t, model.Point{ID: 2, Kind: model.Adjustment, Scale: 1}, "slave_id", "1", "function_code", "16", "register_address", "40", "data_type", "float32")
	tb.add(t, model.Point{ID: 3, Kind: model.Adjustment, Scale: 1, DataType: model.Uint16}, "slave_id", "1", "function_code", "6", "register_address", "50")
	var events []model.Event
	c, err := New(baseConfig(srv.addr, &tb), WithEvents(func(e model.Event) { events = append(events, e) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Before Run, a write goes to the device directly.
	if err := c.Write(ctx, model.Command{Point: "pcs.A.3", Value: 17}); err != nil {
		t.Errorf("write before Run: %v", err)
	}
	dev.mu.Lock()
	if v := dev.units[1].hr[50]; v != 17 {
		t.Errorf("write before Run: hr50 = %d", v)
	}
	dev.mu.Unlock()
	events = nil
	sink := newRecSink()
	run(t, c, sink)
	ok := []model.Command{
		{Point: "pcs.C.1", Value: 1, ID: "c1"},
		{Point: "pcs.C.2", Value: 1},
		{Point: "pcs.C.3", Value: 1},
		{Point: "pcs.A.1", Value: -123.5},
		{Point: "pcs.A.2", Value: 0.25},
		{Point: "pcs.A.3", Value: 65535},
	}
	for _, cmd := range ok {
		if err := c.Write(ctx, cmd); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
	}
	u := dev.unit(1)
	dev.mu.Lock()
	if !u.coils[3] || u.hr[20] != 0xA5 || !u.coils[4] || u.hr[50] != 65535 {
		t.Errorf("coil3=%v hr20=%#x coil4=%v hr50=%d", u.coils[3], u.hr[20], u.coils[4], u.hr[50])
	}
	// -1235 as int32, word-swapped (CDAB): low word first.
	if raw := int32(uint32(u.hr[31])<<16 | uint32(u.hr[30])); raw != -1235 {
		t.Errorf("A.1 raw = %d (%#x %#x), want -1235", raw, u.hr[30], u.hr[31])
	}
	if f := math.Float32frombits(uint32(u.hr[40])<<16 | uint32(u.hr[41])); f != 0.25 {
		t.Errorf("A.2 = %v", f)
	}
	nWrites := len(dev.writes)
	dev.mu.Unlock()

	// Rejected before anything is sent.
	bad := []struct {
		cmd  model.Command
		want error
	}{
		{model.Command{Point: "pcs.A.1", Value: 600}, model.ErrOutOfRange},
		{model.Command{Point: "pcs.A.1", Value: 0.3}, model.ErrBadStep},
		{model.Command{Point: "pcs.A.3", Value: 70000}, model.ErrOverflow},
		{model.Command{Point: "pcs.C.1", Value: 2}, model.ErrOutOfRange},
		{model.Command{Point: "pcs.T.1", Value: 1}, collect.ErrNotWritable},
		{model.Command{Point: "pcs.A.99", Value: 1}, collect.ErrUnknownPoint},
		{model.Command{Point: "bms.A.1", Value: 1}, collect.ErrUnknownPoint},
	}
	for _, b := range bad {
		if err := c.Write(ctx, b.cmd); !errors.Is(err, b.want) {
			t.Errorf("%v: got %v, want %v", b.cmd, err, b.want)
		}
	}
	dev.mu.Lock()
	if len(dev.writes) != nWrites {
		t.Errorf("rejected commands reached the device: %v", dev.writes[nWrites:])
	}
	dev.mu.Unlock()

	// A pulse: on, hold, off.
	if err := c.Write(ctx, model.Command{Point: "pcs.C.4", Value: 1}); err != nil {
		t.Fatal(err)
	}
	dev.mu.Lock()
	w := dev.writes[len(dev.writes)-2:]
	if w[0] != "coil 1/5=[true]" || w[1] != "coil 1/5=[false]" || u.coils[5] {
		t.Errorf("pulse writes %v", w)
	}
	dev.mu.Unlock()

	// Events: one per Write since Run began.
	want := len(ok) + len(bad) + 1
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	if e := events[0]; e.Kind != model.EventCommandExecuted || e.Attrs["command_id"] != "c1" || e.Point != "pcs.C.1" || e.Source != "modbus:pcs" {
		t.Errorf("first event %+v", e)
	}
	if e := events[len(ok)]; e.Kind != model.EventCommandFailed || e.Attrs["error"] == "" {
		t.Errorf("failed event %+v", e)
	}
}

// A device that answers a write with an exception: the error carries the
// code, and read-back verification catches a device that ignores writes.
func TestWriteExceptionAndVerify(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1}, "slave_id", "1", "function_code", "6", "register_address", "7", "data_type", "uint16")
	tb.add(t, model.Point{ID: 2, Kind: model.Adjustment, Scale: 1}, "slave_id", "1", "function_code", "6", "register_address", "8", "data_type", "uint16", "verify", "true")
	c, err := New(baseConfig(srv.addr, &tb))
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, newRecSink())
	dev.mu.Lock()
	dev.illegal[1] = map[uint16]bool{7: true}
	dev.mu.Unlock()
	err = c.Write(context.Background(), model.Command{Point: "pcs.A.1", Value: 3})
	var ee *ExceptionError
	if !errors.As(err, &ee) || ee.Code != ExceptionIllegalDataAddress || ee.Address != 7 {
		t.Errorf("write exception: %v", err)
	}
	dev.mu.Lock()
	dev.illegal[1] = nil
	dev.mu.Unlock()
	if err := c.Write(context.Background(), model.Command{Point: "pcs.A.2", Value: 9}); err != nil {
		t.Fatalf("verified write: %v", err)
	}
	// The device acknowledges writes to 8 but keeps its value: read-back
	// verification reports it.
	dev.mu.Lock()
	dev.ignore = map[uint16]bool{8: true}
	dev.mu.Unlock()
	if err := c.Write(context.Background(), model.Command{Point: "pcs.A.2", Value: 10}); !errors.Is(err, ErrVerify) {
		t.Errorf("ignored write: %v", err)
	}
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
