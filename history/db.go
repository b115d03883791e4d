package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/voltage-ems/ems/history/internal/codec"
	"github.com/voltage-ems/ems/model"
)

// Store is what the EMS needs from a history backend.
type Store interface {
	Write(ctx context.Context, batch []model.Sample) error
	Query(ctx context.Context, q Query) ([]Series, error)
}

// DB is the embedded time-series store. It is safe for concurrent use.
type DB struct {
	cfg    config
	dir    string // "" in memory
	log    *slog.Logger
	met    *metrics
	window int64 // out-of-order window, ms
	tres   []int64

	closeMu sync.RWMutex
	closed  bool

	seriesMu  sync.RWMutex
	series    map[string]*series
	names     []string // sorted
	seriesGen atomic.Uint64

	wmu        sync.Mutex // serialises writers: WAL order == apply order
	wal        *wal
	rec        recBuilder
	walIDs     uint64             // IDs handed out in the current WAL segment
	walSeg     int                // segment the IDs belong to
	wSeries    map[string]*series // writer's lock-free lookup (wmu)
	scratch    []pending
	batchEpoch uint64
	aggs       []*aggState

	headSamples atomic.Int64
	headAtFlush atomic.Int64 // head size after the last flush
	walAtCkpt   int64        // wal.written at the last checkpoint (maintMu)

	maintMu sync.Mutex // flush, compaction, retention, archiving
	nextSeq uint64

	filesMu sync.RWMutex // queries hold R while reading chunks; removal holds W
	files   map[string]*blockFile
	gen     atomic.Uint64 // bumped when retention drops data (cache validity)

	coldCache *lru.Cache[string, []byte]
	cache     *queryCache
	sf        singleflight.Group

	compacted  atomic.Int64
	cacheHits  atomic.Int64
	cacheMiss  atomic.Int64
	corrupt    atomic.Int64
	rejected   atomic.Int64
	codecCount [codec.NumCodecs]atomic.Int64

	unlock  func()
	flushCh chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
}

type pending struct {
	s *series
	t int64
	v float64
	q uint8
}

type aggState struct {
	def     AggregateSeries
	members []*series
	touched uint64 // batch epoch
	maxT    int64
}

// Open opens (or creates) a store in dir, or an in-memory store when dir is
// "". It replays the WAL and starts the background goroutines (interval
// fsync, flush, compaction, retention, archiving) that Close stops.
func Open(dir string, opts ...Option) (*DB, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			cfg.bad("nil option")
			continue
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if len(cfg.tiers) > 250 {
		return nil, fmt.Errorf("%w: too many tiers", ErrInvalidOption)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db := &DB{
		cfg:     cfg,
		dir:     dir,
		log:     log,
		window:  cfg.oooWindow.Milliseconds(),
		series:  make(map[string]*series),
		wSeries: make(map[string]*series),
		files:   make(map[string]*blockFile),
		flushCh: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		nextSeq: 1,
	}
	for _, t := range cfg.tiers {
		db.tres = append(db.tres, t.Resolution.Milliseconds())
	}
	for _, a := range cfg.aggregates {
		db.aggs = append(db.aggs, &aggState{def: a})
	}
	db.coldCache, _ = lru.New[string, []byte](4)
	if cfg.cacheSize > 0 {
		db.cache = newQueryCache(cfg.cacheSize)
	}
	var err error
	if db.met, err = newMetrics(cfg.reg, db); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := db.openDisk(); err != nil {
			db.closeFiles()
			return nil, err
		}
	}
	db.applyRetention(time.Now())
	db.start()
	return db, nil
}

func (db *DB) blocksDir() string { return filepath.Join(db.dir, "blocks") }
func (db *DB) walDir() string    { return filepath.Join(db.dir, "wal") }

