package modbus

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collector's Prometheus series; a nil *metrics records
// nothing.
type metrics struct {
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	latency   prometheus.Histogram
	points    prometheus.Counter
	reconnect prometheus.Counter
	linkUp    prometheus.Gauge
	skipped   prometheus.Counter
	dropped   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, channel string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	cl := prometheus.Labels{"channel": channel}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ems_modbus_requests_total", Help: "Modbus requests sent, by unit and function code.", ConstLabels: cl,
		}, []string{"unit", "function"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ems_modbus_errors_total", Help: "Failed Modbus requests by type (exception, timeout, link, transport, protocol, malformed) and exception code.", ConstLabels: cl,
		}, []string{"type", "code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ems_modbus_request_duration_seconds", Help: "Modbus request latency.", ConstLabels: cl,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		points: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ems_modbus_points_total", Help: "Point values decoded with good quality (rate() gives points/s).", ConstLabels: cl,
		}),
		reconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ems_modbus_reconnects_total", Help: "Times the link came back after being down.", ConstLabels: cl,
		}),
		linkUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ems_modbus_link_up", Help: "1 while the link answers, 0 while it is in reconnect backoff.", ConstLabels: cl,
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ems_modbus_skipped_ticks_total", Help: "Poll ticks skipped because a cycle ran past them.", ConstLabels: cl,
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ems_modbus_publish_errors_total", Help: "Batches the sink refused.", ConstLabels: cl,
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.latency, m.points, m.reconnect, m.linkUp, m.skipped, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) request(unit, fc uint8, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(int(unit)), strconv.Itoa(int(fc))).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *metrics) fail(class errClass, code uint8) {
	if m == nil {
		return
	}
	t := "transport"
	switch class {
	case classException:
		t = "exception"
	case classTimeout:
		t = "timeout"
	case classLink:
		t = "link"
	case classProtocol:
		t = "protocol"
	}
	c := ""
	if code != 0 {
		c = strconv.Itoa(int(code))
	}
	m.errors.WithLabelValues(t, c).Inc()
}

func (m *metrics) malformed() {
	if m != nil {
		m.errors.WithLabelValues("malformed", "").Inc()
	}
}

func (m *metrics) good(n int) {
	if m != nil {
		m.points.Add(float64(n))
	}
}

func (m *metrics) up(up bool, reconnected bool) {
	if m == nil {
		return
	}
	if up {
		m.linkUp.Set(1)
	} else {
		m.linkUp.Set(0)
	}
	if reconnected {
		m.reconnect.Inc()
	}
}

func (m *metrics) skip(n uint64) {
	if m != nil && n > 0 {
		m.skipped.Add(float64(n))
	}
}

func (m *metrics) publishFailed() {
	if m != nil {
		m.dropped.Inc()
	}
}
