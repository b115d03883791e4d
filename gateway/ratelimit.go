package gateway

import (
	"math"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// limiters holds one token bucket per client, bounded by an LRU: a client
// evicted by a flood of others starts again with a full bucket, which errs
// on the side of letting well-behaved clients through.
type limiters struct {
	every rate.Limit
	burst int
	cache *lru.Cache[string, *rate.Limiter]
}

func newLimiters(rl RateLimit) (*limiters, error) {
	if rl.PerSecond == 0 {
		return nil, nil
	}
	if rl.Burst == 0 {
		rl.Burst = max(1, int(math.Ceil(rl.PerSecond)))
	}
	if rl.MaxClients == 0 {
		rl.MaxClients = 10000
	}
	c, err := lru.New[string, *rate.Limiter](rl.MaxClients)
	if err != nil {
		return nil, err
	}
	return &limiters{every: rate.Limit(rl.PerSecond), burst: rl.Burst, cache: c}, nil
}

// allow takes a token for client; when none is available it returns false
// and how long until one will be.
func (l *limiters) allow(client string, now time.Time) (bool, time.Duration) {
	lim, ok := l.cache.Get(client)
	if !ok {
		nl := rate.NewLimiter(l.every, l.burst)
		if prev, found, _ := l.cache.PeekOrAdd(client, nl); found {
			lim = prev
		} else {
			lim = nl
		}
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// retryAfter formats a delay as whole seconds, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
