package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// BreakerConfig configures the circuit breaker in front of every backend
// instance. The zero value gives the defaults.
type BreakerConfig struct {
	// Failures is the number of consecutive backend failures (errors that
	// map to a 5xx status, and panics) that open the breaker. Default 5.
	Failures uint32
	// Open is how long the breaker stays open before letting probe
	// requests through (half-open). Default 30 s.
	Open time.Duration
	// HalfOpenRequests is how many probes may run while half-open; that
	// many successes close the breaker. Default 1.
	HalfOpenRequests uint32
	// Interval clears the failure counts periodically while closed; 0
	// keeps counting consecutive failures forever.
	Interval time.Duration
	// CallTimeout bounds each call of a context-taking backend (command
	// execution, history queries); a call past it fails with 504 and counts
	// as a failure. 0 means no bound beyond the request's own context.
	CallTimeout time.Duration
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.Open == 0 {
		c.Open = 30 * time.Second
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = 1
	}
	return c
}

func (c BreakerConfig) validate() error {
	if c.Open < 0 || c.Interval < 0 || c.CallTimeout < 0 {
		return fmt.Errorf("%w: breaker durations must not be negative (open %v, interval %v, call timeout %v)", ErrInvalidOption, c.Open, c.Interval, c.CallTimeout)
	}
	return nil
}

// pool is a set of interchangeable instances of one backend, each behind
// its own circuit breaker, used round-robin. Instances whose breaker is open
// are skipped; when every breaker is open the call fails fast with
// ErrUnavailable (503). A failed call is not retried on another instance:
// a command must never be executed twice.
type pool[T any] struct {
	name    string
	members []member[T]
	next    atomic.Uint64
}

type member[T any] struct {
	b  T
	cb *gobreaker.CircuitBreaker[struct{}]
}

func newPool[T any](name string, cfg BreakerConfig, state *prometheus.GaugeVec, backends []T) *pool[T] {
	p := &pool[T]{name: name}
	for i, b := range backends {
		inst := strconv.Itoa(i)
		st := gobreaker.Settings{
			Name:        name + "/" + inst,
			MaxRequests: cfg.HalfOpenRequests,
			Interval:    cfg.Interval,
			Timeout:     cfg.Open,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
			IsSuccessful: func(err error) bool {
				return err == nil || clientError(err)
			},
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		}
		if state != nil {
			g := state.WithLabelValues(name, inst)
			g.Set(0)
			st.OnStateChange = func(_ string, _, to gobreaker.State) { g.Set(float64(to)) }
		}
		p.members = append(p.members, member[T]{b: b, cb: gobreaker.NewCircuitBreaker[struct{}](st)})
	}
	return p
}

// do runs fn on the next available instance.
func (p *pool[T]) do(fn func(T) error) error {
	if p == nil || len(p.members) == 0 {
		return ErrNotConfigured
	}
	n := uint64(len(p.members))
	start := p.next.Add(1) - 1
	var last error
	for i := range n {
		m := &p.members[(start+i)%n]
		if m.cb.State() == gobreaker.StateOpen {
			last = gobreaker.ErrOpenState
			continue
		}
		_, err := m.cb.Execute(func() (struct{}, error) { return struct{}{}, fn(m.b) })
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			last = err
			continue
		}
		return err
	}
	return &Error{Status: 503, Code: "unavailable", Msg: fmt.Sprintf("%s backend unavailable (circuit breaker open)", p.name), Err: errors.Join(ErrUnavailable, last)}
}

// states returns the breaker state of each instance, for /readyz.
func (p *pool[T]) states() []string {
	if p == nil {
		return nil
	}
	out := make([]string, len(p.members))
	for i := range p.members {
		out[i] = p.members[i].cb.State().String()
	}
	return out
}

// callCtx derives the context of one backend call.
func (s *Server) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if d := s.cfg.breaker.CallTimeout; d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}
