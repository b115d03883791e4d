package modbus

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/voltage-ems/ems/model"
)

func regs(words ...uint16) []byte {
	b := make([]byte, 2*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint16(b[2*i:], w)
	}
	return b
}

// The libmodbus unit-test.h vectors for 123456.0f (independent fixtures).
func TestDecodeFloat32LibmodbusVectors(t *testing.T) {
	cases := []struct {
		order string
		words []uint16
	}{
		{"ABCD", []uint16{0x47F1, 0x2000}},
		{"DCBA", []uint16{0x0020, 0xF147}},
		{"BADC", []uint16{0xF147, 0x0020}},
		{"CDAB", []uint16{0x2000, 0x47F1}},
	}
	for _, c := range cases {
		o, err := ParseByteOrder(c.order)
		if err != nil {
			t.Fatal(err)
		}
		v, err := DecodeRegisters(regs(c.words...), model.Float32, o)
		if err != nil || v != 123456.0 {
			t.Errorf("%s: got %v, %v; want 123456", c.order, v, err)
		}
		enc, err := EncodeRegisters(nil, 123456.0, model.Float32, o)
		if err != nil || string(enc) != string(regs(c.words...)) {
			t.Errorf("%s: encode got % x, %v; want % x", c.order, enc, err, regs(c.words...))
		}
	}
}

