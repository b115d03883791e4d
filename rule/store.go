package rule

import (
	"math"
	"time"
)

// store holds the latest value of every point a rule reads, indexed by slot, and the
// history window aggregates need. It is owned by the goroutine that calls Process
// and Tick; DryRun builds a private one.
type store struct {
	now   time.Time
	slots map[string]int32
	val   []float64  // NaN when the point has no usable value; read by evaluation
	meta  []slotMeta // the rest, one cache line per sample
	hist  []*series
}

// slotMeta is the state of a point besides its value.
type slotMeta struct {
	prev    float64
	changed int64 // unix ns of the last change, 0 for never
	updated int64 // unix ns of the last sample
	hasPrev bool
	valid   bool
}

func (s *store) valid(slot int32) bool { return s.meta[slot].valid }

func (s *store) updatedAt(slot int32) time.Time { return time.Unix(0, s.meta[slot].updated) }

type series struct {
	span  time.Duration
	count int
	t     []time.Time
	v     []float64
}

func newStore() *store {
	return &store{}
}

// fit grows the slot arrays to n slots and applies the history retention of the set.
func (s *store) fit(set *ruleSet) {
	s.slots = set.slots.index
	n := len(set.slots.ids)
	for len(s.val) < n {
		s.val = append(s.val, math.NaN())
		s.meta = append(s.meta, slotMeta{})
		s.hist = append(s.hist, nil)
	}
	for i := range s.hist {
		w, ok := set.retention[int32(i)]
		switch {
		case !ok:
			s.hist[i] = nil
		case s.hist[i] == nil:
			s.hist[i] = &series{span: w.span, count: w.count}
		default:
			s.hist[i].span, s.hist[i].count = w.span, w.count
		}
	}
}

// set records a sample of slot at time t. A bad sample invalidates the value:
// rules that read it are not evaluated until a usable sample arrives.
func (s *store) set(slot int32, v float64, bad bool, t time.Time) {
	m := &s.meta[slot]
	if bad || math.IsNaN(v) {
		m.valid = false
		s.val[slot] = math.NaN()
		return
	}
	ns := t.UnixNano()
	m.updated = ns
	if m.valid && s.val[slot] == v {
		s.record(slot, v, t)
		return
	}
	if m.valid {
		m.prev, m.hasPrev = s.val[slot], true
	}
	s.val[slot] = v
	m.valid = true
	m.changed = ns
	s.record(slot, v, t)
}

func (s *store) record(slot int32, v float64, t time.Time) {
	h := s.hist[slot]
	if h == nil {
		return
	}
	h.t = append(h.t, t)
	h.v = append(h.v, v)
	drop := 0
	if h.count > 0 && len(h.v) > h.count {
		drop = len(h.v) - h.count
	}
	if h.span > 0 {
		for drop < len(h.t) && t.Sub(h.t[drop]) > h.span {
			drop++
		}
	}
	if drop > 0 {
		n := copy(h.t, h.t[drop:])
		copy(h.v, h.v[drop:])
		h.t, h.v = h.t[:n], h.v[:n]
	}
}

// aggregate computes agg over the samples of slot in (from, to] (or [from, to) when
// halfOpen), or over the last n samples when n > 0.
func (s *store) aggregate(slot int32, agg string, from, to time.Time, n int, halfOpen bool) float64 {
	h := s.hist[slot]
	if h == nil {
		return emptyAgg(agg)
	}
	var sum, mn, mx float64
	cnt := 0
	mn, mx = math.Inf(1), math.Inf(-1)
	start := 0
	if n > 0 && len(h.v) > n {
		start = len(h.v) - n
	}
	for i := start; i < len(h.v); i++ {
		if n == 0 {
			t := h.t[i]
			if halfOpen {
				if t.Before(from) || !t.Before(to) {
					continue
				}
			} else if !t.After(from) || t.After(to) {
				continue
			}
		}
		v := h.v[i]
		sum += v
		cnt++
		mn = math.Min(mn, v)
		mx = math.Max(mx, v)
	}
	switch agg {
	case "sum":
		return sum
	case "count":
		return float64(cnt)
	}
	if cnt == 0 {
		return math.NaN()
	}
	switch agg {
	case "avg":
		return sum / float64(cnt)
	case "min":
		return mn
	}
	return mx
}

// ready reports whether every slot has a usable value.
func (s *store) ready(slots []int32) bool {
	for _, sl := range slots {
		if !s.meta[sl].valid {
			return false
		}
	}
	return true
}
