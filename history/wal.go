package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// WAL layout: dir/NNNNNNNN.seg segments of records, and at most one
// dir/checkpoint.NNNNNNNN holding the head as of the start of segment N
// (segments before N are obsolete once it exists).
//
// Record: 4-byte magic | uint32 LE payload length | uint32 LE CRC-32C of
// payload | payload. The magic lets replay find the next record after a
// corrupt one without trying every offset.
// Payload: byte recSamples | uvarint n | n × (uvarint len, point, varint
// unix ms, uint64 LE float bits, quality byte).

const (
	recSamples     = 1
	recHeader      = 12
	maxRecordBytes = 64 << 20
	segSuffix      = ".seg"
	ckptPrefix     = "checkpoint."
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var recMagic = []byte{0x9e, 'W', 0xa1, 0x0c}

type wal struct {
	dir     string
	segSize int64
	log     *slog.Logger

	f       *os.File
	seq     int   // current segment number
	size    int64 // bytes in current segment
	written int64 // bytes written since open
}

func segName(n int) string { return fmt.Sprintf("%08d%s", n, segSuffix) }

// walFiles lists segment numbers (sorted) and the newest checkpoint number (-1 if none).
func walFiles(dir string) (segs []int, ckpt int, err error) {
	ckpt = -1
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, -1, err
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, segSuffix):
			if n, err := strconv.Atoi(strings.TrimSuffix(name, segSuffix)); err == nil {
				segs = append(segs, n)
			}
		case strings.HasPrefix(name, ckptPrefix) && !strings.HasSuffix(name, ".tmp"):
			if n, err := strconv.Atoi(strings.TrimPrefix(name, ckptPrefix)); err == nil && n > ckpt {
				ckpt = n
			}
		}
	}
	slices.Sort(segs)
	return segs, ckpt, nil
}

// walApply receives replayed samples.
type walApply func(point []byte, t int64, v float64, q uint8)

// walDict maps the series IDs of one segment (or checkpoint) to names.
type walDict map[uint64][]byte

// replayWAL replays the checkpoint and the segments after it, truncating a
// torn tail of the last segment. It returns the number of the last segment
// (or the checkpoint number when there is none) and how many corrupt
// regions were skipped.
func replayWAL(dir string, log *slog.Logger, apply walApply) (last int, skipped int, err error) {
	segs, ckpt, err := walFiles(dir)
	if err != nil {
		return 0, 0, err
	}
	last = max(ckpt, 0)
	if ckpt >= 0 {
		p := filepath.Join(dir, fmt.Sprintf("%s%08d", ckptPrefix, ckpt))
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, 0, err
		}
		_, bad := replayBytes(b, walDict{}, apply)
		if bad >= 0 {
			// A checkpoint is written atomically; damage is real corruption.
			return 0, 0, &CorruptError{File: p, Offset: int64(bad), Err: errors.New("checkpoint record fails its checksum")}
		}
	}
	var live []int
	for _, s := range segs {
		if s >= ckpt {
			live = append(live, s)
		}
	}
	for i, s := range live {
		p := filepath.Join(dir, segName(s))
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, 0, err
		}
		last = s
		dict := walDict{}
		off := 0
		for off < len(b) {
			n, bad := replayBytes(b[off:], dict, apply)
			if bad < 0 {
				break
			}
			badAt := off + n
			next := resync(b, badAt+1, dict)
			if next < 0 {
				if i == len(live)-1 {
					log.Warn("history: truncating torn WAL tail", "segment", p, "offset", badAt, "bytes", len(b)-badAt)
					if err := os.Truncate(p, int64(badAt)); err != nil {
						return 0, 0, err
					}
				} else {
					log.Warn("history: skipping corrupt end of WAL segment", "segment", p, "offset", badAt, "bytes", len(b)-badAt)
					skipped++
				}
				break
			}
			log.Warn("history: skipping corrupt WAL record", "segment", p, "offset", badAt, "bytes", next-badAt)
			skipped++
			off = next
		}
	}
	return last, skipped, nil
}

// replayBytes applies every valid record at the start of b. It returns the
// bytes consumed and the offset of the first bad record (-1 if none).
func replayBytes(b []byte, dict walDict, apply walApply) (int, int) {
	off := 0
	for off < len(b) {
		payload, ok := recordAt(b, off)
		if !ok || !decodeRecord(payload, dict, nil) {
			return off, off
		}
		decodeRecord(payload, dict, apply)
		off += recHeader + len(payload)
	}
	return off, -1
}

func recordAt(b []byte, off int) ([]byte, bool) {
	if len(b)-off < recHeader {
		return nil, false
	}
	if !bytes.Equal(b[off:off+4], recMagic) {
		return nil, false
	}
	l := binary.LittleEndian.Uint32(b[off+4:])
	if l == 0 || l > maxRecordBytes || uint64(len(b)-off-recHeader) < uint64(l) {
		return nil, false
	}
	p := b[off+recHeader : off+recHeader+int(l)]
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(b[off+8:]) {
		return nil, false
	}
	return p, true
}

// resync finds the next offset >= from where a valid record starts, or -1.
func resync(b []byte, from int, dict walDict) int {
	for o := from; o+recHeader < len(b); o++ {
		i := bytes.Index(b[o:], recMagic)
		if i < 0 {
			return -1
		}
		o += i
		if p, ok := recordAt(b, o); ok && decodeRecord(p, dict, nil) {
			return o
		}
	}
	return -1
}