func (db *DB) openDisk() error {
	for _, d := range []string{db.dir, db.blocksDir(), db.walDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("history: open: %w", err)
		}
	}
	unlock, err := lockDir(db.dir)
	if err != nil {
		return err
	}
	db.unlock = unlock
	ents, err := os.ReadDir(db.blocksDir())
	if err != nil {
		return err
	}
	var loaded []loadedFile
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(db.blocksDir(), name)
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(p)
			continue
		}
		if !strings.HasSuffix(name, ".blk") {
			continue
		}
		lf, err := db.loadLocal(p, name)
		if err != nil {
			db.corrupt.Add(1)
			db.log.Warn("history: skipping unreadable block file", "file", p, "err", err)
			continue
		}
		loaded = append(loaded, lf)
	}
	if db.cfg.archive != nil {
		names, err := db.cfg.archive.List(context.Background())
		if err != nil {
			return fmt.Errorf("history: archive list: %w", err)
		}
		for _, name := range names {
			if !strings.HasSuffix(name, ".blk") {
				continue
			}
			b, err := db.cfg.archive.Get(context.Background(), name)
			if err != nil {
				return fmt.Errorf("history: archive get %s: %w", name, err)
			}
			bf, ents, err := parseIndex(name, b, int64(len(b)), len(db.tres))
			if err != nil {
				db.corrupt.Add(1)
				db.log.Warn("history: skipping unreadable archived block file", "file", name, "err", err)
				continue
			}
			bf.cold.Store(true)
			loaded = append(loaded, loadedFile{bf, ents})
		}
	}
	// A compaction that crashed after writing its output but before removing
	// its inputs leaves files whose flush range another file contains.
	for _, lf := range loaded {
		obsolete := false
		for _, o := range loaded {
			if o.f != lf.f && o.f.seqLo <= lf.f.seqLo && lf.f.seqHi <= o.f.seqHi && (o.f.seqHi-o.f.seqLo > lf.f.seqHi-lf.f.seqLo) {
				obsolete = true
			}
		}
		if obsolete {
			db.log.Info("history: removing block file superseded by compaction", "file", lf.f.name)
			db.removeFile(lf.f)
			continue
		}
		db.files[lf.f.name] = lf.f
		db.nextSeq = max(db.nextSeq, lf.f.seqHi+1)
		for _, e := range lf.entries {
			s := db.getSeries(e.point)
			if e.tier == 0 {
				s.raw = append(s.raw, e.ref)
				if e.ref.maxT > s.blockMaxT.Load() {
					s.blockMaxT.Store(e.ref.maxT)
				}
			} else {
				s.tiers[e.tier-1] = append(s.tiers[e.tier-1], e.ref)
			}
		}
	}
	for _, s := range db.series {
		sortRefs(s)
		if bm := s.blockMaxT.Load(); bm != minTime {
			s.has, s.maxT, s.wHas, s.wMaxT = true, bm, true, bm
		}
	}
	last, skipped, err := replayWAL(db.walDir(), db.log, db.replayApply)
	if err != nil {
		return err
	}
	db.corrupt.Add(int64(skipped))
	// Segments left from before this Open count towards the next checkpoint,
	// so a store that is restarted often still trims its WAL.
	segs, _ := filepath.Glob(filepath.Join(db.walDir(), "*"+segSuffix))
	for _, p := range segs {
		if st, err := os.Stat(p); err == nil {
			db.walAtCkpt -= st.Size()
		}
	}
	db.wal, err = openWAL(db.walDir(), db.cfg.segmentSize, db.log, last+1)
	return err
}

type loadedFile struct {
	f       *blockFile
	entries []indexEntry
}

