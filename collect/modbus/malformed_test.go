package modbus

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

// rawServer answers Modbus TCP requests with hand-made frames: the faults
// a conforming server cannot produce (wrong byte count, short data, bad
// header length). reply builds the response PDU for request n.
func rawServer(t *testing.T, reply func(n int, req []byte) (mbap []byte, pdu []byte)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					h := make([]byte, 7)
					if _, err := io.ReadFull(c, h); err != nil {
						return
					}
					body := make([]byte, int(binary.BigEndian.Uint16(h[4:]))-1)
					if _, err := io.ReadFull(c, body); err != nil {
						return
					}
					mu.Lock()
					n++
					i := n
					mu.Unlock()
					mbap, pdu := reply(i, append(h, body...))
					if mbap == nil {
						mbap = append([]byte(nil), h...)
						binary.BigEndian.PutUint16(mbap[4:], uint16(len(pdu)+1))
					}
					if _, err := c.Write(append(mbap, pdu...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// Replies with the wrong byte count, short data or a broken header become
// errors and bad quality, never a panic or a wrong value; good replies
// afterwards are decoded again.
func TestMalformedReplies(t *testing.T) {
	good := func(req []byte) []byte { // FC 3, qty from the request, values 0x0102...
		qty := int(binary.BigEndian.Uint16(req[10:]))
		pdu := []byte{3, byte(2 * qty)}
		for i := 0; i < qty; i++ {
			pdu = append(pdu, 1, 2)
		}
		return pdu
	}
	faults := []func(req []byte) ([]byte, []byte){
		func(req []byte) ([]byte, []byte) { p := good(req); p[1]++; return nil, p },               // byte count says more than sent
		func(req []byte) ([]byte, []byte) { p := good(req); return nil, p[:len(p)-2] },            // data shorter than quantity
		func(req []byte) ([]byte, []byte) { p := good(req); p[1] -= 2; return nil, p[:len(p)-2] }, // consistent but too short
		func(req []byte) ([]byte, []byte) { return nil, []byte{3} },                               // no byte count at all
		func(req []byte) ([]byte, []byte) { return nil, []byte{0x83} },                            // exception without code
	}
	addr := rawServer(t, func(n int, req []byte) ([]byte, []byte) {
		if n >= 2 && n-2 < len(faults) {
			return faults[n-2](req)
		}
		return nil, good(req)
	})
	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "0", "data_type", "uint32")
	cfg := baseConfig(addr, &tb)
	cfg.Timeout = 200 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	// good, then bad for the faults, then good again
	sink.waitFor(t, wait, "recovery after the faults", func(func(string) (model.Sample, bool)) bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		sawBad := false
		for _, s := range sink.all {
			if s.Quality == model.Bad(model.ReasonCommFailure) {
				sawBad = true
			} else if sawBad && s.Quality.IsGood() {
				return true
			}
		}
		return false
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, s := range sink.all {
		if s.Quality.IsGood() && s.Value != 0x01020102 {
			t.Errorf("wrong value published as good: %v", s)
		}
	}
}
