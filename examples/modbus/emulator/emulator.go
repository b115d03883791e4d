// Package emulator is an in-process Modbus TCP server emulating a battery
// site's PCS (unit 1) and BMS (unit 2) register maps, for the modbus
// example and the quickstart. The register maps match the point tables in
// examples/modbus/pcs and examples/modbus/bms.
package emulator

import (
	"encoding/binary"
	"io"
	"log"
	"math"
	"net"
	"sync"
	"time"

	sv "github.com/simonvetter/modbus"
)

// Unit ids of the emulated devices.
const (
	PCSUnit = 1
	BMSUnit = 2
)

// Emulator serves the registers and runs a small battery model: the PCS
// ramps its active power toward the setpoint while running, the BMS state
// of charge follows the energy exchanged.
type Emulator struct {
	mu   sync.Mutex
	srv  *sv.ModbusServer
	addr string
	stop chan struct{}
	done chan struct{}

	hr, ir      map[uint8]*[1024]uint16
	coils, di   map[uint8]*[64]bool
	power       float64 // kW, + = discharge
	setpoint    float64 // kW
	soc         float64 // %
	capacityKWh float64
	lastStep    time.Time
	running     bool
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and starts the
// model. Close stops both.
func Start(addr string) (*Emulator, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// simonvetter/modbus cannot report the port it bound: pick one first.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	addr = l.Addr().String()
	l.Close()
	e := &Emulator{addr: addr, stop: make(chan struct{}), done: make(chan struct{}),
		hr: map[uint8]*[1024]uint16{PCSUnit: {}, BMSUnit: {}}, ir: map[uint8]*[1024]uint16{PCSUnit: {}, BMSUnit: {}},
		coils: map[uint8]*[64]bool{PCSUnit: {}, BMSUnit: {}}, di: map[uint8]*[64]bool{PCSUnit: {}, BMSUnit: {}},
		soc: 62.5, capacityKWh: 1000, running: true, lastStep: time.Now()}
	e.coils[PCSUnit][0] = true
	e.update(0)
	e.srv, err = sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 16, Logger: log.New(io.Discard, "", 0)}, e)
	if err != nil {
		return nil, err
	}
	if err := e.srv.Start(); err != nil {
		return nil, err
	}
	go e.loop()
	return e, nil
}

// Addr is the host:port the emulator listens on.
func (e *Emulator) Addr() string { return e.addr }

// Close stops the server and the model.
func (e *Emulator) Close() error {
	close(e.stop)
	<-e.done
	return e.srv.Stop()
}

func (e *Emulator) loop() {
	defer close(e.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.mu.Lock()
			dt := now.Sub(e.lastStep).Seconds()
			e.lastStep = now
			e.update(dt)
			e.mu.Unlock()
		}
	}
}

// update advances the model by dt seconds and writes the registers.
// Caller holds e.mu (or is Start).
func (e *Emulator) update(dt float64) {
	pcs, bms := e.ir[PCSUnit], e.ir[BMSUnit]
	e.running = e.coils[PCSUnit][0]
	raw := int32(binary.BigEndian.Uint32([]byte{byte(e.hr[PCSUnit][101] >> 8), byte(e.hr[PCSUnit][101]), byte(e.hr[PCSUnit][100] >> 8), byte(e.hr[PCSUnit][100])}))
	e.setpoint = float64(raw) * 0.1 // int32 CDAB × 0.1 kW
	target := 0.0
	if e.running {
		target = e.setpoint
	}
	step := 50 * dt // kW/s ramp
	switch {
	case e.power < target-step:
		e.power += step
	case e.power > target+step:
		e.power -= step
	default:
		e.power = target
	}
	e.soc -= e.power * dt / 3600 / e.capacityKWh * 100
	e.soc = math.Max(0, math.Min(100, e.soc))
	packV := 760 + 0.8*e.soc
	current := e.power * 1000 / packV
	// PCS input registers
	pcs[0] = uint16(packV * 10)
	pcs[1] = uint16(int16(current * 10))
	putF32(pcs[2:], float32(e.power))
	putF32(pcs[4:], float32(e.power*0.05))
	pcs[6] = uint16(5000 + 2*math.Sin(float64(time.Now().UnixMilli())/7000))
	pcs[7] = uint16((35 + math.Abs(e.power)/50 + 40) * 10)
	status := uint16(0)
	if e.running {
		status |= 1
	}
	status |= 1 << 2 // grid connected
	pcs[20] = status
	// BMS input registers
	bms[0] = uint16(packV * 10)
	bms[1] = uint16(int16(-current * 10))
	bms[2] = uint16(e.soc * 10)
	bms[3] = 987
	bms[4] = uint16(3300 + 2*e.soc)
	bms[5] = uint16(3290 + 2*e.soc)
	bms[6] = uint16(int16((25 + math.Abs(current)/100) * 10))
	putF32CDAB(bms[8:], float32(e.soc/100*e.capacityKWh))
	d := e.di[BMSUnit]
	d[0] = true
	d[1] = false
	d[2] = e.soc < 10
	d[3] = e.soc > 95
}

func putF32(r []uint16, f float32) {
	b := math.Float32bits(f)
	r[0], r[1] = uint16(b>>16), uint16(b)
}

func putF32CDAB(r []uint16, f float32) {
	b := math.Float32bits(f)
	r[0], r[1] = uint16(b), uint16(b>>16)
}

func (e *Emulator) check(unit uint8, addr, qty uint16, size int) error {
	if unit != PCSUnit && unit != BMSUnit {
		return sv.ErrGWTargetFailedToRespond
	}
	if int(addr)+int(qty) > size {
		return sv.ErrIllegalDataAddress
	}
	return nil
}

// HandleCoils implements sv.RequestHandler.
func (e *Emulator) HandleCoils(r *sv.CoilsRequest) ([]bool, error) {
	if err := e.check(r.UnitId, r.Addr, r.Quantity, 64); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.coils[r.UnitId]
	if r.IsWrite {
		copy(c[r.Addr:], r.Args)
		return nil, nil
	}
	return append([]bool(nil), c[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleDiscreteInputs implements sv.RequestHandler.
func (e *Emulator) HandleDiscreteInputs(r *sv.DiscreteInputsRequest) ([]bool, error) {
	if err := e.check(r.UnitId, r.Addr, r.Quantity, 64); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bool(nil), e.di[r.UnitId][r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleHoldingRegisters implements sv.RequestHandler.
func (e *Emulator) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	if err := e.check(r.UnitId, r.Addr, r.Quantity, 1024); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.hr[r.UnitId]
	if r.IsWrite {
		copy(h[r.Addr:], r.Args)
		return nil, nil
	}
	return append([]uint16(nil), h[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleInputRegisters implements sv.RequestHandler.
func (e *Emulator) HandleInputRegisters(r *sv.InputRegistersRequest) ([]uint16, error) {
	if err := e.check(r.UnitId, r.Addr, r.Quantity, 1024); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]uint16(nil), e.ir[r.UnitId][r.Addr:r.Addr+r.Quantity]...), nil
}

// Power returns the PCS active power (kW) and the BMS state of charge (%).
func (e *Emulator) Power() (kW, soc float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.power, e.soc
}
