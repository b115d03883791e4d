package history

import (
	"context"
	"errors"
	"path"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/voltage-ems/ems/history/internal/codec"
)

func (db *DB) corruptErr(name string, r chunkRef, err error) error {
	db.corrupt.Add(1)
	db.log.Warn("history: corrupt block", "file", r.f.name, "offset", r.off, "series", name, "err", err)
	return &CorruptError{File: r.f.name, Offset: r.off, Point: name, Err: err}
}

func (db *DB) decodeRaw(ctx context.Context, name string, r chunkRef) (*codec.Columns, error) {
	b, err := db.readChunk(ctx, r)
	if err != nil {
		return nil, err
	}
	c, h, size, err := codec.Decode(b)
	if err == nil && (size != len(b) || h.Count != int(r.count) || h.MinT != r.minT || h.MaxT != r.maxT) {
		err = errors.New("block header differs from the file index")
	}
	if err != nil {
		return nil, db.corruptErr(name, r, err)
	}
	return c, nil
}

func (db *DB) decodeTier(ctx context.Context, name string, r chunkRef) ([]int64, []acc, error) {
	b, err := db.readChunk(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	st, ac, err := decodeRollup(b)
	if err == nil && (len(st) != int(r.count) || st[0] != r.minT || st[len(st)-1] != r.maxT) {
		err = errors.New("rollup differs from the file index")
	}
	if err != nil {
		return nil, nil, db.corruptErr(name, r, err)
	}
	return st, ac, nil
}

// Query returns one Series per matched point that has data in the range,
// ordered by point ID, samples or buckets in time order. Errors: *QueryError
// (ErrInvalidQuery), *LimitError (ErrLimit), *CorruptError (ErrCorrupt) when
// a block in range fails its checksum, ErrClosed.
//
// Aggregations use the coarsest rollup tier whose resolution divides Step
// (for the whole tier buckets inside the range) plus raw samples for the
// edges and the in-memory head; results are the same as from raw samples
// (sums and averages up to floating-point rounding order).
func (db *DB) Query(ctx context.Context, q Query) ([]Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	db.closeMu.RLock()
	closed := db.closed
	if !closed && db.cache == nil {
		defer db.closeMu.RUnlock()
		return db.execute(ctx, q, nil)
	}
	db.closeMu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	key := q.key()
	if res, ok := db.cacheGet(key); ok {
		db.cacheHits.Add(1)
		if db.met != nil {
			db.met.cacheHits.Inc()
		}
		return copySeries(res), nil
	}
	db.cacheMiss.Add(1)
	if db.met != nil {
		db.met.cacheMiss.Inc()
	}
	ch := db.sf.DoChan(key, func() (any, error) {
		// This may outlive a caller that gave up: hold off Close meanwhile.
		// (The caller does not hold closeMu while it waits.)
		db.closeMu.RLock()
		defer db.closeMu.RUnlock()
		if db.closed {
			return nil, ErrClosed
		}
		e := &cacheEntry{to: q.To.UnixMilli(), seriesGen: db.seriesGen.Load(), gen: db.gen.Load()}
		// Shared by every caller of the same query: one caller's
		// cancellation must not fail the others.
		res, err := db.execute(context.WithoutCancel(ctx), q, e)
		if err != nil {
			return nil, err
		}
		e.res = res
		db.cache.lru.Add(key, e)
		return res, nil
	})
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return copySeries(r.Val.([]Series)), nil
}

func (db *DB) match(points []string) []*series {
	db.seriesMu.RLock()
	defer db.seriesMu.RUnlock()
	seen := make(map[*series]bool)
	var out []*series
	for _, p := range points {
		if !isGlob(p) {
			if s := db.series[p]; s != nil && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
			continue
		}
		for _, n := range db.names {
			if ok, _ := path.Match(p, n); ok {
				s := db.series[n]
				if !seen[s] {
					seen[s] = true
					out = append(out, s)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *series) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}

func (db *DB) execute(ctx context.Context, q Query, e *cacheEntry) ([]Series, error) {
	matched := db.match(q.Points)
	if len(matched) > db.cfg.maxPoints {
		return nil, &LimitError{What: "points", Limit: db.cfg.maxPoints, Got: len(matched)}
	}
	if e != nil {
		for _, s := range matched {
			ver := s.ver.Load()
			s.mu.Lock()
			e.deps = append(e.deps, dep{s: s, ver: ver, low: s.maxT - db.window, none: !s.has})
			s.mu.Unlock()
		}
	}
	db.filesMu.RLock()
	defer db.filesMu.RUnlock()
	budget := db.cfg.maxSamples
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	var out []Series
	for _, s := range matched {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var pts []Point
		var err error
		if q.Agg == AggRaw {
			pts, err = db.queryRaw(ctx, s, from, to, &budget)
		} else {
			pts, err = db.queryAgg(ctx, s, q, from, to, &budget)
		}
		if err != nil {
			return nil, err
		}
		if len(pts) > 0 {
			out = append(out, Series{Point: s.name, Points: pts})
		}
	}
	return out, nil
}

func (db *DB) limitErr(got int) error {
	return &LimitError{What: "samples", Limit: db.cfg.maxSamples, Got: got}
}

func (db *DB) queryRaw(ctx context.Context, s *series, from, to int64, budget *int) ([]Point, error) {
	s.mu.Lock()
	refs := overlapping(s.raw, from, to)
	i, j := s.headRange(from, to)
	head := slices.Clone(s.head[i:j])
	s.mu.Unlock()
	var pts []Point
	for _, r := range refs {
		c, err := db.decodeRaw(ctx, s.name, r)
		if err != nil {
			return nil, err
		}
		for k, t := range c.T {
			if t >= from && t < to {
				pts = append(pts, Point{Time: time.UnixMilli(t), Value: c.V[k], Quality: qual(c.Q[k])})
			}
		}
		if len(pts) > *budget {
			return nil, db.limitErr(db.cfg.maxSamples - *budget + len(pts))
		}
	}
	for _, x := range head {
		pts = append(pts, Point{Time: time.UnixMilli(x.t), Value: x.v, Quality: qual(x.q)})
	}
	if len(pts) > *budget {
		return nil, db.limitErr(db.cfg.maxSamples - *budget + len(pts))
	}
	*budget -= len(pts)
	return pts, nil
}

// pickTier returns the index of the coarsest usable tier for step, or -1.
func (db *DB) pickTier(step int64, from int64) int {
	now := time.Now().UnixMilli()
	for i := len(db.tres) - 1; i >= 0; i-- {
		res := db.tres[i]
		if res > step || step%res != 0 {
			continue
		}
		if ret := db.cfg.tiers[i].Retention; ret > 0 && from < now-ret.Milliseconds() {
			continue
		}
		return i
	}
	return -1
}

func (db *DB) queryAgg(ctx context.Context, s *series, q Query, from, to int64, budget *int) ([]Point, error) {
	step := q.Step.Milliseconds()
	b0 := floorDiv(from, step) * step
	if to <= from {
		return nil, nil
	}
	nb := (to - b0 + step - 1) / step
	if nb > int64(*budget) {
		return nil, db.limitErr(int(min(nb, 1<<62)))
	}
	accs := make([]acc, nb)
	addCols := func(c *codec.Columns, lo, hi int64) {
		for k, t := range c.T {
			if t >= lo && t < hi && usable(c.Q[k], c.V[k]) {
				accs[(t-b0)/step].add(c.V[k])
			}
		}
	}
	// Tier part [a, b): whole tier buckets inside the range.
	ti := db.pickTier(step, from)
	a, b := to, to
	if ti >= 0 {
		res := db.tres[ti]
		a = floorDiv(from+res-1, res) * res
		b = floorDiv(to, res) * res
		if a >= b {
			ti, a, b = -1, to, to
		}
	}
	s.mu.Lock()
	left := overlapping(s.raw, from, a)
	var right, tier []chunkRef
	if ti >= 0 {
		right = overlapping(s.raw, b, to)
		tier = overlapping(s.tiers[ti], a, b)
	}
	i, j := s.headRange(from, to)
	head := slices.Clone(s.head[i:j])
	s.mu.Unlock()

	// Cut samples in time order (left edge, tier buckets, right edge), then
	// the head, which is newer than everything cut.
	for _, r := range left {
		c, err := db.decodeRaw(ctx, s.name, r)
		if err != nil {
			return nil, err
		}
		addCols(c, from, a)
	}
	for _, r := range tier {
		st, ac, err := db.decodeTier(ctx, s.name, r)
		if err != nil {
			return nil, err
		}
		for k, t := range st {
			if t >= a && t < b {
				accs[(t-b0)/step].merge(ac[k])
			}
		}
	}
	for _, r := range right {
		c, err := db.decodeRaw(ctx, s.name, r)
		if err != nil {
			return nil, err
		}
		addCols(c, b, to)
	}
	for _, x := range head {
		if usable(x.q, x.v) {
			accs[(x.t-b0)/step].add(x.v)
		}
	}
	var pts []Point
	for k := range accs {
		if accs[k].n > 0 {
			pts = append(pts, Point{Time: time.UnixMilli(b0 + int64(k)*step), Value: accs[k].value(q.Agg)})
		}
	}
	*budget -= len(pts)
	return pts, nil
}
