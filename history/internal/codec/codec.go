package codec

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	tsz "github.com/dgryski/go-tsz"
)

// Codec identifies how a block's samples are encoded.
type Codec uint8

// The codecs. The numbers are stored on disk and never change.
const (
	Raw     Codec = 1
	Delta   Codec = 2
	Gorilla Codec = 3
)

// NumCodecs bounds the codec numbers (for per-codec counters).
const NumCodecs = 4

func (c Codec) String() string {
	switch c {
	case Raw:
		return "raw"
	case Delta:
		return "delta"
	case Gorilla:
		return "gorilla"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ErrCorrupt is returned (wrapped) for any block that fails its checksum or
// does not decode to what its header says.
var ErrCorrupt = errors.New("codec: corrupt block")

const (
	magic0, magic1 = 'E', 'B'
	// Version is the block format version written by Encode.
	Version = 1

	flagDeflate = 1 << 0
	knownFlags  = flagDeflate

	maxDecimals = 9

	// MaxCount is the largest number of samples in one block.
	MaxCount = 1 << 22
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Columns is a decoded block: parallel slices, timestamps strictly increasing.
type Columns struct {
	T []int64   // Unix milliseconds
	V []float64 // values
	Q []uint8   // qualities
}

// Len returns the number of samples.
func (c *Columns) Len() int { return len(c.T) }

// Header is the fixed part of a block, readable without decoding it.
type Header struct {
	Version    uint8
	Codec      Codec
	Flags      uint8
	Count      int
	MinT, MaxT int64
}

// Options tune Encode. The zero value tries every applicable codec and deflate.
type Options struct {
	// Only forces one codec when it applies (0 = choose the smallest).
	Only Codec
	// NoDeflate disables the general-purpose compression pass.
	NoDeflate bool
}

// Encode appends the encoded block for c to dst. c must be non-empty with
// strictly increasing timestamps and equal-length columns.
func Encode(dst []byte, c *Columns, opt Options) ([]byte, Codec, error) {
	n := len(c.T)
	if n == 0 || len(c.V) != n || len(c.Q) != n {
		return dst, 0, fmt.Errorf("codec: encode: %d timestamps, %d values, %d qualities", n, len(c.V), len(c.Q))
	}
	for i := 1; i < n; i++ {
		if c.T[i] <= c.T[i-1] {
			return dst, 0, fmt.Errorf("codec: encode: timestamps not strictly increasing at %d", i)
		}
	}
	var best []byte
	var bestCodec Codec
	try := func(k Codec, p []byte, ok bool) {
		if ok && (best == nil || len(p) < len(best)) {
			best, bestCodec = p, k
		}
	}
	var delta []byte
	if opt.Only == 0 || opt.Only == Delta {
		p, ok := encodeDelta(c)
		try(Delta, p, ok)
		delta = p
	}
	// A Gorilla stream needs at least 2 bits per sample after the first
	// (plus 32+14+64 bits for the first): when Delta is already that small,
	// Gorilla cannot be smaller and is not tried.
	gorillaFloor := (2*(n-1) + 110) / 8
	if opt.Only == Gorilla || (opt.Only == 0 && (delta == nil || len(delta) > gorillaFloor)) {
		p, ok := encodeGorilla(c)
		try(Gorilla, p, ok)
		// go-tsz has sharp edges (FIELD-NOTES): never keep a stream that
		// does not give back exactly what went in.
		if bestCodec == Gorilla && !verifyGorilla(p, c) {
			best, bestCodec = delta, Delta
			if delta == nil {
				best = nil
			}
		}
	}
	if best == nil {
		if opt.Only != 0 && opt.Only != Raw {
			return dst, 0, fmt.Errorf("codec: encode: %s does not apply to these samples", opt.Only)
		}
		best, bestCodec = encodeRaw(c), Raw
	}
	best = appendQualities(best, c.Q)
	var flags uint8
	if !opt.NoDeflate && len(best) > 16 {
		if z := deflate(best); len(z) < len(best) {
			best, flags = z, flagDeflate
		}
	}
	start := len(dst)
	dst = append(dst, magic0, magic1, Version, byte(bestCodec), flags)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendVarint(dst, c.T[0])
	dst = binary.AppendVarint(dst, c.T[n-1])
	dst = binary.AppendUvarint(dst, uint64(len(best)))
	dst = append(dst, best...)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return dst, bestCodec, nil
}

// ReadHeader parses and checksums the block at the start of b and returns
// its header and total encoded length.
func ReadHeader(b []byte) (Header, []byte, int, error) {
	var h Header
	corrupt := func(why string) (Header, []byte, int, error) {
		return h, nil, 0, fmt.Errorf("%w: %s", ErrCorrupt, why)
	}
	if len(b) < 5+4 {
		return corrupt("short block")
	}
	if b[0] != magic0 || b[1] != magic1 {
		return corrupt("bad magic")
	}
	h.Version, h.Codec, h.Flags = b[2], Codec(b[3]), b[4]
	if h.Version != Version {
		return corrupt(fmt.Sprintf("unsupported version %d", h.Version))
	}
	p := 5
	cnt, k := binary.Uvarint(b[p:])
	if k <= 0 || cnt == 0 || cnt > MaxCount {
		return corrupt("bad count")
	}
	p += k
	minT, k := binary.Varint(b[p:])
	if k <= 0 {
		return corrupt("bad min time")
	}
	p += k
	maxT, k := binary.Varint(b[p:])
	if k <= 0 || maxT < minT {
		return corrupt("bad max time")
	}
	p += k
	plen, k := binary.Uvarint(b[p:])
	if k <= 0 || plen > uint64(len(b)) {
		return corrupt("bad payload length")
	}
	p += k
	end := p + int(plen)
	if end+4 > len(b) {
		return corrupt("truncated block")
	}
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
		return corrupt("checksum mismatch")
	}
	if h.Flags&^knownFlags != 0 {
		return corrupt("unknown flags")
	}
	h.Count, h.MinT, h.MaxT = int(cnt), minT, maxT
	return h, b[p:end], end + 4, nil
}

// Decode decodes the block at the start of b into fresh columns. b is not
// modified. It returns the header and the encoded length of the block.
func Decode(b []byte) (*Columns, Header, int, error) {
	h, payload, size, err := ReadHeader(b)
	if err != nil {
		return nil, h, 0, err
	}
	if h.Flags&flagDeflate != 0 {
		payload, err = inflate(payload, h.Count)
		if err != nil {
			return nil, h, 0, err
		}
	}
	c, err := DecodePayload(h.Codec, payload, h.Count)
	if err != nil {
		return nil, h, 0, err
	}
	if c.T[0] != h.MinT || c.T[len(c.T)-1] != h.MaxT {
		return nil, h, 0, fmt.Errorf("%w: time range differs from header", ErrCorrupt)
	}
	return c, h, size, nil
}

// DecodePayload decodes an uncompressed payload of n samples (exported for
// fuzzing the codecs without the checksum in the way).
func DecodePayload(k Codec, p []byte, n int) (*Columns, error) {
	if n <= 0 || n > MaxCount {
		return nil, fmt.Errorf("%w: bad count %d", ErrCorrupt, n)
	}
	// Every sample needs at least one quality run byte pair or a bit; bound
	// allocation by the payload size to keep hostile counts cheap.
	if n > 64*8*len(p)+64 {
		return nil, fmt.Errorf("%w: count %d too large for %d bytes", ErrCorrupt, n, len(p))
	}
	c := &Columns{T: make([]int64, n), V: make([]float64, n), Q: make([]uint8, n)}
	var rest []byte
	var ok bool
	switch k {
	case Delta:
		rest, ok = decodeDelta(p, c)
	case Gorilla:
		rest, ok = decodeGorilla(p, c)
	case Raw:
		rest, ok = decodeRaw(p, c)
	default:
		return nil, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, uint8(k))
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s payload does not decode", ErrCorrupt, k)
	}
	if !readQualities(rest, c.Q) {
		return nil, fmt.Errorf("%w: bad quality runs", ErrCorrupt)
	}
	for i := 1; i < n; i++ {
		if c.T[i] <= c.T[i-1] {
			return nil, fmt.Errorf("%w: timestamps not increasing", ErrCorrupt)
		}
	}
	return c, nil
}

// ---- timestamps (shared by Delta and Raw) ----

func appendTimes(w *bitWriter, ts []int64, tmp []int64) []int64 {
	n := len(ts)
	w.buf = binary.AppendVarint(w.buf, ts[0])
	if n == 1 {
		return tmp
	}
	w.buf = binary.AppendVarint(w.buf, ts[1]-ts[0])
	tmp = tmp[:0]
	for i := 2; i < n; i++ {
		tmp = append(tmp, (ts[i]-ts[i-1])-(ts[i-1]-ts[i-2]))
	}
	packInts(w, tmp)
	return tmp
}

func readTimes(p []byte, ts []int64) ([]byte, *bitReader, bool) {
	t0, k := binary.Varint(p)
	if k <= 0 {
		return nil, nil, false
	}
	p = p[k:]
	ts[0] = t0
	if len(ts) == 1 {
		return p, nil, true
	}
	d, k := binary.Varint(p)
	if k <= 0 {
		return nil, nil, false
	}
	p = p[k:]
	ts[1] = t0 + d
	r := &bitReader{b: p}
	if !unpackInts(r, ts[2:]) {
		return nil, nil, false
	}
	for i := 2; i < len(ts); i++ {
		d += ts[i]
		ts[i] = ts[i-1] + d
	}
	return p, r, true
}

// ---- Delta ----

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

const maxExact = 1 << 53

// scaled returns v*10^d as an integer if v == float64(n)/10^d exactly.
func scaled(v float64, d int) (int64, bool) {
	x := math.Round(v * pow10[d])
	if !(x >= -maxExact && x <= maxExact) { // also rejects NaN
		return 0, false
	}
	n := int64(x)
	return n, math.Float64bits(float64(n)/pow10[d]) == math.Float64bits(v)
}

// Resolution returns the number of decimals d such that every value is an
// integer divided by 10^d, or false when there is none up to 9 (NaN, ±Inf,
// -0, long fractions, magnitudes past 2^53).
func Resolution(vs []float64) (int, bool) {
	d := 0
	for _, v := range vs {
		for {
			if _, ok := scaled(v, d); ok {
				break
			}
			d++
			if d > maxDecimals {
				return 0, false
			}
		}
	}
	// A value exact at a smaller d is almost always exact at a larger one,
	// but the decoder divides by 10^d, so check every value again.
	for ; d <= maxDecimals; d++ {
		good := true
		for _, v := range vs {
			if _, ok := scaled(v, d); !ok {
				good = false
				break
			}
		}
		if good {
			return d, true
		}
	}
	return 0, false
}

var intPool = sync.Pool{New: func() any { s := make([]int64, 0, 1024); return &s }}

func encodeDelta(c *Columns) ([]byte, bool) {
	d, ok := Resolution(c.V)
	if !ok {
		return nil, false
	}
	n := len(c.V)
	bp := intPool.Get().(*[]int64)
	defer intPool.Put(bp)
	ints := (*bp)[:0]
	for _, v := range c.V {
		x, _ := scaled(v, d)
		ints = append(ints, x)
	}
	w := &bitWriter{buf: make([]byte, 0, n/2+32)}
	tmp := appendTimes(w, c.T, nil)
	w.bytes()
	// Values: choose delta (order 1) or delta-of-delta (order 2) by the
	// sum of magnitudes, a cheap proxy for the packed size.
	var s1, s2 uint64
	for i := 1; i < n; i++ {
		d1 := ints[i] - ints[i-1]
		s1 += zigzag(d1) | 1
		if i >= 2 {
			s2 += zigzag(d1-(ints[i-1]-ints[i-2])) | 1
		}
	}
	order := byte(1)
	if n > 2 && s2 < s1 {
		order = 2
	}
	w.buf = append(w.buf, byte(d), order)
	w.buf = binary.AppendVarint(w.buf, ints[0])
	tmp = tmp[:0]
	if n > 1 {
		if order == 1 {
			for i := 1; i < n; i++ {
				tmp = append(tmp, ints[i]-ints[i-1])
			}
		} else {
			w.buf = binary.AppendVarint(w.buf, ints[1]-ints[0])
			for i := 2; i < n; i++ {
				tmp = append(tmp, (ints[i]-ints[i-1])-(ints[i-1]-ints[i-2]))
			}
		}
		packInts(w, tmp)
	}
	*bp = ints
	return w.bytes(), true
}

func decodeDelta(p []byte, c *Columns) ([]byte, bool) {
	p, r, ok := readTimes(p, c.T)
	if !ok {
		return nil, false
	}
	if r != nil {
		p = p[(r.pos+7)/8:]
	}
	if len(p) < 2 {
		return nil, false
	}
	d, order := int(p[0]), p[1]
	p = p[2:]
	if d > maxDecimals || (order != 1 && order != 2) {
		return nil, false
	}
	n := len(c.V)
	ints := make([]int64, n)
	x0, k := binary.Varint(p)
	if k <= 0 {
		return nil, false
	}
	p = p[k:]
	ints[0] = x0
	if n > 1 {
		if order == 1 {
			r := &bitReader{b: p}
			if !unpackInts(r, ints[1:]) {
				return nil, false
			}
			p = p[(r.pos+7)/8:]
			for i := 1; i < n; i++ {
				ints[i] += ints[i-1]
			}
		} else {
			d1, k := binary.Varint(p)
			if k <= 0 {
				return nil, false
			}
			p = p[k:]
			ints[1] = x0 + d1
			r := &bitReader{b: p}
			if !unpackInts(r, ints[2:]) {
				return nil, false
			}
			p = p[(r.pos+7)/8:]
			for i := 2; i < n; i++ {
				d1 += ints[i]
				ints[i] = ints[i-1] + d1
			}
		}
	}
	for i, x := range ints {
		c.V[i] = float64(x) / pow10[d]
	}
	return p, true
}

// ---- Raw ----

func encodeRaw(c *Columns) []byte {
	w := &bitWriter{buf: make([]byte, 0, 8*len(c.V)+32)}
	appendTimes(w, c.T, nil)
	b := w.bytes()
	for _, v := range c.V {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func decodeRaw(p []byte, c *Columns) ([]byte, bool) {
	p, r, ok := readTimes(p, c.T)
	if !ok {
		return nil, false
	}
	if r != nil {
		p = p[(r.pos+7)/8:]
	}
	if len(p) < 8*len(c.V) {
		return nil, false
	}
	for i := range c.V {
		c.V[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
	}
	return p[8*len(c.V):], true
}

// ---- Gorilla (go-tsz) ----

// gorillaApplies reports whether go-tsz can hold the timestamps: whole
// seconds, after the epoch, within uint32.
func gorillaApplies(ts []int64) bool {
	for _, t := range ts {
		if t%1000 != 0 || t <= 0 || t/1000 > math.MaxUint32-1 {
			return false
		}
	}
	return true
}

func encodeGorilla(c *Columns) ([]byte, bool) {
	if !gorillaApplies(c.T) {
		return nil, false
	}
	s := tsz.New(uint32(c.T[0] / 1000))
	for i, t := range c.T {
		s.Push(uint32(t/1000), c.V[i])
	}
	s.Finish()
	b := s.Bytes()
	out := make([]byte, 0, len(b)+4)
	out = binary.AppendUvarint(out, uint64(len(b)))
	out = append(out, b...)
	return out, true
}

func verifyGorilla(p []byte, c *Columns) bool {
	chk := &Columns{T: make([]int64, len(c.T)), V: make([]float64, len(c.V))}
	if _, ok := decodeGorilla(p, chk); !ok {
		return false
	}
	for i := range c.T {
		if chk.T[i] != c.T[i] || math.Float64bits(chk.V[i]) != math.Float64bits(c.V[i]) {
			return false
		}
	}
	return true
}

func decodeGorilla(p []byte, c *Columns) (rest []byte, ok bool) {
	l, k := binary.Uvarint(p)
	if k <= 0 || l > uint64(len(p)-k) {
		return nil, false
	}
	// go-tsz's iterator shifts its input in place: decode a private copy.
	priv := bytes.Clone(p[k : k+int(l)])
	rest = p[k+int(l):]
	defer func() {
		if recover() != nil {
			rest, ok = nil, false
		}
	}()
	it, err := tsz.NewIterator(priv)
	if err != nil {
		return nil, false
	}
	i := 0
	for it.Next() {
		if i == len(c.T) {
			return nil, false
		}
		t, v := it.Values()
		c.T[i], c.V[i] = int64(t)*1000, v
		i++
	}
	if it.Err() != nil || i != len(c.T) {
		return nil, false
	}
	return rest, true
}

// ---- qualities: run-length (quality, run) pairs ----

func appendQualities(b []byte, qs []uint8) []byte {
	var runs [][2]uint64
	for i := 0; i < len(qs); {
		j := i + 1
		for j < len(qs) && qs[j] == qs[i] {
			j++
		}
		runs = append(runs, [2]uint64{uint64(qs[i]), uint64(j - i)})
		i = j
	}
	b = binary.AppendUvarint(b, uint64(len(runs)))
	for _, r := range runs {
		b = append(b, byte(r[0]))
		b = binary.AppendUvarint(b, r[1])
	}
	return b
}

func readQualities(p []byte, qs []uint8) bool {
	nr, k := binary.Uvarint(p)
	if k <= 0 || nr > uint64(len(qs)) {
		return false
	}
	p = p[k:]
	i := 0
	for range nr {
		if len(p) < 2 {
			return false
		}
		q := p[0]
		run, k := binary.Uvarint(p[1:])
		if k <= 0 || run == 0 || run > uint64(len(qs)-i) {
			return false
		}
		p = p[1+k:]
		for j := 0; j < int(run); j++ {
			qs[i+j] = q
		}
		i += int(run)
	}
	return i == len(qs) && len(p) == 0
}

// ---- deflate ----

var flatePool = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestCompression)
	return w
}}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 2)
	w := flatePool.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	flatePool.Put(w)
	return buf.Bytes()
}

func inflate(b []byte, n int) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	// Bound the output: no payload is larger than ~18 bytes per sample
	// (Raw: timestamps ≤ 9 bytes, value 8, quality run ≤ 11).
	limit := int64(n)*32 + 1024
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflate: %v", ErrCorrupt, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: inflated payload too large", ErrCorrupt)
	}
	return out, nil
}
