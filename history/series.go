package history

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

type sample struct {
	t int64
	v float64
	q uint8
}

// series is one point: the in-memory head (sorted, unique timestamps) and
// the chunks of its blocks. mu guards head, maxT, has, raw and tiers.
type series struct {
	name string

	mu    sync.Mutex
	head  []sample
	has   bool
	maxT  int64
	raw   []chunkRef   // sorted by minT, non-overlapping
	tiers [][]chunkRef // per rollup tier, sorted by file seqLo

	blockMaxT atomic.Int64 // newest sample cut into a block
	ver       atomic.Uint64

	// Writer-side state, guarded by DB.wmu.
	wHas   bool
	wMaxT  int64
	aggs   []*aggState // aggregate series this is a member of
	walSeg int         // WAL segment in which walID is defined
	walID  uint64      // 0: not defined in walSeg yet
	// batch scratch (DB.wmu): latest value in the current batch
	batchEpoch uint64
	batchT     int64
	batchV     float64
	batchQ     uint8
}

func newSeries(name string, ntiers int) *series {
	s := &series{name: name, tiers: make([][]chunkRef, ntiers)}
	s.blockMaxT.Store(minTime)
	return s
}

const minTime = -1 << 63

// insert adds a sample, replacing one with the same time (last write wins).
// Caller holds mu.
func (s *series) insert(t int64, v float64, q uint8) {
	n := len(s.head)
	if n == 0 || t > s.head[n-1].t {
		s.head = append(s.head, sample{t, v, q})
	} else {
		i := sort.Search(n, func(i int) bool { return s.head[i].t >= t })
		if i < n && s.head[i].t == t {
			s.head[i] = sample{t, v, q}
		} else {
			s.head = slices.Insert(s.head, i, sample{t, v, q})
		}
	}
	if !s.has || t > s.maxT {
		s.has, s.maxT = true, t
	}
}

// headRange returns the index range of head samples in [from, to).
func (s *series) headRange(from, to int64) (int, int) {
	i := sort.Search(len(s.head), func(i int) bool { return s.head[i].t >= from })
	j := sort.Search(len(s.head), func(i int) bool { return s.head[i].t >= to })
	return i, j
}

func overlapping(refs []chunkRef, from, to int64) []chunkRef {
	var out []chunkRef
	for _, r := range refs {
		if r.maxT >= from && r.minT < to {
			out = append(out, r)
		}
	}
	return out
}
