package history

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// queryCache holds query results with what they depended on. An entry is
// valid while no write could have touched its range: for every series in
// it, either its version is unchanged or the query ended before the oldest
// time the out-of-order window still lets a write reach.
type queryCache struct {
	lru *lru.Cache[string, *cacheEntry]
}

type cacheEntry struct {
	res       []Series
	deps      []dep
	to        int64
	seriesGen uint64
	gen       uint64
}

type dep struct {
	s    *series
	ver  uint64
	low  int64 // no write may land before this time any more
	none bool  // series had no data
}

func newQueryCache(n int) *queryCache {
	c, _ := lru.New[string, *cacheEntry](n)
	return &queryCache{lru: c}
}

func (db *DB) cacheGet(key string) ([]Series, bool) {
	e, ok := db.cache.lru.Get(key)
	if !ok {
		return nil, false
	}
	if e.seriesGen != db.seriesGen.Load() || e.gen != db.gen.Load() {
		db.cache.lru.Remove(key)
		return nil, false
	}
	for _, d := range e.deps {
		if d.s.ver.Load() != d.ver && (d.none || e.to > d.low) {
			db.cache.lru.Remove(key)
			return nil, false
		}
	}
	return e.res, true
}

func copySeries(in []Series) []Series {
	out := make([]Series, len(in))
	for i, s := range in {
		out[i] = Series{Point: s.Point, Points: append([]Point(nil), s.Points...)}
	}
	return out
}
