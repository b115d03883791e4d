package codec

import "math/bits"

// bitWriter appends bits most-significant first.
type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, left-aligned in the low n bits
	nacc uint   // number of pending bits (< 8 after flush)
}

func (w *bitWriter) write(v uint64, n uint) {
	if n == 0 {
		return
	}
	if n < 64 {
		v &= 1<<n - 1
	}
	for n > 0 {
		take := min(n, 56-w.nacc)
		w.acc = w.acc<<take | v>>(n-take)
		w.nacc += take
		n -= take
		if n < 64 {
			v &= 1<<n - 1
		}
		for w.nacc >= 8 {
			w.buf = append(w.buf, byte(w.acc>>(w.nacc-8)))
			w.nacc -= 8
		}
		w.acc &= 1<<w.nacc - 1
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc<<(8-w.nacc)))
		w.acc, w.nacc = 0, 0
	}
	return w.buf
}

// bitReader reads what bitWriter wrote.
type bitReader struct {
	b   []byte
	pos uint // bit position
}

func (r *bitReader) read(n uint) (uint64, bool) {
	if n == 0 {
		return 0, true
	}
	if r.pos+n > uint(len(r.b))*8 {
		return 0, false
	}
	var v uint64
	for n > 0 {
		byteIdx := r.pos / 8
		off := r.pos % 8
		avail := 8 - off
		take := min(avail, n)
		cur := uint64(r.b[byteIdx]>>(avail-take)) & (1<<take - 1)
		v = v<<take | cur
		r.pos += take
		n -= take
	}
	return v, true
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

const groupSize = 64

// packInts writes zigzag-encoded values in groups of 64, each group led by a
// 7-bit width (0..64) followed by width bits per value.
func packInts(w *bitWriter, vals []int64) {
	for len(vals) > 0 {
		g := vals[:min(groupSize, len(vals))]
		vals = vals[len(g):]
		var or uint64
		for _, v := range g {
			or |= zigzag(v)
		}
		width := uint(64 - bits.LeadingZeros64(or))
		w.write(uint64(width), 7)
		if width == 0 {
			continue
		}
		for _, v := range g {
			w.write(zigzag(v), width)
		}
	}
}

// unpackInts reads n values written by packInts into dst.
func unpackInts(r *bitReader, dst []int64) bool {
	for len(dst) > 0 {
		g := dst[:min(groupSize, len(dst))]
		dst = dst[len(g):]
		width, ok := r.read(7)
		if !ok || width > 64 {
			return false
		}
		if width == 0 {
			clear(g)
			continue
		}
		if r.pos+uint(width)*uint(len(g)) > uint(len(r.b))*8 {
			return false
		}
		for i := range g {
			u, _ := r.read(uint(width))
			g[i] = unzigzag(u)
		}
	}
	return true
}
