package history

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/voltage-ems/ems/history/internal/codec"
)

// Block file layout (.blk):
//
//	"EMSF" version(1)
//	chunks...
//	index: level(1) uvarint seqLo uvarint seqHi uvarint n, n × entry
//	footer: uint64 LE index offset | uint32 LE CRC-32C of index | "EMSF"
//
// entry: uvarint len, point, tier(1), uvarint off, uvarint size, varint minT,
// varint maxT, uvarint count. Tier 0 chunks are codec blocks of raw samples;
// tier i > 0 chunks are six codec blocks (count, sum, min, max, first, last)
// over the same bucket start times.

const (
	fileMagic   = "EMSF"
	fileVersion = 1
	footerSize  = 16
)

type blockFile struct {
	name         string
	level        int
	seqLo, seqHi uint64
	minT, maxT   int64
	size         int64

	data []byte   // memory stores: the whole file
	f    *os.File // disk stores
	path string
	cold atomic.Bool // moved to the archive

	noCompact atomic.Bool // a chunk in it failed to decode
}

type chunkRef struct {
	f          *blockFile
	off        int64
	size       int32
	count      int32
	minT, maxT int64
}

type indexEntry struct {
	point string
	tier  int
	ref   chunkRef
}

// fileBuilder streams chunks of a new block file to a temporary file (or
// memory) and keeps its index.
type fileBuilder struct {
	w       io.Writer
	mem     *bytes.Buffer
	bw      *bufio.Writer
	tmp     *os.File
	off     int64
	err     error
	done    bool
	entries []indexEntry
}

func newFileBuilder(dir string) (*fileBuilder, error) {
	b := &fileBuilder{}
	if dir == "" {
		b.mem = &bytes.Buffer{}
		b.w = b.mem
	} else {
		f, err := os.CreateTemp(dir, "build-*.tmp")
		if err != nil {
			return nil, fmt.Errorf("history: create block file: %w", err)
		}
		b.tmp, b.bw = f, bufio.NewWriterSize(f, 1<<20)
		b.w = b.bw
	}
	b.write([]byte(fileMagic))
	b.write([]byte{fileVersion})
	return b, nil
}

func (b *fileBuilder) write(p []byte) {
	if b.err != nil {
		return
	}
	_, b.err = b.w.Write(p)
	b.off += int64(len(p))
}

func (b *fileBuilder) add(point string, tier int, chunk []byte, count int, minT, maxT int64) {
	off := b.off
	b.write(chunk)
	b.entries = append(b.entries, indexEntry{point: point, tier: tier, ref: chunkRef{off: off, size: int32(len(chunk)), count: int32(count), minT: minT, maxT: maxT}})
}

// finish writes the index and footer. For memory builders it returns the
// file image; disk builders are flushed and fsynced.
func (b *fileBuilder) finish(level int, seqLo, seqHi uint64) ([]byte, int64, error) {
	idxOff := b.off
	var ix []byte
	ix = append(ix, byte(level))
	ix = binary.AppendUvarint(ix, seqLo)
	ix = binary.AppendUvarint(ix, seqHi)
	ix = binary.AppendUvarint(ix, uint64(len(b.entries)))
	for _, e := range b.entries {
		ix = binary.AppendUvarint(ix, uint64(len(e.point)))
		ix = append(ix, e.point...)
		ix = append(ix, byte(e.tier))
		ix = binary.AppendUvarint(ix, uint64(e.ref.off))
		ix = binary.AppendUvarint(ix, uint64(e.ref.size))
		ix = binary.AppendVarint(ix, e.ref.minT)
		ix = binary.AppendVarint(ix, e.ref.maxT)
		ix = binary.AppendUvarint(ix, uint64(e.ref.count))
	}
	b.write(ix)
	var ft [footerSize]byte
	binary.LittleEndian.PutUint64(ft[:], uint64(idxOff))
	binary.LittleEndian.PutUint32(ft[8:], crc32.Checksum(ix, crcTable))
	copy(ft[12:], fileMagic)
	b.write(ft[:])
	if b.err != nil {
		return nil, 0, b.err
	}
	if b.mem != nil {
		return b.mem.Bytes(), b.off, nil
	}
	if err := b.bw.Flush(); err != nil {
		return nil, 0, err
	}
	return nil, b.off, b.tmp.Sync()
}

// commit renames the finished temporary file to p (disk builders).
func (b *fileBuilder) commit(p string) error {
	if err := b.tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(b.tmp.Name(), p); err != nil {
		return err
	}
	b.done = true
	return syncDir(filepath.Dir(p))
}

// abort removes the temporary file unless the builder was committed.
func (b *fileBuilder) abort() {
	if b.tmp != nil && !b.done {
		b.tmp.Close()
		os.Remove(b.tmp.Name())
	}
}

