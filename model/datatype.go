package model

import (
	"fmt"
	"math"
	"strings"
)

// DataType is the raw type of a point on the wire.
type DataType uint8

// Raw data types. String points carry their length in the protocol mapping.
const (
	TypeUnknown DataType = iota
	Bool
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
	String
)

var dataTypeNames = [...]string{"", "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

// String returns the lower-case name ("uint16").
func (t DataType) String() string {
	if int(t) < len(dataTypeNames) && t != TypeUnknown {
		return dataTypeNames[t]
	}
	return fmt.Sprintf("datatype(%d)", uint8(t))
}

// ParseDataType parses a data type name case-insensitively. It accepts the
// common aliases of point tables: "u16"/"word", "i16"/"short", "float"/"f32",
// "double"/"f64", "boolean"/"bit", "uint32"/"dword" and so on.
func ParseDataType(s string) (DataType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bool", "boolean", "bit":
		return Bool, nil
	case "int16", "i16", "short":
		return Int16, nil
	case "uint16", "u16", "word", "ushort":
		return Uint16, nil
	case "int32", "i32", "int", "long":
		return Int32, nil
	case "uint32", "u32", "dword", "uint":
		return Uint32, nil
	case "int64", "i64":
		return Int64, nil
	case "uint64", "u64":
		return Uint64, nil
	case "float32", "f32", "float", "real":
		return Float32, nil
	case "float64", "f64", "double":
		return Float64, nil
	case "string", "str", "ascii":
		return String, nil
	}
	return TypeUnknown, fmt.Errorf("unknown data type %q (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t DataType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseDataType.
func (t *DataType) UnmarshalText(b []byte) error {
	v, err := ParseDataType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Bits returns the width of the type in bits (1 for Bool, 0 for String).
func (t DataType) Bits() int {
	switch t {
	case Bool:
		return 1
	case Int16, Uint16:
		return 16
	case Int32, Uint32, Float32:
		return 32
	case Int64, Uint64, Float64:
		return 64
	}
	return 0
}

// Registers returns how many 16-bit registers one value occupies (0 for
// Bool and String, whose size depends on the mapping).
func (t DataType) Registers() int { return t.Bits() / 16 }

// IsInteger reports whether raw values of t are integers.
func (t DataType) IsInteger() bool {
	switch t {
	case Int16, Uint16, Int32, Uint32, Int64, Uint64, Bool:
		return true
	}
	return false
}

// Range returns the smallest and largest raw value representable by t, as
// float64. For 64-bit integers the bounds are the nearest float64 values.
func (t DataType) Range() (lo, hi float64) {
	switch t {
	case Bool:
		return 0, 1
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Uint16:
		return 0, math.MaxUint16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Uint32:
		return 0, math.MaxUint32
	case Int64:
		return math.MinInt64, math.MaxInt64
	case Uint64:
		return 0, math.MaxUint64
	case Float32:
		return -math.MaxFloat32, math.MaxFloat32
	}
	return math.Inf(-1), math.Inf(1)
}
