package modbus

import (
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"
)

// testDevice is the register map behind the in-process simonvetter/modbus
// server: four tables per unit, plus fault injection.
type testDevice struct {
	mu      sync.Mutex
	units   map[uint8]*unitMem
	illegal map[uint8]map[uint16]bool // unit -> holding/input addresses refused with exception 2
	busy    int                       // next n requests answer exception 6
	stall   chan struct{}             // when non-nil, requests block until it is closed
	stallU  map[uint8]bool            // units that stall (nil: all)
	reqs    int                       // requests served
	writes  []string
	ignore  map[uint16]bool // holding registers that accept writes but keep their value
}

type unitMem struct {
	coils, di [65536]bool
	hr, ir    [65536]uint16
}

func newTestDevice(units ...uint8) *testDevice {
	d := &testDevice{units: map[uint8]*unitMem{}, illegal: map[uint8]map[uint16]bool{}}
	for _, u := range units {
		d.units[u] = &unitMem{}
	}
	return d
}

func (d *testDevice) unit(id uint8) *unitMem {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.units[id]
}

func (d *testDevice) setHR(unit uint8, addr uint16, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 0; i+1 < len(b); i += 2 {
		d.units[unit].hr[int(addr)+i/2] = uint16(b[i])<<8 | uint16(b[i+1])
	}
}

func (d *testDevice) setIR(unit uint8, addr uint16, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 0; i+1 < len(b); i += 2 {
		d.units[unit].ir[int(addr)+i/2] = uint16(b[i])<<8 | uint16(b[i+1])
	}
}

// enter applies the fault injection for one request. It returns the unit's
// memory with d.mu held, or an error.
func (d *testDevice) enter(unit uint8, addr, qty uint16, regs bool) (*unitMem, error) {
	d.mu.Lock()
	st := d.stall
	stalls := st != nil && (d.stallU == nil || d.stallU[unit])
	d.mu.Unlock()
	if stalls {
		<-st
	}
	d.mu.Lock()
	d.reqs++
	m := d.units[unit]
	if m == nil {
		d.mu.Unlock()
		return nil, sv.ErrGWTargetFailedToRespond
	}
	if d.busy > 0 {
		d.busy--
		d.mu.Unlock()
		return nil, sv.ErrServerDeviceBusy
	}
	if regs {
		for a := int(addr); a < int(addr)+int(qty); a++ {
			if d.illegal[unit][uint16(a)] {
				d.mu.Unlock()
				return nil, sv.ErrIllegalDataAddress
			}
		}
	}
	return m, nil
}

func (d *testDevice) HandleCoils(r *sv.CoilsRequest) ([]bool, error) {
	m, err := d.enter(r.UnitId, r.Addr, r.Quantity, false)
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if r.IsWrite {
		copy(m.coils[r.Addr:], r.Args)
		d.writes = append(d.writes, fmt.Sprintf("coil %d/%d=%v", r.UnitId, r.Addr, r.Args))
		return nil, nil
	}
	return append([]bool(nil), m.coils[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (d *testDevice) HandleDiscreteInputs(r *sv.DiscreteInputsRequest) ([]bool, error) {
	m, err := d.enter(r.UnitId, r.Addr, r.Quantity, false)
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	return append([]bool(nil), m.di[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (d *testDevice) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	m, err := d.enter(r.UnitId, r.Addr, r.Quantity, true)
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if r.IsWrite {
		if !d.ignore[r.Addr] {
			copy(m.hr[r.Addr:], r.Args)
		}
		d.writes = append(d.writes, fmt.Sprintf("hr %d/%d=%x", r.UnitId, r.Addr, r.Args))
		return nil, nil
	}
	return append([]uint16(nil), m.hr[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (d *testDevice) HandleInputRegisters(r *sv.InputRegistersRequest) ([]uint16, error) {
	m, err := d.enter(r.UnitId, r.Addr, r.Quantity, true)
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	return append([]uint16(nil), m.ir[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

// testServer is a simonvetter/modbus TCP server on a free loopback port
// that can be stopped and started again on the same port.
type testServer struct {
	t    testing.TB
	addr string
	dev  *testDevice
	srv  *sv.ModbusServer
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startServer(t testing.TB, dev *testDevice) *testServer {
	t.Helper()
	s := &testServer{t: t, addr: freePort(t), dev: dev}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	var err error
	s.srv, err = sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + s.addr, Timeout: 30 * time.Second, MaxClients: 20,
		Logger: log.New(io.Discard, "", 0)}, s.dev)
	if err != nil {
		s.t.Fatal(err)
	}
	if err = s.srv.Start(); err != nil {
		s.t.Fatalf("start modbus server on %s: %v", s.addr, err)
	}
}

func (s *testServer) stop() {
	if s.srv != nil {
		s.srv.Stop()
		s.srv = nil
	}
}
