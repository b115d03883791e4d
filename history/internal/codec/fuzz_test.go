package codec

import (
	"math"
	"testing"
)

func fuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	vs := []float64{1.5, 1.6, 1.6, 2.0, -3.1, 400}
	sp := []float64{math.NaN(), math.Inf(1), math.Pi, 0, -1, 7}
	for _, only := range []Codec{Delta, Gorilla, Raw} {
		for _, c := range []*Columns{cols(seconds(6, 1_700_000_000), vs), cols([]int64{1, 5, 9, 1000, 1001, 5000}, sp)} {
			b, _, err := Encode(nil, c, Options{Only: only})
			if err == nil {
				out = append(out, b)
			}
		}
	}
	return out
}

// FuzzDecode feeds whole blocks (header, checksum, payload) to Decode.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, h, _, err := Decode(b)
		if err != nil {
			return
		}
		if c.Len() != h.Count {
			t.Fatalf("decoded %d samples, header says %d", c.Len(), h.Count)
		}
		re, _, err := Encode(nil, c, Options{})
		if err != nil {
			t.Fatalf("decoded block does not re-encode: %v", err)
		}
		c2, _, _, err := Decode(re)
		if err != nil {
			t.Fatal(err)
		}
		equalBits(t, c, c2)
	})
}

// FuzzDecodePayload reaches the Delta, Gorilla and Raw decoders directly,
// without a checksum to stop mutated input.
func FuzzDecodePayload(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		h, p, _, err := ReadHeader(b)
		if err != nil {
			f.Fatal(err)
		}
		if h.Flags&flagDeflate != 0 {
			p, _ = inflate(p, h.Count)
		}
		f.Add(uint8(h.Codec), uint16(h.Count), p)
	}
	f.Fuzz(func(t *testing.T, k uint8, n uint16, p []byte) {
		c, err := DecodePayload(Codec(k), p, int(n))
		if err != nil {
			return
		}
		if c.Len() != int(n) {
			t.Fatalf("decoded %d samples, want %d", c.Len(), n)
		}
		for i := 1; i < c.Len(); i++ {
			if c.T[i] <= c.T[i-1] {
				t.Fatal("decoded timestamps not increasing")
			}
		}
	})
}
