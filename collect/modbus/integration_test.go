package modbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

// integration skips unless EMS_INTEGRATION=1.
func integration(t *testing.T) {
	t.Helper()
	if os.Getenv("EMS_INTEGRATION") != "1" {
		t.Skip("set EMS_INTEGRATION=1 to run against libmodbus and pymodbus servers (Debian packages libmodbus-dev, pkg-config, gcc, python3-pymodbus)")
	}
}

// libmodbusExamples is where Debian's libmodbus-dev ships the unit-test
// server source.
const libmodbusExamples = "/usr/share/doc/libmodbus-dev/examples"

// startLibmodbusServer builds libmodbus' unit-test-server with gcc, patched
// to listen on a free port instead of the fixed 1502, and starts it. The
// server accepts exactly one connection.
func startLibmodbusServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(libmodbusExamples, "unit-test-server.c"))
	if err != nil {
		t.Fatalf("libmodbus-dev examples: %v", err)
	}
	hdr, err := os.ReadFile(filepath.Join(libmodbusExamples, "unit-test.h"))
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	patched := strings.Replace(string(src), `modbus_new_tcp("127.0.0.1", 1502)`, `modbus_new_tcp("127.0.0.1", `+port+`)`, 1)
	if patched == string(src) {
		t.Fatal("unit-test-server.c: listen address not found")
	}
	if err := os.WriteFile(filepath.Join(dir, "unit-test-server.c"), []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "unit-test.h"), hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libmodbus").Output()
	if err != nil {
		t.Fatalf("pkg-config libmodbus: %v", err)
	}
	args := append([]string{"-o", filepath.Join(dir, "server"), filepath.Join(dir, "unit-test-server.c")}, strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "server"), "tcp")
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("libmodbus server output (tail):\n%s", b)
		}
	})
	// The server accepts a single connection, so readiness is checked
	// without connecting: wait for the port to be in LISTEN state.
	waitListening(t, port)
	return addr
}

// waitListening polls /proc/net/tcp until a socket listens on port.
func waitListening(t *testing.T, port string) {
	t.Helper()
	var p int
	fmt.Sscan(port, &p)
	want := fmt.Sprintf(":%04X ", p)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1]+" ", want) && f[3] == "0A" {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("nothing listens on port %s", port)
		}
	}
}

