package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the gateway; a nil *metrics records nothing.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	limited     prometheus.Counter
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	breaker     *prometheus.GaugeVec
	panics      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .05, .25, 1, 5},
		}, []string{"route"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "rate_limited_total",
			Help: "Requests rejected with 429 by the per-client rate limiter.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "cache_hits_total",
			Help: "GET responses served from the response cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "cache_misses_total",
			Help: "GET responses not found in the response cache.",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "breaker_state",
			Help: "Circuit breaker state per backend instance: 0 closed, 1 half-open, 2 open.",
		}, []string{"backend", "instance"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ems", Subsystem: "gateway", Name: "panics_total",
			Help: "Handler panics recovered into a 500 response.",
		}),
	}
	return m, nil
}

// register registers every collector on reg, or none: New calls it last,
// so a gateway that fails validation leaves the registry untouched.
func (m *metrics) register(reg prometheus.Registerer) error {
	if m == nil {
		return nil
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.limited, m.cacheHits, m.cacheMisses, m.breaker, m.panics}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) cacheHit() {
	if m != nil {
		m.cacheHits.Inc()
	}
}

func (m *metrics) cacheMiss() {
	if m != nil {
		m.cacheMisses.Inc()
	}
}

func (m *metrics) rateLimited() {
	if m != nil {
		m.limited.Inc()
	}
}

func (m *metrics) panicked() {
	if m != nil {
		m.panics.Inc()
	}
}

func (m *metrics) breakerVec() *prometheus.GaugeVec {
	if m == nil {
		return nil
	}
	return m.breaker
}
