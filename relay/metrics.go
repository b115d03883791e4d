package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics exports the pipeline's counters. Counters and gauges are read
// from Stats at scrape time, so they equal what Stats reports.
type metrics struct {
	p       *Pipeline
	reg     prometheus.Registerer
	latency prometheus.Histogram

	buffered, bufferedBytes, pending, sent, accepted, filtered, retries, dropped, breaker, connected *prometheus.Desc
}

func newMetrics(p *Pipeline, reg prometheus.Registerer) (*metrics, error) {
	cl := prometheus.Labels{"relay": p.cfg.name}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ems_relay_"+name, help, labels, cl)
	}
	m := &metrics{
		p:   p,
		reg: reg,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "ems_relay_send_duration_seconds",
			Help:        "Time of one adapter Send of a batch.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		buffered:      d("buffered_messages", "Messages in the relay buffer."),
		bufferedBytes: d("buffered_bytes", "Bytes in the relay buffer."),
		pending:       d("pending_messages", "Messages of the batch being sent or retried."),
		sent:          d("sent_messages_total", "Messages the adapter accepted."),
		accepted:      d("accepted_messages_total", "Messages formatted by Send."),
		filtered:      d("filtered_total", "Samples and events left out by the filters."),
		retries:       d("retries_total", "Failed batch attempts that were retried."),
		dropped:       d("dropped_messages_total", "Messages dropped, by reason.", "reason"),
		breaker:       d("breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open."),
		connected:     d("connected", "1 when the adapter is connected."),
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	if err := reg.Register(m.latency); err != nil {
		reg.Unregister(m)
		return nil, err
	}
	return m, nil
}

func (m *metrics) unregister() {
	m.reg.Unregister(m)
	m.reg.Unregister(m.latency)
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.buffered, m.bufferedBytes, m.pending, m.sent, m.accepted, m.filtered, m.retries, m.dropped, m.breaker, m.connected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.p.Stats()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	c := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	g(m.buffered, float64(s.Buffered))
	g(m.bufferedBytes, float64(s.BufferedBytes))
	g(m.pending, float64(s.Pending))
	c(m.sent, s.Sent)
	c(m.accepted, s.Accepted)
	c(m.filtered, s.Filtered)
	c(m.retries, s.Retries)
	c(m.dropped, s.Dropped.Overflow, "overflow")
	c(m.dropped, s.Dropped.Oversize, "oversize")
	c(m.dropped, s.Dropped.Format, "format")
	c(m.dropped, s.Dropped.Rejected, "rejected")
	c(m.dropped, s.Dropped.Canceled, "canceled")
	c(m.dropped, s.Dropped.Closed, "closed")
	var st float64
	switch m.p.breaker.State() {
	case gobreaker.StateHalfOpen:
		st = 1
	case gobreaker.StateOpen:
		st = 2
	}
	g(m.breaker, st)
	var conn float64
	if s.Connected {
		conn = 1
	}
	g(m.connected, conn)
}
