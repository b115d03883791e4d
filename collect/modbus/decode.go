package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/voltage-ems/ems/model"
)

// ByteOrder says how the bytes of a multi-register value are laid out on
// the wire. The letters name the bytes of the value from most to least
// significant (A is the most significant byte) in the order they arrive:
// ABCD is big-endian (the Modbus convention), DCBA little-endian, BADC
// big-endian words with swapped bytes, CDAB little-endian word order with
// big-endian bytes ("word swap"). The 64-bit orders are the same four
// patterns over eight bytes; a 4-letter order given for a 64-bit type is
// widened (ABCD → ABCDEFGH, DCBA → HGFEDCBA, BADC → BADCFEHG,
// CDAB → GHEFCDAB). 16-bit values accept AB (default) and BA only.
type ByteOrder uint8

// The byte orders.
const (
	OrderDefault ByteOrder = iota // big-endian for every width
	OrderAB                       // 16-bit big-endian
	OrderBA                       // 16-bit, bytes swapped
	OrderABCD                     // big-endian
	OrderDCBA                     // little-endian
	OrderBADC                     // big-endian words, bytes swapped in each word
	OrderCDAB                     // word swap: low word first
)

var orderNames = [...]string{"", "AB", "BA", "ABCD", "DCBA", "BADC", "CDAB"}

// String returns the 4-letter name ("ABCD"), "AB"/"BA" for 16-bit orders
// and "" for the default.
func (o ByteOrder) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("ByteOrder(%d)", uint8(o))
}

// ParseByteOrder parses a byte order name case-insensitively. It accepts
// the 2-, 4- and 8-letter forms (ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB)
// and the empty string for the default (big-endian).
func ParseByteOrder(s string) (ByteOrder, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return OrderDefault, nil
	case "AB":
		return OrderAB, nil
	case "BA":
		return OrderBA, nil
	case "ABCD", "ABCDEFGH", "BIG", "BE":
		return OrderABCD, nil
	case "DCBA", "HGFEDCBA", "LITTLE", "LE":
		return OrderDCBA, nil
	case "BADC", "BADCFEHG":
		return OrderBADC, nil
	case "CDAB", "GHEFCDAB":
		return OrderCDAB, nil
	}
	return 0, fmt.Errorf("unknown byte order %q (want ABCD, DCBA, BADC, CDAB, their 8-byte forms, or AB/BA for 16-bit values)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (o ByteOrder) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *ByteOrder) UnmarshalText(b []byte) error {
	v, err := ParseByteOrder(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// validFor reports whether o may be used with a value of n bytes.
func (o ByteOrder) validFor(n int) bool {
	switch o {
	case OrderDefault:
		return true
	case OrderAB, OrderBA:
		return n == 2
	case OrderABCD, OrderDCBA, OrderBADC, OrderCDAB:
		return n == 4 || n == 8
	}
	return false
}

// wireIndex returns, for a value of n bytes (2, 4 or 8) in order o, the
// wire position of the canonical (big-endian) byte i.
func (o ByteOrder) wireIndex(i, n int) int {
	switch o {
	case OrderBA, OrderDCBA:
		return n - 1 - i
	case OrderBADC:
		return i ^ 1
	case OrderCDAB:
		// words reversed, bytes inside each word kept
		w, b := i/2, i%2
		return (n/2-1-w)*2 + b
	}
	return i
}

// ErrShortData is wrapped when a reply holds fewer bytes than a value needs.
var errShortData = fmt.Errorf("%w: reply too short for the value", ErrMalformed)

// canonical copies the n bytes of a value from wire order into big-endian
// order in dst.
func canonical(dst, wire []byte, n int, o ByteOrder) {
	switch o {
	case OrderDefault, OrderAB, OrderABCD:
		copy(dst[:n], wire[:n])
		return
	}
	for i := 0; i < n; i++ {
		dst[i] = wire[o.wireIndex(i, n)]
	}
}

// DecodeRegisters decodes one numeric value of type t from the registers in
// b (raw big-endian bytes as received, 2 per register). It reads exactly
// the bytes the type needs from the start of b. Bool reads the low bit of
// the first register unless a bit position is given via DecodeBit.
// Int64 and Uint64 values beyond ±2^53 lose precision in float64.
func DecodeRegisters(b []byte, t model.DataType, o ByteOrder) (float64, error) {
	n := t.Bits() / 8
	switch t {
	case model.Bool:
		if len(b) < 2 {
			return 0, errShortData
		}
		if binary.BigEndian.Uint16(b) != 0 {
			return 1, nil
		}
		return 0, nil
	case model.String, model.TypeUnknown:
		return 0, fmt.Errorf("%w: %s is not a numeric register type", ErrConfig, t)
	}
	if len(b) < n {
		return 0, errShortData
	}
	if !o.validFor(n) {
		return 0, fmt.Errorf("%w: byte order %s does not fit %s", ErrConfig, o, t)
	}
	var c [8]byte
	canonical(c[:], b, n, o)
	switch t {
	case model.Int16:
		return float64(int16(binary.BigEndian.Uint16(c[:]))), nil
	case model.Uint16:
		return float64(binary.BigEndian.Uint16(c[:])), nil
	case model.Int32:
		return float64(int32(binary.BigEndian.Uint32(c[:]))), nil
	case model.Uint32:
		return float64(binary.BigEndian.Uint32(c[:])), nil
	case model.Int64:
		return float64(int64(binary.BigEndian.Uint64(c[:]))), nil
	case model.Uint64:
		return float64(binary.BigEndian.Uint64(c[:])), nil
	case model.Float32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(c[:]))), nil
	case model.Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(c[:])), nil
	}
	return 0, fmt.Errorf("%w: unsupported data type %s", ErrConfig, t)
}