func (db *DB) loadLocal(p, name string) (loadedFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return loadedFile{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return loadedFile{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		f.Close()
		return loadedFile{}, err
	}
	bf, ents, err := parseIndex(name, b, st.Size(), len(db.tres))
	if err != nil {
		f.Close()
		return loadedFile{}, err
	}
	bf.f, bf.path = f, p
	return loadedFile{bf, ents}, nil
}

func sortRefs(s *series) {
	slices.SortFunc(s.raw, func(a, b chunkRef) int { return cmpInt(a.minT, b.minT) })
	for i := range s.tiers {
		slices.SortStableFunc(s.tiers[i], func(a, b chunkRef) int {
			if c := cmpInt(int64(a.f.seqLo), int64(b.f.seqLo)); c != 0 {
				return c
			}
			return cmpInt(a.minT, b.minT)
		})
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replayApply applies one WAL sample during Open (no window check; samples
// already in blocks are dropped).
func (db *DB) replayApply(point []byte, t int64, v float64, q uint8) {
	s := db.lookup(point)
	if s == nil {
		s = db.getSeries(string(point))
	}
	if t <= s.blockMaxT.Load() {
		return
	}
	n := len(s.head)
	s.insert(t, v, q)
	if len(s.head) > n {
		db.headSamples.Add(1)
	}
	if !s.wHas || t > s.wMaxT {
		s.wHas, s.wMaxT = true, t
	}
}

func (db *DB) lookup(point []byte) *series {
	db.seriesMu.RLock()
	s := db.series[string(point)]
	db.seriesMu.RUnlock()
	return s
}

// getSeries returns the series, creating it.
func (db *DB) getSeries(name string) *series {
	db.seriesMu.RLock()
	s := db.series[name]
	db.seriesMu.RUnlock()
	if s != nil {
		return s
	}
	db.seriesMu.Lock()
	defer db.seriesMu.Unlock()
	if s = db.series[name]; s != nil {
		return s
	}
	s = newSeries(name, len(db.tres))
	for _, a := range db.aggs {
		if a.def.Name == name {
			continue
		}
		for _, m := range a.def.Members {
			if ok, _ := path.Match(m, name); ok {
				a.members = append(a.members, s)
				s.aggs = append(s.aggs, a)
				break
			}
		}
	}
	db.series[name] = s
	i, _ := slices.BinarySearch(db.names, name)
	db.names = slices.Insert(db.names, i, name)
	db.seriesGen.Add(1)
	return s
}

// Write stores the samples. It does not retain batch. Timestamps are stored
// with millisecond resolution (truncated). Samples older than the
// out-of-order window are rejected and reported with *OutOfOrderError after
// the rest of the batch is stored; a sample with an empty point is rejected
// too. Duplicate timestamps: the last write wins.
func (db *DB) Write(ctx context.Context, batch []model.Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.batchEpoch++
	epoch := db.batchEpoch
	acc := db.scratch[:0]
	var ooo *OutOfOrderError
	var bad error
	var touched []*aggState
	var last *series
	for i := range batch {
		smp := &batch[i]
		if smp.Point == "" {
			bad = fmt.Errorf("history: sample %d has an empty point ID", i)
			continue
		}
		s := last
		if s == nil || s.name != smp.Point {
			if s = db.wSeries[smp.Point]; s == nil {
				s = db.getSeries(smp.Point)
				db.wSeries[smp.Point] = s
			}
			last = s
		}
		t := smp.Time.UnixMilli()
		if !db.accept(s, t) {
			db.reject(&ooo, smp)
			continue
		}
		acc = append(acc, pending{s, t, smp.Value, uint8(smp.Quality)})
		if s.batchEpoch != epoch || t >= s.batchT {
			s.batchEpoch, s.batchT, s.batchV, s.batchQ = epoch, t, smp.Value, uint8(smp.Quality)
		}
		for _, a := range s.aggs {
			if a.touched != epoch {
				a.touched, a.maxT = epoch, t
				touched = append(touched, a)
			} else if t > a.maxT {
				a.maxT = t
			}
		}
	}
	for _, a := range touched {
		v, ok := a.compute(epoch)
		if !ok {
			continue
		}
		s := db.getSeries(a.def.Name)
		if !db.accept(s, a.maxT) {
			db.reject(&ooo, &model.Sample{Point: a.def.Name, Time: time.UnixMilli(a.maxT)})
			continue
		}
		acc = append(acc, pending{s, a.maxT, v, 0})
	}
	db.scratch = acc[:0]
	if len(acc) > 0 {
		if db.wal != nil {
			if err := db.appendWAL(acc); err != nil {
				return err
			}
		}
		db.apply(acc)
	}
	if db.met != nil {
		db.met.written.Add(float64(len(acc)))
	}
	if db.headSamples.Load()-db.headAtFlush.Load() > int64(db.cfg.maxHead) {
		select {
		case db.flushCh <- struct{}{}:
		default:
		}
	}
	if ooo != nil {
		return errors.Join(ooo, bad)
	}
	return bad
}

// accept checks the window and records the new newest time (wmu held).
func (db *DB) accept(s *series, t int64) bool {
	if t <= s.blockMaxT.Load() || (s.wHas && t < s.wMaxT-db.window) {
		return false
	}
	if !s.wHas || t > s.wMaxT {
		s.wHas, s.wMaxT = true, t
	}
	return true
}

func (db *DB) reject(ooo **OutOfOrderError, smp *model.Sample) {
	db.rejected.Add(1)
	if db.met != nil {
		db.met.rejected.Inc()
	}
	if *ooo == nil {
		*ooo = &OutOfOrderError{Point: smp.Point, Time: smp.Time, Window: db.cfg.oooWindow}
	}
	(*ooo).Rejected++
}

// compute evaluates an aggregate series over the latest value of every
// member (this batch's value when it has one). Bad values are skipped.
func (a *aggState) compute(epoch uint64) (float64, bool) {
	var r acc
	for _, m := range a.members {
		var v float64
		var q uint8
		if m.batchEpoch == epoch {
			v, q = m.batchV, m.batchQ
		} else {
			m.mu.Lock()
			n := len(m.head)
			if n == 0 {
				m.mu.Unlock()
				continue
			}
			v, q = m.head[n-1].v, m.head[n-1].q
			m.mu.Unlock()
		}
		if usable(q, v) {
			r.add(v)
		}
	}
	if r.n == 0 && a.def.Agg != AggCount {
		return 0, false
	}
	return r.value(a.def.Agg), true
}

const maxRecordPayload = 8 << 20

func (db *DB) appendWAL(acc []pending) error {
	if db.wal.full() {
		if _, err := db.wal.rotate(); err != nil {
			return err
		}
	}
	if db.walSeg != db.wal.seq {
		db.walSeg, db.walIDs = db.wal.seq, 0
	}
	r := &db.rec
	r.reset()
	for _, p := range acc {
		s := p.s
		if s.walSeg != db.walSeg || s.walID == 0 {
			db.walIDs++
			s.walSeg, s.walID = db.walSeg, db.walIDs
			r.def(s.walID, s.name)
		}
		r.add(s.walID, p.t, p.v, p.q)
		if r.size() > maxRecordPayload {
			if err := db.wal.write(r.finish(), false); err != nil {
				return err
			}
			r.reset()
		}
	}
	if r.n > 0 || r.nd > 0 {
		if err := db.wal.write(r.finish(), db.cfg.sync == SyncAlways); err != nil {
			return err
		}
	} else if db.cfg.sync == SyncAlways {
		if err := db.wal.sync(); err != nil {
			return err
		}
	}
	if cap(r.out) > 4*maxRecordPayload {
		*r = recBuilder{}
	}
	return nil
}

func (db *DB) apply(acc []pending) {
	var added int64
	for i := 0; i < len(acc); {
		s := acc[i].s
		s.mu.Lock()
		j := i
		for ; j < len(acc) && acc[j].s == s; j++ {
			n := len(s.head)
			s.insert(acc[j].t, acc[j].v, acc[j].q)
			added += int64(len(s.head) - n)
		}
		s.mu.Unlock()
		s.ver.Add(1)
		i = j
	}
	db.headSamples.Add(added)
}

// Close flushes the head into blocks (and the WAL checkpoint), stops the
// background goroutines and closes the files. Further calls return ErrClosed.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.closeMu.Unlock()
	close(db.stop)
	db.wg.Wait()
	err := db.flush(context.Background())
	if db.wal != nil {
		if cerr := db.wal.close(); err == nil {
			err = cerr
		}
	}
	db.closeFiles()
	if db.met != nil {
		db.met.unregister()
	}
	return err
}

func (db *DB) closeFiles() {
	db.filesMu.Lock()
	defer db.filesMu.Unlock()
	for _, f := range db.files {
		if f.f != nil {
			f.f.Close()
		}
	}
	if db.unlock != nil {
		db.unlock()
		db.unlock = nil
	}
}

// start launches the background goroutines.
func (db *DB) start() {
	if db.wal != nil && db.cfg.sync == SyncInterval {
		db.every(db.cfg.syncInterval, nil, func() {
			// fsync outside wmu so writers are not held up; a segment
			// rotated meanwhile was synced by rotate.
			db.wmu.Lock()
			f := db.wal.f
			db.wmu.Unlock()
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				db.log.Error("history: wal fsync", "err", err)
			}
		})
	}
	db.every(db.cfg.flushInterval, db.flushCh, func() {
		if err := db.maintain(context.Background()); err != nil {
			db.log.Error("history: background maintenance", "err", err)
		}
	})
}

// every runs fn in a goroutine every interval, and whenever wake fires,
// until Close.
func (db *DB) every(interval time.Duration, wake <-chan struct{}, fn func()) {
	db.wg.Add(1)
	go func() {
		defer db.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-db.stop:
				return
			case <-t.C:
			case <-wake:
			}
			fn()
		}
	}()
}