// Against libmodbus' unit-test server: reads of input registers and
// discrete inputs with libmodbus' own fixtures, a float32 CDAB write read
// back, a coil write read back, the busy register (0x170), the 500 ms
// register (0x172) with a 300 ms timeout (the late reply is dropped and the
// connection kept), libmodbus' wrong-count reply to 2-register reads, and
// an address outside the map, all on the single connection the server
// accepts. The wrong-transaction-id register (0x171) is tested separately
// because grid-x closes the connection after it, which ends this server.
func TestLibmodbusUnitTestServer(t *testing.T) {
	integration(t)
	addr := startLibmodbusServer(t)
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "17", "function_code", "4", "register_address", fmt.Sprint(0x108))
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x160), "data_type", "float32", "byte_order", "CDAB")
	tb.add(t, model.Point{ID: 3, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x170))
	tb.add(t, model.Point{ID: 7, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x162))
	tb.add(t, model.Point{ID: 5, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x172))
	tb.add(t, model.Point{ID: 6, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x180))
	// UT_INPUT_BITS_TAB: 0xAC, least significant bit first.
	wantBits := []float64{0, 0, 1, 1, 0, 1, 0, 1}
	for i := range wantBits {
		tb.add(t, model.Point{ID: uint32(1 + i), Kind: model.Signal}, "slave_id", "17", "function_code", "2", "register_address", fmt.Sprint(0x1C4+i))
	}
	tb.add(t, model.Point{ID: 9, Kind: model.Signal}, "slave_id", "17", "function_code", "1", "register_address", fmt.Sprint(0x130))
	tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1}, "slave_id", "17", "function_code", "16", "register_address", fmt.Sprint(0x160), "data_type", "float32", "byte_order", "CDAB")
	tb.add(t, model.Point{ID: 2, Kind: model.Adjustment, Scale: 1}, "slave_id", "17", "function_code", "16", "register_address", fmt.Sprint(0x164), "data_type", "float32", "verify", "true")
	tb.add(t, model.Point{ID: 1, Kind: model.Control}, "slave_id", "17", "function_code", "5", "register_address", fmt.Sprint(0x130), "verify", "true")
	cfg := baseConfig(addr, &tb)
	cfg.Channel = "ut"
	cfg.Timeout = 300 * time.Millisecond
	// A cycle takes over 300 ms (the 500 ms register times out), so the
	// interval must be long enough for points not to go stale between reads.
	cfg.Interval = 400 * time.Millisecond
	// libmodbus triggers its specials on a request's first address, and
	// answers every 2-register read of holding registers with a wrong count:
	// join adjacent registers only, so 0x160-0x162 is one 3-register read
	// and 0x170 and 0x172 start their own.
	cfg.Limits.MaxGap = -1
	cfg.BusyRetries, cfg.BusyBackoff = 2, 10*time.Millisecond
	c, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	ctx := context.Background()
	if err := c.Write(ctx, model.Command{Point: "ut.A.1", Value: 123456}); err != nil {
		t.Fatalf("float32 write: %v", err)
	}
	if err := c.Write(ctx, model.Command{Point: "ut.C.1", Value: 1}); err != nil {
		t.Fatalf("coil write: %v", err)
	}
	// The read-back of a 2-register value gets libmodbus' wrong-count reply:
	// a verification error, not a wrong value.
	if err := c.Write(ctx, model.Command{Point: "ut.A.2", Value: 1.5}); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("read-back against a wrong-count reply: %v", err)
	}
	sink.waitFor(t, wait, "libmodbus values", func(get func(string) (model.Sample, bool)) bool {
		a, _ := get("ut.T.2")
		b, _ := get("ut.S.9")
		x, _ := get("ut.T.1")
		return a.Value == 123456 && a.Quality.IsGood() && b.Value == 1 && x.Value == 10
	})
	for i, w := range wantBits {
		if s, _ := sink.get(fmt.Sprintf("ut.S.%d", i+1)); s.Value != w || !s.Quality.IsGood() {
			t.Errorf("input bit %d: %v, want %v", i, s, w)
		}
	}
	for _, id := range []string{"ut.T.3", "ut.T.5"} {
		if s, ok := sink.get(id); !ok || s.Quality != model.Bad(model.ReasonCommFailure) {
			t.Errorf("%s: %v (want bad:comm_failure)", id, s)
		}
	}
	if s, _ := sink.get("ut.T.6"); s.Quality != model.Bad(model.ReasonConfig) {
		t.Errorf("address outside the map: %v", s)
	}
	if p := c.Plan(); len(p.Excluded) != 1 || p.Excluded[0].Point != "ut.T.6" {
		t.Errorf("excluded: %+v", p.Excluded)
	}
	// Several more cycles over the faults keep the good points good.
	n := len(sink.all)
	sink.waitFor(t, wait, "more cycles", func(func(string) (model.Sample, bool)) bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.all) > n+3*17
	})
	if s, _ := sink.get("ut.T.1"); !s.Quality.IsGood() || s.Value != 10 {
		t.Errorf("after faults: %v", s)
	}
}

