package history

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg        prometheus.Registerer
	cs         []prometheus.Collector
	written    prometheus.Counter
	rejected   prometheus.Counter
	blocks     *prometheus.CounterVec
	cacheHits  prometheus.Counter
	cacheMiss  prometheus.Counter
	compaction prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, db *DB) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		reg:        reg,
		written:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_history_samples_written_total", Help: "Samples stored."}),
		rejected:   prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_history_samples_rejected_total", Help: "Samples rejected as out of order."}),
		blocks:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ems_history_blocks_written_total", Help: "Raw blocks written, by codec."}, []string{"codec"}),
		cacheHits:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_history_query_cache_hits_total", Help: "Queries answered from the cache."}),
		cacheMiss:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_history_query_cache_misses_total", Help: "Queries computed."}),
		compaction: prometheus.NewCounter(prometheus.CounterOpts{Name: "ems_history_compactions_total", Help: "Compactions done."}),
	}
	m.cs = []prometheus.Collector{m.written, m.rejected, m.blocks, m.cacheHits, m.cacheMiss, m.compaction,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ems_history_head_samples", Help: "Samples in the in-memory head."}, func() float64 { return float64(db.headSamples.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ems_history_corrupt_total", Help: "Corrupt WAL records, block files and chunks found."}, func() float64 { return float64(db.corrupt.Load()) }),
	}
	for i, c := range m.cs {
		if err := reg.Register(c); err != nil {
			for _, d := range m.cs[:i] {
				reg.Unregister(d)
			}
			return nil, errors.Join(ErrInvalidOption, err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