// Maintain runs one round of background work now: flush the head into a
// block, compact, apply retention, archive cold files. The background
// goroutine calls it every flush interval; tests and tools may call it.
func (db *DB) Maintain(ctx context.Context) error {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.maintain(ctx)
}

func (db *DB) maintain(ctx context.Context) error {
	if err := db.flush(ctx); err != nil {
		return err
	}
	if err := db.compact(ctx); err != nil {
		return err
	}
	db.applyRetention(time.Now())
	return db.archiveCold(ctx, time.Now())
}

// Flush cuts every series' head (samples older than the out-of-order
// window) into a new block file and checkpoints the WAL.
func (db *DB) Flush(ctx context.Context) error {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.flush(ctx)
}

func (db *DB) allSeries() []*series {
	db.seriesMu.RLock()
	defer db.seriesMu.RUnlock()
	out := make([]*series, 0, len(db.names))
	for _, n := range db.names {
		out = append(out, db.series[n])
	}
	return out
}

type cut struct {
	s    *series
	cutT int64
	refs []indexEntry
}

func (db *DB) flush(ctx context.Context) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	ckSeg := -1
	if db.wal != nil {
		db.wmu.Lock()
		seg, err := db.wal.rotate()
		db.wmu.Unlock()
		if err != nil {
			return err
		}
		ckSeg = seg
	}
	b, err := newFileBuilder(db.buildDir())
	if err != nil {
		return err
	}
	defer b.abort()
	var cuts []cut
	c := &codec.Columns{}
	for _, s := range db.allSeries() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		boundary := s.maxT - db.window
		_, i := s.headRange(minTime, boundary)
		if !s.has || i == 0 {
			s.mu.Unlock()
			continue
		}
		c.T, c.V, c.Q = c.T[:0], c.V[:0], c.Q[:0]
		for _, x := range s.head[:i] {
			c.T, c.V, c.Q = append(c.T, x.t), append(c.V, x.v), append(c.Q, x.q)
		}
		s.mu.Unlock()
		before := len(b.entries)
		if err := db.addChunks(b, s.name, c); err != nil {
			return err
		}
		cuts = append(cuts, cut{s: s, cutT: c.T[len(c.T)-1], refs: slices.Clone(b.entries[before:])})
	}
	if len(cuts) > 0 {
		seq := db.nextSeq
		db.nextSeq++
		bf, err := db.writeFile(b, 0, seq, seq)
		if err != nil {
			return err
		}
		var dropped int64
		for _, ct := range cuts {
			s := ct.s
			s.mu.Lock()
			_, i := s.headRange(minTime, ct.cutT+1)
			copy(s.head, s.head[i:])
			s.head = s.head[:len(s.head)-i]
			dropped += int64(i)
			for _, e := range ct.refs {
				e.ref.f = bf
				if e.tier == 0 {
					s.raw = append(s.raw, e.ref)
				} else {
					s.tiers[e.tier-1] = append(s.tiers[e.tier-1], e.ref)
				}
			}
			s.blockMaxT.Store(ct.cutT)
			s.mu.Unlock()
		}
		db.headSamples.Add(-dropped)
	}
	db.headAtFlush.Store(db.headSamples.Load())
	// The head always holds the out-of-order window, so a checkpoint
	// rewrites it: do that only once the WAL since the last one is at least
	// twice the head's size (bounded replay, bounded write amplification).
	if db.wal != nil {
		db.wmu.Lock()
		written := db.wal.written
		db.wmu.Unlock()
		if written-db.walAtCkpt > max(checkpointMinBytes, 2*30*db.headSamples.Load()) {
			if err := db.checkpoint(ckSeg); err != nil {
				return err
			}
			db.walAtCkpt = written
		}
	}
	return nil
}

