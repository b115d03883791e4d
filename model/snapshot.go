package model

import (
	"math"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot holds the latest sample of every point.
//
// Readers (Get, Range) never block writers and never see a torn sample:
// each point is a small seqlock of atomics. Update is safe for concurrent
// use; the EMS data path calls it from one goroutine. Subscribers get the
// samples of the points matching their pattern on a bounded channel; when
// a subscriber falls behind, its oldest undelivered sample is dropped and
// counted, and the writer never waits.
type Snapshot struct {
	mu    sync.Mutex                       // serialises structural changes: new points, subscriptions
	cells atomic.Pointer[map[string]*cell] // copy-on-write index
	subs  atomic.Pointer[[]*Subscription]
	gen   atomic.Uint64 // bumped when the subscription set changes
}

type cell struct {
	point   string
	seq     atomic.Uint64 // odd while a write is in progress
	value   atomic.Uint64
	nanos   atomic.Int64
	quality atomic.Uint32
	set     atomic.Bool
	subs    atomic.Pointer[subList]
}

type subList struct {
	gen  uint64
	subs []*Subscription
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	s := &Snapshot{}
	m := map[string]*cell{}
	s.cells.Store(&m)
	var subs []*Subscription
	s.subs.Store(&subs)
	return s
}

func (s *Snapshot) cell(point string, create bool) *cell {
	if c, ok := (*s.cells.Load())[point]; ok || !create {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.cells.Load()
	if c, ok := old[point]; ok {
		return c
	}
	m := make(map[string]*cell, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := &cell{point: point}
	m[point] = c
	s.cells.Store(&m)
	return c
}

// Declare adds points with no value yet, so that the copy-on-write index is
// built once up front instead of growing sample by sample. Declared points
// without a value are not returned by Get or Range.
func (s *Snapshot) Declare(points []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.cells.Load()
	m := make(map[string]*cell, len(old)+len(points))
	for k, v := range old {
		m[k] = v
	}
	for _, p := range points {
		if _, ok := m[p]; !ok {
			m[p] = &cell{point: p}
		}
	}
	s.cells.Store(&m)
}

// Update stores the samples of batch as the latest values of their points
// and delivers them to matching subscribers. The batch is not retained.
func (s *Snapshot) Update(batch []Sample) {
	gen := s.gen.Load()
	for i := range batch {
		smp := &batch[i]
		c := s.cell(smp.Point, true)
		c.store(smp)
		if gen == 0 {
			continue // no subscription was ever made
		}
		sl := c.subs.Load()
		if sl == nil || sl.gen != gen {
			sl = s.matchSubs(c.point, gen)
			c.subs.Store(sl)
		}
		for _, sub := range sl.subs {
			sub.deliver(*smp)
		}
	}
}

func (c *cell) store(smp *Sample) {
	for {
		q := c.seq.Load()
		if q&1 == 0 && c.seq.CompareAndSwap(q, q+1) {
			break
		}
		runtime.Gosched()
	}
	c.value.Store(math.Float64bits(smp.Value))
	if smp.Time.IsZero() {
		c.nanos.Store(math.MinInt64)
	} else {
		c.nanos.Store(smp.Time.UnixNano())
	}
	c.quality.Store(uint32(smp.Quality))
	c.set.Store(true)
	c.seq.Add(1)
}

func (c *cell) load() (Sample, bool) {
	for {
		q := c.seq.Load()
		if q&1 == 1 {
			runtime.Gosched()
			continue
		}
		if !c.set.Load() {
			return Sample{}, false
		}
		smp := Sample{Point: c.point, Value: math.Float64frombits(c.value.Load()), Quality: Quality(c.quality.Load())}
		if n := c.nanos.Load(); n != math.MinInt64 {
			smp.Time = time.Unix(0, n).UTC()
		}
		if c.seq.Load() == q {
			return smp, true
		}
	}
}

// Get returns the latest sample of point.
func (s *Snapshot) Get(point string) (Sample, bool) {
	c := s.cell(point, false)
	if c == nil {
		return Sample{}, false
	}
	return c.load()
}

// Range calls fn for the latest sample of every point, in no particular
// order, until fn returns false. It sees a consistent sample per point, not
// a consistent cut across points.
func (s *Snapshot) Range(fn func(Sample) bool) {
	for _, c := range *s.cells.Load() {
		if smp, ok := c.load(); ok {
			if !fn(smp) {
				return
			}
		}
	}
}

// Points returns the ids of every point with a value, sorted.
func (s *Snapshot) Points() []string {
	var out []string
	for p, c := range *s.cells.Load() {
		if c.set.Load() {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Len returns the number of points with a value.
func (s *Snapshot) Len() int {
	n := 0
	for _, c := range *s.cells.Load() {
		if c.set.Load() {
			n++
		}
	}
	return n
}

func (s *Snapshot) matchSubs(point string, gen uint64) *subList {
	sl := &subList{gen: gen}
	for _, sub := range *s.subs.Load() {
		if MatchPoint(sub.pattern, point) {
			sl.subs = append(sl.subs, sub)
		}
	}
	return sl
}

// Subscribe returns a subscription to the samples of the points matching
// pattern (see MatchPoint), delivered on a channel of the given capacity
// (minimum 1). Close the subscription when done.
func (s *Snapshot) Subscribe(pattern string, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	sub := &Subscription{pattern: pattern, ch: make(chan Sample, buffer), owner: s}
	s.mu.Lock()
	old := *s.subs.Load()
	n := append(append([]*Subscription(nil), old...), sub)
	s.subs.Store(&n)
	s.gen.Add(1)
	s.mu.Unlock()
	return sub
}

// Subscription delivers samples of matching points. Its channel is closed
// by Close.
type Subscription struct {
	pattern string
	owner   *Snapshot
	mu      sync.Mutex
	closed  bool
	ch      chan Sample
	dropped atomic.Uint64
}

// C returns the channel samples are delivered on.
func (sub *Subscription) C() <-chan Sample { return sub.ch }

// Dropped returns how many samples were dropped because the channel was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Pattern returns the pattern the subscription was made with.
func (sub *Subscription) Pattern() string { return sub.pattern }

func (sub *Subscription) deliver(smp Sample) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return
	}
	for {
		select {
		case sub.ch <- smp:
			return
		default:
		}
		// Full: drop the oldest undelivered sample to make room for the newest.
		select {
		case <-sub.ch:
			sub.dropped.Add(1)
		default:
		}
	}
}

// Close stops delivery and closes the channel. It is safe to call more than once.
func (sub *Subscription) Close() {
	s := sub.owner
	s.mu.Lock()
	old := *s.subs.Load()
	n := make([]*Subscription, 0, len(old))
	for _, x := range old {
		if x != sub {
			n = append(n, x)
		}
	}
	s.subs.Store(&n)
	s.gen.Add(1)
	s.mu.Unlock()
	sub.mu.Lock()
	if !sub.closed {
		sub.closed = true
		close(sub.ch)
	}
	sub.mu.Unlock()
}

// MatchPoint reports whether point matches pattern. The empty pattern and
// "*" match every point. A pattern with glob characters (* ? [) is matched
// with path.Match semantics, where '*' also crosses dots ("pcs*.power"
// matches "pcs1.power"); "**" is the same as "*". A pattern ending in '.'
// is a prefix ("pcs1." matches every point of pcs1). Anything else must
// equal the point.
func MatchPoint(pattern, point string) bool {
	switch {
	case pattern == "" || pattern == "*" || pattern == "**":
		return true
	case strings.HasSuffix(pattern, "."):
		return strings.HasPrefix(point, pattern)
	case !strings.ContainsAny(pattern, "*?["):
		return pattern == point
	}
	// Points have no '/', so path.Match's '*' already crosses dots.
	pattern = strings.ReplaceAll(pattern, "**", "*")
	ok, err := path.Match(pattern, point)
	return err == nil && ok
}

// ValidPattern reports whether pattern is a well-formed point pattern.
func ValidPattern(pattern string) bool {
	_, err := path.Match(strings.ReplaceAll(pattern, "**", "*"), "")
	return err == nil
}