// Hand-written fixtures for every data type and byte order.
func TestDecodeAllTypesAndOrders(t *testing.T) {
	cases := []struct {
		dt    model.DataType
		order string
		words []uint16
		want  float64
	}{
		{model.Int16, "", []uint16{0xFFFE}, -2},
		{model.Int16, "AB", []uint16{0x8000}, -32768},
		{model.Int16, "BA", []uint16{0xFEFF}, -2},
		{model.Uint16, "", []uint16{0xFFFF}, 65535},
		{model.Uint16, "BA", []uint16{0x3412}, 0x1234},
		{model.Int32, "ABCD", []uint16{0xFFFF, 0xFFFE}, -2},
		{model.Int32, "DCBA", []uint16{0xFEFF, 0xFFFF}, -2},
		{model.Int32, "BADC", []uint16{0x3412, 0x7856}, 0x12345678},
		{model.Int32, "CDAB", []uint16{0x5678, 0x1234}, 0x12345678},
		{model.Uint32, "ABCD", []uint16{0xDEAD, 0xBEEF}, 0xDEADBEEF},
		{model.Uint32, "DCBA", []uint16{0xEFBE, 0xADDE}, 0xDEADBEEF},
		{model.Uint32, "BADC", []uint16{0xADDE, 0xEFBE}, 0xDEADBEEF},
		{model.Uint32, "CDAB", []uint16{0xBEEF, 0xDEAD}, 0xDEADBEEF},
		{model.Float32, "", []uint16{0xC2F6, 0xE979}, float64(float32(-123.456))},
		// 123456.0 as float64 is 0x40FE240000000000.
		{model.Float64, "ABCDEFGH", []uint16{0x40FE, 0x2400, 0x0000, 0x0000}, 123456},
		{model.Float64, "HGFEDCBA", []uint16{0x0000, 0x0000, 0x0024, 0xFE40}, 123456},
		{model.Float64, "BADCFEHG", []uint16{0xFE40, 0x0024, 0x0000, 0x0000}, 123456},
		{model.Float64, "GHEFCDAB", []uint16{0x0000, 0x0000, 0x2400, 0x40FE}, 123456},
		{model.Float64, "CDAB", []uint16{0x0000, 0x0000, 0x2400, 0x40FE}, 123456},
		{model.Int64, "ABCD", []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD}, -3},
		{model.Int64, "DCBA", []uint16{0xFDFF, 0xFFFF, 0xFFFF, 0xFFFF}, -3},
		{model.Int64, "BADC", []uint16{0x0100, 0x0000, 0x0000, 0x0000}, 1 << 48},
		{model.Int64, "CDAB", []uint16{0x0000, 0x0000, 0x0000, 0x0001}, 1 << 48},
		{model.Uint64, "ABCD", []uint16{0x0000, 0x0001, 0x0000, 0x0000}, 1 << 32},
		{model.Uint64, "DCBA", []uint16{0x0000, 0x0000, 0x0100, 0x0000}, 1 << 32},
		{model.Uint64, "BADC", []uint16{0x0000, 0x0100, 0x0000, 0x0000}, 1 << 32},
		{model.Uint64, "CDAB", []uint16{0x0000, 0x0000, 0x0001, 0x0000}, 1 << 32},
		{model.Bool, "", []uint16{0x0100}, 1},
		{model.Bool, "", []uint16{0x0000}, 0},
	}
	for _, c := range cases {
		o, err := ParseByteOrder(c.order)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRegisters(regs(c.words...), c.dt, o)
		if err != nil || got != c.want {
			t.Errorf("%s %s % x: got %v, %v; want %v", c.dt, c.order, c.words, got, err, c.want)
			continue
		}
		if c.dt == model.Bool {
			continue
		}
		enc, err := EncodeRegisters(nil, c.want, c.dt, o)
		if err != nil || string(enc) != string(regs(c.words...)) {
			t.Errorf("%s %s: encode %v got % x, %v; want % x", c.dt, c.order, c.want, enc, err, regs(c.words...))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := DecodeRegisters([]byte{1, 2, 3}, model.Float32, OrderABCD); !errors.Is(err, ErrMalformed) {
		t.Errorf("short float32: %v", err)
	}
	if _, err := DecodeRegisters(regs(1, 2), model.Int32, OrderAB); !errors.Is(err, ErrConfig) {
		t.Errorf("AB on int32: %v", err)
	}
	if _, err := DecodeRegisters(regs(1), model.Int16, OrderABCD); !errors.Is(err, ErrConfig) {
		t.Errorf("ABCD on int16: %v", err)
	}
	if _, err := DecodeRegisters(nil, model.Bool, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty bool: %v", err)
	}
	if _, err := DecodeBit(regs(1), 16); !errors.Is(err, ErrConfig) {
		t.Errorf("bit 16: %v", err)
	}
	if _, err := ParseByteOrder("ABDC"); err == nil {
		t.Error("ABDC accepted")
	}
}

func TestDecodeBitAndString(t *testing.T) {
	for pos := uint8(0); pos < 16; pos++ {
		on, err := DecodeBit(regs(1<<pos), pos)
		if err != nil || !on {
			t.Errorf("bit %d of %#x: %v %v", pos, 1<<pos, on, err)
		}
		on, _ = DecodeBit(regs(^uint16(1<<pos)), pos)
		if on {
			t.Errorf("bit %d of %#x set", pos, ^uint16(1<<pos))
		}
	}
	s, err := DecodeString([]byte("V1.25\x00\x00\x00"), 8, OrderAB)
	if err != nil || s != "V1.25" {
		t.Errorf("string: %q %v", s, err)
	}
	s, err = DecodeString([]byte("1V2.\x005"), 5, OrderBA)
	if err != nil || s != "V1.25" {
		t.Errorf("swapped string: %q %v", s, err)
	}
	if _, err := DecodeString([]byte("ab"), 3, OrderAB); !errors.Is(err, ErrMalformed) {
		t.Errorf("short string: %v", err)
	}
}

var allOrders = []ByteOrder{OrderDefault, OrderAB, OrderBA, OrderABCD, OrderDCBA, OrderBADC, OrderCDAB}
var numericTypes = []model.DataType{model.Int16, model.Uint16, model.Int32, model.Uint32, model.Int64, model.Uint64, model.Float32, model.Float64}

// FuzzDecodeRegisters: any bytes, type and order decode without panic;
// a decoded integer re-encodes to the same bytes, and a short input is an
// error, never a value.
func FuzzDecodeRegisters(f *testing.F) {
	f.Add([]byte{0x47, 0xF1, 0x20, 0x00}, uint8(7), uint8(3))
	f.Add([]byte{0x00, 0x20, 0xF1, 0x47}, uint8(7), uint8(4))
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD}, uint8(4), uint8(6))
	f.Add([]byte{0x80}, uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, ti, oi uint8) {
		dt := numericTypes[int(ti)%len(numericTypes)]
		o := allOrders[int(oi)%len(allOrders)]
		v, err := DecodeRegisters(b, dt, o)
		n := dt.Bits() / 8
		if len(b) < n {
			if err == nil {
				t.Fatalf("%d bytes decoded as %s = %v", len(b), dt, v)
			}
			return
		}
		if !o.validFor(n) {
			if err == nil {
				t.Fatalf("order %s accepted for %s", o, dt)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode %s %s % x: %v", dt, o, b, err)
		}
		if dt == model.Float32 || dt == model.Float64 {
			if math.IsNaN(v) {
				return
			}
		} else if dt == model.Int64 || dt == model.Uint64 {
			if math.Abs(v) >= 1<<53 {
				return // float64 cannot hold it exactly
			}
		}
		enc, err := EncodeRegisters(nil, v, dt, o)
		if err != nil {
			t.Fatal(err)
		}
		if string(enc) != string(b[:n]) {
			t.Fatalf("%s %s: % x decoded %v re-encoded % x", dt, o, b[:n], v, enc)
		}
	})
}