// checkpointMinBytes is the least WAL growth between two checkpoints.
var checkpointMinBytes int64 = 64 << 20

// addChunks encodes c as raw chunks of at most maxChunk samples plus one
// rollup chunk per tier.
func (db *DB) addChunks(b *fileBuilder, name string, c *codec.Columns) error {
	opt := codec.Options{NoDeflate: db.cfg.noDeflate}
	var buf []byte
	for lo := 0; lo < len(c.T); lo += db.cfg.maxChunk {
		hi := min(lo+db.cfg.maxChunk, len(c.T))
		part := &codec.Columns{T: c.T[lo:hi], V: c.V[lo:hi], Q: c.Q[lo:hi]}
		var k codec.Codec
		var err error
		buf, k, err = codec.Encode(buf[:0], part, opt)
		if err != nil {
			return err
		}
		db.codecCount[k].Add(1)
		if db.met != nil {
			db.met.blocks.WithLabelValues(k.String()).Inc()
		}
		b.add(name, 0, buf, hi-lo, part.T[0], part.T[len(part.T)-1])
	}
	for ti, res := range db.tres {
		starts, accs := rollup(c, res)
		if len(starts) == 0 {
			continue
		}
		var err error
		// Rollup chunks are small and read often: skip deflate (its reader
		// setup costs more than it saves here).
		buf, err = encodeRollup(buf[:0], starts, accs, codec.Options{NoDeflate: true})
		if err != nil {
			return err
		}
		b.add(name, ti+1, buf, len(starts), starts[0], starts[len(starts)-1])
	}
	return nil
}