// DecodeBit returns bit pos (0 = least significant) of the first register
// in b.
func DecodeBit(b []byte, pos uint8) (bool, error) {
	if len(b) < 2 {
		return false, errShortData
	}
	if pos > 15 {
		return false, fmt.Errorf("%w: bit position %d > 15", ErrConfig, pos)
	}
	return binary.BigEndian.Uint16(b)>>pos&1 == 1, nil
}

// DecodeString decodes n bytes of ASCII text from registers (2 characters
// per register, first character in the high byte, or in the low byte for
// OrderBA). Trailing NUL and space characters are removed.
func DecodeString(b []byte, n int, o ByteOrder) (string, error) {
	if n < 0 || len(b) < (n+1)/2*2 {
		return "", errShortData
	}
	buf := make([]byte, n)
	for i := 0; i < n; i++ {
		j := i
		if o == OrderBA {
			j = i ^ 1
		}
		buf[i] = b[j]
	}
	return strings.TrimRight(string(buf), "\x00 "), nil
}

// EncodeRegisters is the inverse of DecodeRegisters: it encodes raw (already
// rounded and range-checked) as type t in byte order o, appending the wire
// bytes to dst.
func EncodeRegisters(dst []byte, raw float64, t model.DataType, o ByteOrder) ([]byte, error) {
	n := t.Bits() / 8
	var c [8]byte
	switch t {
	case model.Bool:
		if raw != 0 {
			return append(dst, 0, 1), nil
		}
		return append(dst, 0, 0), nil
	case model.Int16:
		binary.BigEndian.PutUint16(c[:], uint16(int16(raw)))
	case model.Uint16:
		binary.BigEndian.PutUint16(c[:], uint16(raw))
	case model.Int32:
		binary.BigEndian.PutUint32(c[:], uint32(int32(raw)))
	case model.Uint32:
		binary.BigEndian.PutUint32(c[:], uint32(raw))
	case model.Int64:
		binary.BigEndian.PutUint64(c[:], uint64(int64(raw)))
	case model.Uint64:
		binary.BigEndian.PutUint64(c[:], uint64(raw))
	case model.Float32:
		binary.BigEndian.PutUint32(c[:], math.Float32bits(float32(raw)))
	case model.Float64:
		binary.BigEndian.PutUint64(c[:], math.Float64bits(raw))
	default:
		return dst, fmt.Errorf("%w: cannot encode %s", ErrConfig, t)
	}
	if !o.validFor(n) {
		return dst, fmt.Errorf("%w: byte order %s does not fit %s", ErrConfig, o, t)
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	w := dst[start:]
	for i := 0; i < n; i++ {
		w[o.wireIndex(i, n)] = c[i]
	}
	return dst, nil
}
