package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/voltage-ems/ems/history/internal/codec"
)

// compact merges, level by level, the oldest fanIn files of a level into
// one file of the next level. Queries and writes continue meanwhile; only
// the swap of chunk references takes each series' lock briefly.
func (db *DB) compact(ctx context.Context) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	for level := 0; level < db.cfg.maxLevel; level++ {
		for {
			in := db.pickCompaction(level)
			if in == nil {
				break
			}
			if err := db.compactFiles(ctx, in, level+1); err != nil {
				var ce *CorruptError
				if errors.As(err, &ce) {
					db.log.Warn("history: compaction skipped a corrupt file", "err", err)
					continue
				}
				return err
			}
		}
	}
	return nil
}

func (db *DB) pickCompaction(level int) []*blockFile {
	db.filesMu.RLock()
	var fs []*blockFile
	for _, f := range db.files {
		if f.level == level && !f.cold.Load() && !f.noCompact.Load() {
			fs = append(fs, f)
		}
	}
	db.filesMu.RUnlock()
	if len(fs) < db.cfg.compactFanIn {
		return nil
	}
	slices.SortFunc(fs, func(a, b *blockFile) int { return cmpInt(int64(a.seqLo), int64(b.seqLo)) })
	return fs[:db.cfg.compactFanIn]
}

func (db *DB) compactFiles(ctx context.Context, in []*blockFile, level int) error {
	isIn := func(f *blockFile) bool { return slices.Contains(in, f) }
	b, err := newFileBuilder(db.buildDir())
	if err != nil {
		return err
	}
	defer b.abort()
	type swap struct {
		s    *series
		refs []indexEntry
	}
	var swaps []swap
	for _, s := range db.allSeries() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		var raw []chunkRef
		for _, r := range s.raw {
			if isIn(r.f) {
				raw = append(raw, r)
			}
		}
		tiers := make([][]chunkRef, len(s.tiers))
		has := len(raw) > 0
		for i, ts := range s.tiers {
			for _, r := range ts {
				if isIn(r.f) {
					tiers[i] = append(tiers[i], r)
					has = true
				}
			}
		}
		s.mu.Unlock()
		if !has {
			continue
		}
		before := len(b.entries)
		if len(raw) > 0 {
			all := &codec.Columns{}
			for _, r := range raw {
				c, err := db.decodeRaw(ctx, s.name, r)
				if err != nil {
					r.f.noCompact.Store(true)
					return err
				}
				all.T, all.V, all.Q = append(all.T, c.T...), append(all.V, c.V...), append(all.Q, c.Q...)
			}
			for lo := 0; lo < len(all.T); lo += db.cfg.maxChunk {
				hi := min(lo+db.cfg.maxChunk, len(all.T))
				part := &codec.Columns{T: all.T[lo:hi], V: all.V[lo:hi], Q: all.Q[lo:hi]}
				buf, k, err := codec.Encode(nil, part, codec.Options{NoDeflate: db.cfg.noDeflate})
				if err != nil {
					return err
				}
				db.codecCount[k].Add(1)
				b.add(s.name, 0, buf, hi-lo, part.T[0], part.T[len(part.T)-1])
			}
		}
		for ti, refs := range tiers {
			var starts []int64
			var accs []acc
			for _, r := range refs {
				st, ac, err := db.decodeTier(ctx, s.name, r)
				if err != nil {
					r.f.noCompact.Store(true)
					return err
				}
				for i, t := range st {
					if n := len(starts); n > 0 && starts[n-1] == t {
						accs[n-1].merge(ac[i])
						continue
					}
					starts, accs = append(starts, t), append(accs, ac[i])
				}
			}
			if len(starts) == 0 {
				continue
			}
			if !slices.IsSorted(starts) {
				return fmt.Errorf("history: compaction: rollup buckets of %s out of order", s.name)
			}
			buf, err := encodeRollup(nil, starts, accs, codec.Options{NoDeflate: true})
			if err != nil {
				return err
			}
			b.add(s.name, ti+1, buf, len(starts), starts[0], starts[len(starts)-1])
		}
		swaps = append(swaps, swap{s, slices.Clone(b.entries[before:])})
	}
	bf, err := db.writeFile(b, level, in[0].seqLo, in[len(in)-1].seqHi)
	if err != nil {
		return err
	}
	for _, sw := range swaps {
		s := sw.s
		s.mu.Lock()
		s.raw = slices.DeleteFunc(s.raw, func(r chunkRef) bool { return isIn(r.f) })
		for i := range s.tiers {
			s.tiers[i] = slices.DeleteFunc(s.tiers[i], func(r chunkRef) bool { return isIn(r.f) })
		}
		for _, e := range sw.refs {
			e.ref.f = bf
			if e.tier == 0 {
				s.raw = append(s.raw, e.ref)
			} else {
				s.tiers[e.tier-1] = append(s.tiers[e.tier-1], e.ref)
			}
		}
		sortRefs(s)
		s.mu.Unlock()
	}
	db.filesMu.Lock()
	for _, f := range in {
		delete(db.files, f.name)
		db.removeFile(f)
	}
	db.filesMu.Unlock()
	db.compacted.Add(1)
	if db.met != nil {
		db.met.compaction.Inc()
	}
	return nil
}