// parseIndex reads the index of a whole block file image (or of its tail:
// tail holds the last bytes of a file of the given size).
func parseIndex(name string, tail []byte, size int64, ntiers int) (*blockFile, []indexEntry, error) {
	corrupt := func(off int64, why string) error {
		return &CorruptError{File: name, Offset: off, Err: errors.New(why)}
	}
	if size < 5+footerSize || int64(len(tail)) < footerSize {
		return nil, nil, corrupt(0, "file too short")
	}
	ft := tail[len(tail)-footerSize:]
	if string(ft[12:]) != fileMagic {
		return nil, nil, corrupt(size-4, "bad footer magic")
	}
	idxOff := int64(binary.LittleEndian.Uint64(ft))
	tailStart := size - int64(len(tail))
	if idxOff < 5 || idxOff > size-footerSize || idxOff < tailStart {
		return nil, nil, corrupt(size-footerSize, "bad index offset")
	}
	ix := tail[idxOff-tailStart : len(tail)-footerSize]
	if crc32.Checksum(ix, crcTable) != binary.LittleEndian.Uint32(ft[8:]) {
		return nil, nil, corrupt(idxOff, "index checksum mismatch")
	}
	bf := &blockFile{name: name, size: size, minT: math.MaxInt64, maxT: math.MinInt64}
	if len(ix) < 1 {
		return nil, nil, corrupt(idxOff, "empty index")
	}
	bf.level = int(ix[0])
	p := ix[1:]
	uv := func() (uint64, bool) {
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return 0, false
		}
		p = p[k:]
		return v, true
	}
	sv := func() (int64, bool) {
		v, k := binary.Varint(p)
		if k <= 0 {
			return 0, false
		}
		p = p[k:]
		return v, true
	}
	var ok1, ok2, ok3 bool
	var n uint64
	bf.seqLo, ok1 = uv()
	bf.seqHi, ok2 = uv()
	n, ok3 = uv()
	if !ok1 || !ok2 || !ok3 || n > uint64(len(p)) {
		return nil, nil, corrupt(idxOff, "bad index header")
	}
	entries := make([]indexEntry, 0, n)
	for range n {
		l, ok := uv()
		if !ok || l == 0 || l > uint64(len(p)) {
			return nil, nil, corrupt(idxOff, "bad index entry")
		}
		var e indexEntry
		e.point = string(p[:l])
		p = p[l:]
		if len(p) < 1 {
			return nil, nil, corrupt(idxOff, "bad index entry")
		}
		e.tier = int(p[0])
		p = p[1:]
		off, ok1 := uv()
		sz, ok2 := uv()
		minT, ok3 := sv()
		maxT, ok4 := sv()
		cnt, ok5 := uv()
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || e.tier > ntiers || off < 5 || sz == 0 || off+sz > uint64(idxOff) || maxT < minT || cnt == 0 || cnt > codec.MaxCount {
			return nil, nil, corrupt(idxOff, "bad index entry")
		}
		e.ref = chunkRef{f: bf, off: int64(off), size: int32(sz), count: int32(cnt), minT: minT, maxT: maxT}
		bf.minT, bf.maxT = min(bf.minT, minT), max(bf.maxT, maxT)
		entries = append(entries, e)
	}
	if len(p) != 0 {
		return nil, nil, corrupt(idxOff, "trailing bytes in index")
	}
	return bf, entries, nil
}

func (db *DB) readChunk(ctx context.Context, r chunkRef) ([]byte, error) {
	f := r.f
	switch {
	case f.data != nil:
		return f.data[r.off : r.off+int64(r.size)], nil
	case f.cold.Load():
		data, err := db.coldBytes(ctx, f)
		if err != nil {
			return nil, err
		}
		if r.off+int64(r.size) > int64(len(data)) {
			return nil, &CorruptError{File: f.name, Offset: r.off, Err: errors.New("archived file shorter than its index")}
		}
		return data[r.off : r.off+int64(r.size)], nil
	default:
		b := make([]byte, r.size)
		if _, err := f.f.ReadAt(b, r.off); err != nil {
			return nil, fmt.Errorf("history: read %s: %w", f.name, err)
		}
		return b, nil
	}
}

func (db *DB) coldBytes(ctx context.Context, f *blockFile) ([]byte, error) {
	if b, ok := db.coldCache.Get(f.name); ok {
		return b, nil
	}
	b, err := db.cfg.archive.Get(ctx, f.name)
	if err != nil {
		return nil, fmt.Errorf("history: archive get %s: %w", f.name, err)
	}
	db.coldCache.Add(f.name, b)
	return b, nil
}