// BenchmarkDecode decodes a mix of 16-, 32- and 64-bit values in several
// byte orders and reports ns per value.
func BenchmarkDecode(b *testing.B) {
	data := regs(0x47F1, 0x2000, 0x1234, 0x5678, 0x0000, 0x0000, 0x2400, 0x40FE, 0xFFFE)
	cases := []struct {
		off int
		dt  model.DataType
		o   ByteOrder
	}{{0, model.Float32, OrderABCD}, {0, model.Float32, OrderCDAB}, {2, model.Int32, OrderDCBA}, {4, model.Float64, OrderCDAB}, {8, model.Int16, OrderDefault}, {2, model.Uint16, OrderBA}}
	b.ReportAllocs()
	vals := 0
	sum := 0.0
	for b.Loop() {
		for _, c := range cases {
			v, err := DecodeRegisters(data[2*c.off:], c.dt, c.o)
			if err != nil {
				b.Fatal(err)
			}
			sum += v
			vals++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(vals), "ns/value")
	if sum == 0 {
		b.Fatal("no values")
	}
}

// FuzzDecodeReply: a reply of any length decoded for points at any offset,
// type, order and bit never panics; a reply too short for a point is an
// error, not a value.
func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte{0x47, 0xF1, 0x20, 0x00}, uint8(3), uint16(0), uint8(7), uint8(3), int8(-1), uint8(0))
	f.Add([]byte{0xFF}, uint8(1), uint16(9), uint8(0), uint8(0), int8(-1), uint8(0))
	f.Add([]byte("ab"), uint8(4), uint16(0), uint8(0), uint8(0), int8(3), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, fc uint8, off uint16, ti, oi uint8, bit int8, strLen uint8) {
		fc = fc%4 + 1
		m := Mapping{Function: fc, Bit: -1, DataType: numericTypes[int(ti)%len(numericTypes)], ByteOrder: allOrders[int(oi)%len(allOrders)]}
		if isBitFunction(fc) {
			m.DataType = model.Bool
		} else if bit >= 0 {
			m.DataType, m.Bit = model.Bool, int(bit)%16
		} else if strLen > 0 && ti%5 == 0 {
			m.DataType, m.Length, m.ByteOrder = model.String, int(strLen), OrderAB
		}
		b := &boundPoint{id: "x.T.1", m: m}
		r := Request{Function: fc, Address: 0, Quantity: off + uint16(m.Registers())}
		p := PointRead{ID: b.id, Offset: int(off), b: b}
		v, err := decodePoint(&r, &p, data)
		var need int
		if isBitFunction(fc) {
			need = int(off)/8 + 1
		} else {
			need = 2 * (int(off) + m.Registers())
		}
		if len(data) < need && err == nil {
			t.Fatalf("%d bytes, need %d: decoded %v", len(data), need, v)
		}
	})
}
