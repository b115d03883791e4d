package modbus

import (
	"math/rand/v2"
	"time"
)

// group is a set of requests polled together at one interval.
type group struct {
	interval time.Duration
	next     time.Time
	reqs     []*Request
	skipped  uint64 // missed ticks skipped so far
}

// scheduler decides which groups are due. It holds no goroutine and reads
// no clock: the worker passes now in, so the timing logic is tested with
// plain values (and under testing/synctest with the worker).
type scheduler struct {
	groups []*group
}

// start makes every group due at now.
func (s *scheduler) start(now time.Time) {
	for _, g := range s.groups {
		g.next = now
	}
}

// due returns the groups whose time has come and moves each one's next
// time to its following tick after now: ticks missed because a cycle ran
// long (or the link was down) are skipped, not caught up.
func (s *scheduler) due(now time.Time, dst []*group) []*group {
	dst = dst[:0]
	for _, g := range s.groups {
		if g.next.After(now) {
			continue
		}
		dst = append(dst, g)
		g.next = g.next.Add(g.interval)
		if !g.next.After(now) {
			missed := now.Sub(g.next)/g.interval + 1
			g.skipped += uint64(missed)
			g.next = g.next.Add(missed * g.interval)
		}
	}
	return dst
}

// wake returns the earliest next time of any group (zero when there are
// no groups).
func (s *scheduler) wake() time.Time {
	var t time.Time
	for _, g := range s.groups {
		if t.IsZero() || g.next.Before(t) {
			t = g.next
		}
	}
	return t
}

// backoff is exponential reconnect backoff with ±20% jitter.
type backoff struct {
	min, max time.Duration
	n        int
	rand     func() float64 // [0,1); nil = math/rand/v2
}

// next returns the wait before the next attempt and advances the exponent.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.n++
	r := rand.Float64
	if b.rand != nil {
		r = b.rand
	}
	j := time.Duration(float64(d) * 0.2 * (2*r() - 1))
	d += j
	if d > b.max {
		d = b.max
	}
	if d < 0 {
		d = 0
	}
	return d
}

// reset returns to the minimum after a success.
func (b *backoff) reset() { b.n = 0 }