// The wrong-transaction-id register: the reply is rejected (bad quality,
// never a value). grid-x re-sends the request until the protocol recovery
// timeout and then closes the connection, and libmodbus' test server exits
// with it, so afterwards the link is down and every point is bad.
func TestLibmodbusWrongTransactionID(t *testing.T) {
	integration(t)
	addr := startLibmodbusServer(t)
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "17", "function_code", "4", "register_address", fmt.Sprint(0x108))
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "17", "function_code", "3", "register_address", fmt.Sprint(0x171), "interval", "1h")
	cfg := baseConfig(addr, &tb)
	cfg.Channel = "ut"
	cfg.Timeout = 300 * time.Millisecond
	cfg.Interval = 100 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	sink.waitFor(t, wait, "wrong-TID point bad", func(get func(string) (model.Sample, bool)) bool {
		s, ok := get("ut.T.2")
		return ok && s.Quality == model.Bad(model.ReasonCommFailure)
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, s := range sink.all {
		if s.Point == "ut.T.2" && s.Quality.IsGood() {
			t.Errorf("wrong-TID reply published as good: %v", s)
		}
		if s.Point == "ut.T.1" && s.Quality.IsGood() && s.Value != 10 {
			t.Errorf("wrong value %v", s)
		}
	}
}

// RTU-over-TCP against pymodbus (Debian's python3-pymodbus) serving two
// unit ids behind one gateway connection: both units are polled in turn on
// the one link, a float32 in each byte order, coils, input registers, and
// a register write read back.
func TestPymodbusRTUOverTCP(t *testing.T) {
	integration(t)
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	script, err := filepath.Abs(filepath.Join("testdata", "pymodbus_rtu_over_tcp.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script, port)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pymodbus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pymodbus output:\n%s", out.String())
		}
	})
	waitListening(t, port)

	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "2", "data_type", "float32", "byte_order", "ABCD")
	tb.add(t, model.Point{ID: 3, Kind: model.Telemetry}, "slave_id", "2", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 4, Kind: model.Telemetry}, "slave_id", "2", "function_code", "3", "register_address", "2", "data_type", "float32", "byte_order", "CDAB")
	tb.add(t, model.Point{ID: 5, Kind: model.Telemetry, Scale: 10}, "slave_id", "2", "function_code", "4", "register_address", "1")
	tb.add(t, model.Point{ID: 1, Kind: model.Signal}, "slave_id", "1", "function_code", "1", "register_address", "0")
	tb.add(t, model.Point{ID: 2, Kind: model.Signal}, "slave_id", "1", "function_code", "1", "register_address", "1")
	tb.add(t, model.Point{ID: 3, Kind: model.Signal}, "slave_id", "1", "function_code", "1", "register_address", "2")
	tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1}, "slave_id", "2", "function_code", "16", "register_address", "10", "data_type", "int32", "verify", "true")
	cfg := baseConfig(addr, &tb)
	cfg.Channel = "gw"
	cfg.Transport = TransportRTUOverTCP
	cfg.Timeout = time.Second
	cfg.Interval = 100 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	want := map[string]float64{"gw.T.1": 1001, "gw.T.2": 123456, "gw.T.3": 2001, "gw.T.4": 123456, "gw.T.5": 80, "gw.S.1": 1, "gw.S.2": 0, "gw.S.3": 1}
	sink.waitFor(t, wait, "both units", func(get func(string) (model.Sample, bool)) bool {
		for id, v := range want {
			if s, ok := get(id); !ok || !s.Quality.IsGood() || s.Value != v {
				return false
			}
		}
		return true
	})
	if err := c.Write(context.Background(), model.Command{Point: "gw.A.1", Value: -70000}); err != nil {
		t.Errorf("write through the gateway: %v", err)
	}
}

// RTU on a serial line: pymodbus serves unit 3 on one end of a relayed
// pseudo-terminal pair, the collector opens the other end with grid-x's
// serial transport.
func TestPymodbusRTUSerial(t *testing.T) {
	integration(t)
	script, err := filepath.Abs(filepath.Join("testdata", "pymodbus_rtu_serial.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pymodbus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pymodbus stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "PTY "); ok {
				line <- p
			}
		}
		close(line)
	}()
	var path string
	select {
	case path = <-line:
	case <-time.After(10 * time.Second):
		t.Fatal("pymodbus did not report its pty")
	}
	if path == "" {
		t.Fatal("pymodbus exited")
	}
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "3", "function_code", "3", "register_address", "0")
	tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "3", "function_code", "3", "register_address", "2")
	tb.add(t, model.Point{ID: 1, Kind: model.Signal}, "slave_id", "3", "function_code", "2", "register_address", "0")
	cfg := baseConfig(path, &tb)
	cfg.Channel = "rtu"
	cfg.Transport = TransportRTU
	cfg.Serial = SerialConfig{BaudRate: 19200, Parity: "E"}
	cfg.Timeout = time.Second
	cfg.Interval = 200 * time.Millisecond
	c, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	want := map[string]float64{"rtu.T.1": 31, "rtu.T.2": 33, "rtu.S.1": 1}
	sink.waitFor(t, wait, "values over RTU", func(get func(string) (model.Sample, bool)) bool {
		for id, v := range want {
			if s, ok := get(id); !ok || !s.Quality.IsGood() || s.Value != v {
				return false
			}
		}
		return true
	})
}