// applyRetention drops chunks past their tier's retention and deletes
// files nothing refers to any more.
func (db *DB) applyRetention(now time.Time) {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	nowMs := now.UnixMilli()
	dropped := false
	refd := make(map[*blockFile]bool)
	for _, s := range db.allSeries() {
		s.mu.Lock()
		if r := db.cfg.rawRetention; r > 0 {
			cut := nowMs - r.Milliseconds()
			n := len(s.raw)
			s.raw = slices.DeleteFunc(s.raw, func(c chunkRef) bool { return c.maxT < cut })
			dropped = dropped || len(s.raw) != n
		}
		for i, t := range db.cfg.tiers {
			if t.Retention > 0 {
				cut := nowMs - t.Retention.Milliseconds()
				n := len(s.tiers[i])
				s.tiers[i] = slices.DeleteFunc(s.tiers[i], func(c chunkRef) bool { return c.maxT+db.tres[i] <= cut })
				dropped = dropped || len(s.tiers[i]) != n
			}
		}
		for _, r := range s.raw {
			refd[r.f] = true
		}
		for _, ts := range s.tiers {
			for _, r := range ts {
				refd[r.f] = true
			}
		}
		s.mu.Unlock()
	}
	if dropped {
		db.gen.Add(1)
	}
	db.filesMu.Lock()
	for name, f := range db.files {
		if !refd[f] {
			delete(db.files, name)
			db.removeFile(f)
			db.log.Info("history: removed block file past retention", "file", name)
		}
	}
	db.filesMu.Unlock()
}

// archiveCold moves local block files whose newest data is older than the
// cold age into the archive.
func (db *DB) archiveCold(ctx context.Context, now time.Time) error {
	if db.cfg.archive == nil || db.dir == "" {
		return nil
	}
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	cut := now.Add(-db.cfg.coldAfter).UnixMilli()
	db.filesMu.RLock()
	var move []*blockFile
	for _, f := range db.files {
		if !f.cold.Load() && f.maxT < cut {
			move = append(move, f)
		}
	}
	db.filesMu.RUnlock()
	for _, f := range move {
		data := make([]byte, f.size)
		if _, err := f.f.ReadAt(data, 0); err != nil {
			return fmt.Errorf("history: archive %s: %w", f.name, err)
		}
		if err := db.cfg.archive.Put(ctx, f.name, data); err != nil {
			return fmt.Errorf("history: archive put %s: %w", f.name, err)
		}
		db.filesMu.Lock()
		f.cold.Store(true)
		f.f.Close()
		f.f = nil
		if err := removeLocal(f.path); err != nil {
			db.log.Warn("history: remove archived local file", "file", f.path, "err", err)
		}
		f.path = ""
		db.filesMu.Unlock()
		db.log.Info("history: moved block file to cold archive", "file", f.name)
	}
	return nil
}

func removeLocal(p string) error {
	if p == "" {
		return nil
	}
	return os.Remove(p)
}