func (db *DB) buildDir() string {
	if db.dir == "" {
		return ""
	}
	return db.blocksDir()
}

func (db *DB) writeFile(b *fileBuilder, level int, seqLo, seqHi uint64) (*blockFile, error) {
	data, size, err := b.finish(level, seqLo, seqHi)
	if err != nil {
		return nil, fmt.Errorf("history: write block file: %w", err)
	}
	name := fmt.Sprintf("%016d-%016d.blk", seqLo, seqHi)
	bf := &blockFile{name: name, level: level, seqLo: seqLo, seqHi: seqHi, size: size, minT: math.MaxInt64, maxT: math.MinInt64}
	for _, e := range b.entries {
		bf.minT, bf.maxT = min(bf.minT, e.ref.minT), max(bf.maxT, e.ref.maxT)
	}
	if db.dir == "" {
		bf.data = data
	} else {
		p := filepath.Join(db.blocksDir(), name)
		if err := b.commit(p); err != nil {
			return nil, fmt.Errorf("history: write block file: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		bf.f, bf.path = f, p
	}
	db.filesMu.Lock()
	db.files[name] = bf
	db.filesMu.Unlock()
	return bf, nil
}

// checkpoint writes the current head as checkpoint.seg and drops older WAL.
func (db *DB) checkpoint(seg int) error {
	var out []byte
	var r recBuilder
	var id uint64
	for _, s := range db.allSeries() {
		s.mu.Lock()
		if len(s.head) > 0 {
			id++
			r.def(id, s.name)
		}
		for _, x := range s.head {
			r.add(id, x.t, x.v, x.q)
			if r.size() > maxRecordPayload {
				out = append(out, r.finish()...)
				r.reset()
				r.def(id, s.name) // IDs are per record batch; cheap to repeat
			}
		}
		s.mu.Unlock()
	}
	if r.n > 0 {
		out = append(out, r.finish()...)
	}
	return db.wal.checkpoint(seg, out)
}

// removeFile deletes a block file (local or archived). Caller holds filesMu
// or the file is not yet published.
func (db *DB) removeFile(f *blockFile) {
	if f.f != nil {
		f.f.Close()
	}
	if f.cold.Load() {
		if err := db.cfg.archive.Delete(context.Background(), f.name); err != nil {
			db.log.Warn("history: archive delete", "file", f.name, "err", err)
		}
		db.coldCache.Remove(f.name)
		return
	}
	if f.path != "" {
		if err := os.Remove(f.path); err != nil {
			db.log.Warn("history: remove block file", "file", f.path, "err", err)
		}
	}
}

var _ Store = (*DB)(nil)