// decodeRecord parses a record payload. With apply == nil it only
// validates (dict is not changed); otherwise it adds the record's series
// definitions to dict and applies its samples.
//
// Payload: byte recSamples | varint base time | uvarint ndefs, ndefs ×
// (uvarint id, uvarint len, name) | uvarint n, n × (uvarint id, varint
// t-base, uint64 LE float bits, quality byte).
func decodeRecord(p []byte, dict walDict, apply walApply) bool {
	if len(p) < 1 || p[0] != recSamples {
		return false
	}
	p = p[1:]
	base, k := binary.Varint(p)
	if k <= 0 {
		return false
	}
	p = p[k:]
	nd, k := binary.Uvarint(p)
	if k <= 0 || nd > uint64(len(p)) {
		return false
	}
	p = p[k:]
	var local map[uint64]bool
	for range nd {
		id, k := binary.Uvarint(p)
		if k <= 0 {
			return false
		}
		p = p[k:]
		l, k := binary.Uvarint(p)
		if k <= 0 || l == 0 || l > uint64(len(p)-k) {
			return false
		}
		name := p[k : k+int(l)]
		p = p[k+int(l):]
		if apply != nil {
			dict[id] = name
		} else {
			if local == nil {
				local = map[uint64]bool{}
			}
			local[id] = true
		}
	}
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return false
	}
	p = p[k:]
	for range n {
		id, k := binary.Uvarint(p)
		if k <= 0 {
			return false
		}
		p = p[k:]
		dt, k := binary.Varint(p)
		if k <= 0 || len(p)-k < 9 {
			return false
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(p[k:]))
		q := p[k+8]
		p = p[k+9:]
		if apply == nil {
			if _, ok := dict[id]; !ok && !local[id] {
				return false
			}
			continue
		}
		apply(dict[id], base+dt, v, q)
	}
	return len(p) == 0
}

// recBuilder builds one record.
type recBuilder struct {
	defs, body, out []byte
	nd, n           int
	base            int64
}

func (r *recBuilder) reset() {
	r.defs, r.body, r.nd, r.n = r.defs[:0], r.body[:0], 0, 0
}

func (r *recBuilder) def(id uint64, name string) {
	r.defs = binary.AppendUvarint(r.defs, id)
	r.defs = binary.AppendUvarint(r.defs, uint64(len(name)))
	r.defs = append(r.defs, name...)
	r.nd++
}

func (r *recBuilder) add(id uint64, t int64, v float64, q uint8) {
	if r.n == 0 {
		r.base = t
	}
	r.body = binary.AppendUvarint(r.body, id)
	r.body = binary.AppendVarint(r.body, t-r.base)
	r.body = binary.LittleEndian.AppendUint64(r.body, math.Float64bits(v))
	r.body = append(r.body, q)
	r.n++
}

func (r *recBuilder) size() int { return len(r.defs) + len(r.body) }

// finish returns the framed record (header included); valid until reset.
func (r *recBuilder) finish() []byte {
	o := append(r.out[:0], recMagic...)
	o = append(o, 0, 0, 0, 0, 0, 0, 0, 0, recSamples)
	o = binary.AppendVarint(o, r.base)
	o = binary.AppendUvarint(o, uint64(r.nd))
	o = append(o, r.defs...)
	o = binary.AppendUvarint(o, uint64(r.n))
	o = append(o, r.body...)
	p := o[recHeader:]
	binary.LittleEndian.PutUint32(o[4:], uint32(len(p)))
	binary.LittleEndian.PutUint32(o[8:], crc32.Checksum(p, crcTable))
	r.out = o
	return o
}

func openWAL(dir string, segSize int64, log *slog.Logger, next int) (*wal, error) {
	w := &wal{dir: dir, segSize: segSize, log: log}
	if err := w.open(next); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wal) open(n int) error {
	f, err := os.OpenFile(filepath.Join(w.dir, segName(n)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.seq, w.size = f, n, st.Size()
	return syncDir(w.dir)
}

// full reports whether the current segment reached its size.
func (w *wal) full() bool { return w.size >= w.segSize }

// write appends one finished record (header included) in one write call.
func (w *wal) write(rec []byte, sync bool) error {
	if _, err := w.f.Write(rec); err != nil {
		return fmt.Errorf("history: wal write: %w", err)
	}
	w.size += int64(len(rec))
	w.written += int64(len(rec))
	if sync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("history: wal fsync: %w", err)
		}
	}
	return nil
}

func (w *wal) sync() error { return w.f.Sync() }

// rotate closes the current segment and starts the next; it returns the
// new segment number.
func (w *wal) rotate() (int, error) {
	if err := w.f.Sync(); err != nil {
		return 0, err
	}
	if err := w.f.Close(); err != nil {
		return 0, err
	}
	if err := w.open(w.seq + 1); err != nil {
		return 0, err
	}
	return w.seq, nil
}

// checkpoint atomically writes data as checkpoint.seg and removes the
// segments before seg and older checkpoints.
func (w *wal) checkpoint(seg int, data []byte) error {
	if err := writeFileAtomic(filepath.Join(w.dir, fmt.Sprintf("%s%08d", ckptPrefix, seg)), data); err != nil {
		return err
	}
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		var n int
		var err error
		switch {
		case strings.HasSuffix(name, segSuffix):
			n, err = strconv.Atoi(strings.TrimSuffix(name, segSuffix))
		case strings.HasPrefix(name, ckptPrefix):
			n, err = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, ckptPrefix), ".tmp"))
		default:
			continue
		}
		if err == nil && n < seg {
			if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

func (w *wal) close() error {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
