package ems

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	samplesIn       prometheus.Counter
	collectorErrors *prometheus.CounterVec
	componentErrors *prometheus.CounterVec
	commands        *prometheus.CounterVec
}

// queueCollector exports the data-path counters at scrape time, so the hot
// path pays nothing for them.
type queueCollector struct {
	e                                  *EMS
	processed, dropped, depth, lag, ev *prometheus.Desc
	droppedEv                          *prometheus.Desc
	subDropped                         *prometheus.Desc
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.processed
	ch <- q.dropped
	ch <- q.depth
	ch <- q.lag
	ch <- q.ev
	ch <- q.droppedEv
	ch <- q.subDropped
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(q.subDropped, prometheus.CounterValue, float64(q.e.events.dropped.Load()))
	for _, st := range q.e.pipe.Stats() {
		ch <- prometheus.MustNewConstMetric(q.processed, prometheus.CounterValue, float64(st.Processed), st.Name)
		ch <- prometheus.MustNewConstMetric(q.ev, prometheus.CounterValue, float64(st.ProcessedEvents), st.Name)
		ch <- prometheus.MustNewConstMetric(q.dropped, prometheus.CounterValue, float64(st.Dropped), st.Name)
		ch <- prometheus.MustNewConstMetric(q.droppedEv, prometheus.CounterValue, float64(st.DroppedEvents), st.Name)
		ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(st.Depth), st.Name)
		ch <- prometheus.MustNewConstMetric(q.lag, prometheus.GaugeValue, st.Lag.Seconds(), st.Name)
	}
}

func newMetrics(reg prometheus.Registerer, e *EMS) (*metrics, error) {
	m := &metrics{
		samplesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_samples_in_total", Help: "Samples published by collectors into the data path."}),
		collectorErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ems_collector_errors_total",
			Help: "Times a collector's Run failed and was restarted."}, []string{"collector"}),
		componentErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ems_component_errors_total",
			Help: "Errors returned by data-path consumers (alarm, rule, history, relays)."}, []string{"component"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ems_commands_total",
			Help: "Commands by result (executed, failed)."}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	l := []string{"consumer"}
	qc := &queueCollector{e: e,
		processed:  prometheus.NewDesc("ems_consumer_processed_samples_total", "Samples handled by a data-path consumer.", l, nil),
		ev:         prometheus.NewDesc("ems_consumer_processed_events_total", "Events handled by a data-path consumer.", l, nil),
		dropped:    prometheus.NewDesc("ems_consumer_dropped_samples_total", "Samples dropped because a consumer's queue was full or closed.", l, nil),
		droppedEv:  prometheus.NewDesc("ems_consumer_dropped_events_total", "Events dropped because a consumer's queue was full or closed.", l, nil),
		depth:      prometheus.NewDesc("ems_consumer_queue_depth", "Batches waiting in a consumer's queue.", l, nil),
		lag:        prometheus.NewDesc("ems_consumer_lag_seconds", "Age of the last batch a consumer handled, when it handled it.", l, nil),
		subDropped: prometheus.NewDesc("ems_event_subscriber_dropped_total", "Events dropped because an event subscriber did not keep up.", nil, nil),
	}
	for _, c := range []prometheus.Collector{m.samplesIn, m.collectorErrors, m.componentErrors, m.commands, qc} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
