package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func cols(ts []int64, vs []float64) *Columns {
	return &Columns{T: ts, V: vs, Q: make([]uint8, len(ts))}
}

func seconds(n int, start int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = (start + int64(i)) * 1000
	}
	return ts
}

func equalBits(t *testing.T, want, got *Columns) {
	t.Helper()
	if len(want.T) != len(got.T) {
		t.Fatalf("decoded %d samples, want %d", len(got.T), len(want.T))
	}
	for i := range want.T {
		if want.T[i] != got.T[i] || math.Float64bits(want.V[i]) != math.Float64bits(got.V[i]) || want.Q[i] != got.Q[i] {
			t.Fatalf("sample %d: got (%d,%v,%d) want (%d,%v,%d)", i, got.T[i], got.V[i], got.Q[i], want.T[i], want.V[i], want.Q[i])
		}
	}
}

func roundTrip(t *testing.T, c *Columns, opt Options) (Codec, int) {
	t.Helper()
	b, k, err := Encode([]byte("prefix"), c, opt)
	if err != nil {
		t.Fatal(err)
	}
	b = b[len("prefix"):]
	orig := bytes.Clone(b)
	for range 2 { // decoding twice must work: the input is never modified
		got, h, size, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if size != len(b) || h.Codec != k || h.Count != len(c.T) {
			t.Fatalf("header %+v size %d, want codec %s count %d size %d", h, size, k, len(c.T), len(b))
		}
		equalBits(t, c, got)
	}
	if !bytes.Equal(orig, b) {
		t.Fatal("Decode modified its input")
	}
	return k, len(b)
}

func TestResolution(t *testing.T) {
	for _, tc := range []struct {
		vs   []float64
		d    int
		fail bool
	}{
		{vs: []float64{1, 2, 300}, d: 0},
		{vs: []float64{12.3, -0.1, 5}, d: 1},
		{vs: []float64{3.725, 3.7}, d: 3},
		{vs: []float64{0.000000001}, d: 9},
		{vs: []float64{math.Pi}, fail: true},
		{vs: []float64{1, math.NaN()}, fail: true},
		{vs: []float64{math.Inf(1)}, fail: true},
		{vs: []float64{math.Inf(-1)}, fail: true},
		{vs: []float64{math.Copysign(0, -1)}, fail: true},
		{vs: []float64{1e300}, fail: true},
	} {
		d, ok := Resolution(tc.vs)
		if ok == tc.fail || (ok && d != tc.d) {
			t.Errorf("Resolution(%v) = %d, %v; want %d, %v", tc.vs, d, ok, tc.d, !tc.fail)
		}
	}
}

func TestRoundTripChoosesCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 1000
	dec := make([]float64, n)
	pi := make([]float64, n)
	special := make([]float64, n)
	for i := range dec {
		dec[i] = float64(rng.IntN(20001)-10000) / 10
		pi[i] = rng.Float64() * math.Pi
		special[i] = dec[i]
	}
	special[3], special[10], special[11], special[500] = math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)
	ms := make([]int64, n)
	for i := range ms {
		ms[i] = 1_700_000_000_000 + int64(i)*1003 + int64(i%7)
	}

	if k, _ := roundTrip(t, cols(seconds(n, 1_700_000_000), dec), Options{}); k != Delta {
		t.Errorf("decimal values: codec %s, want delta", k)
	}
	if k, _ := roundTrip(t, cols(seconds(n, 1_700_000_000), pi), Options{}); k != Gorilla {
		t.Errorf("long fractions on whole seconds: codec %s, want gorilla", k)
	}
	if k, _ := roundTrip(t, cols(seconds(n, 1_700_000_000), special), Options{}); k != Gorilla {
		t.Errorf("NaN/Inf on whole seconds: codec %s, want gorilla", k)
	}
	if k, _ := roundTrip(t, cols(ms, special), Options{}); k != Raw {
		t.Errorf("NaN on millisecond timestamps: codec %s, want raw", k)
	}
	if k, _ := roundTrip(t, cols(ms, dec), Options{}); k != Delta {
		t.Errorf("decimals on millisecond timestamps: codec %s, want delta", k)
	}
	// Every codec forced, deflate on and off, with mixed qualities.
	for _, only := range []Codec{Delta, Gorilla, Raw} {
		for _, nd := range []bool{false, true} {
			c := cols(seconds(n, 1_700_000_000), dec)
			for i := range c.Q {
				c.Q[i] = uint8(i / 100 % 3 << 6)
			}
			if k, _ := roundTrip(t, c, Options{Only: only, NoDeflate: nd}); k != only {
				t.Errorf("forced %s, got %s", only, k)
			}
		}
	}
	// Edge sizes: 1, 2, 3, 64, 65 samples; negative and huge timestamps.
	for _, m := range []int{1, 2, 3, 64, 65} {
		roundTrip(t, cols(seconds(m, 1_700_000_000), dec[:m]), Options{})
		ts := make([]int64, m)
		for i := range ts {
			ts[i] = -5_000_000 + int64(i)*int64(i+1)*997
		}
		roundTrip(t, cols(ts, special[:m]), Options{})
	}
	if _, _, err := Encode(nil, cols([]int64{2, 1}, []float64{1, 2}), Options{}); err == nil {
		t.Error("decreasing timestamps encoded")
	}
	if _, _, err := Encode(nil, cols(ms, pi), Options{Only: Delta}); err == nil {
		t.Error("forced delta on non-decimal values encoded")
	}
}

func TestCorruptBlockIsDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vs := make([]float64, 500)
	for i := range vs {
		vs[i] = float64(rng.IntN(1000)) / 10
	}
	b, _, err := Encode(nil, cols(seconds(500, 1_700_000_000), vs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		for _, bit := range []byte{1, 0x80} {
			bad := bytes.Clone(b)
			bad[i] ^= bit
			if _, _, _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipping bit %#x of byte %d: err %v, want ErrCorrupt", bit, i, err)
			}
		}
	}
	if _, _, _, err := Decode(b[:len(b)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated block: %v", err)
	}
}
