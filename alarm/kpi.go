package alarm

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kpiState counts annunciations per minute for the last ten minutes.
type kpiState struct {
	minute     [10]int64 // minute number of the bucket
	count      [10]int
	total      int64
	byPrio     map[string]int
	chatter    int
	acks       int
	suppressed int
}

func (k *kpiState) init() { k.byPrio = map[string]int{} }

func (k *kpiState) annunciation(now int64, p Priority) {
	m := now / int64(time.Minute)
	i := m % 10
	if k.minute[i] != m {
		k.minute[i], k.count[i] = m, 0
	}
	k.count[i]++
	k.total++
	k.byPrio[p.Severity().String()]++
}

func (k *kpiState) last10(now int64) int {
	m := now / int64(time.Minute)
	n := 0
	for i := range k.minute {
		if m-k.minute[i] < 10 && k.minute[i] <= m {
			n += k.count[i]
		}
	}
	return n
}

// AlarmCount is one row of the most-frequent list.
type AlarmCount struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

// KPIs are the ISA-18.2 performance indicators of the engine.
type KPIs struct {
	// AnnunciationsLast10Min counts annunciations in the last ten minutes
	// (target: about 1).
	AnnunciationsLast10Min int `json:"annunciations_last_10min"`
	// AveragePer10Min is the average since the engine started.
	AveragePer10Min float64 `json:"average_per_10min"`
	// Annunciations is the total since start.
	Annunciations int64 `json:"annunciations"`
	// FloodPercent is the share of time spent in flood since start.
	FloodPercent float64 `json:"flood_percent"`
	// InFlood reports whether a flood is going on.
	InFlood bool `json:"in_flood"`
	Floods  int  `json:"floods"`
	// TopFrequent lists the ten most frequently annunciated alarms.
	TopFrequent []AlarmCount `json:"top_frequent"`
	// Chattering counts chatter detections since start; ChatteringNow the
	// alarms shelved for chatter now.
	Chattering    int `json:"chattering"`
	ChatteringNow int `json:"chattering_now"`
	// StaleAlarms counts alarms active for longer than the stale age (24 h).
	StaleAlarms int `json:"stale_alarms"`
	// Active counts alarms in the operator's list, Shelved, Suppressed and
	// OutOfService the hidden ones.
	Active       int `json:"active"`
	Unacked      int `json:"unacked"`
	Shelved      int `json:"shelved"`
	Suppressed   int `json:"suppressed"`
	OutOfService int `json:"out_of_service"`
	// PriorityDistribution counts annunciations by severity name.
	PriorityDistribution map[string]int `json:"priority_distribution"`
	// ActiveByPriority counts the alarms in the list by severity name.
	ActiveByPriority map[string]int `json:"active_by_priority"`
	// SuppressedAnnunciations counts activations that were not annunciated
	// (shelved, suppressed, out of service, dependency, suppressor, flood).
	SuppressedAnnunciations int `json:"suppressed_annunciations"`
}

// KPIs computes the indicators now.
func (e *Engine) KPIs() KPIs {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.kpis(time.Now().UnixNano())
}

func (e *Engine) kpis(now int64) KPIs {
	t := e.t
	k := KPIs{
		AnnunciationsLast10Min: e.kpi.last10(now), Annunciations: e.kpi.total,
		InFlood: e.flood.active, Floods: e.flood.floods, Chattering: e.kpi.chatter,
		PriorityDistribution: map[string]int{}, ActiveByPriority: map[string]int{},
		SuppressedAnnunciations: e.kpi.suppressed,
	}
	up := now - e.start.UnixNano()
	if up > 0 {
		k.AveragePer10Min = float64(e.kpi.total) / (float64(up) / float64(10*time.Minute))
		fl := e.flood.total
		if e.flood.active {
			fl += now - e.flood.since
		}
		k.FloodPercent = 100 * float64(fl) / float64(up)
	}
	for s, n := range e.kpi.byPrio {
		k.PriorityDistribution[s] = n
	}
	var top []AlarmCount
	for i := range t.conds {
		c := &t.conds[i]
		if c.life.Count > 0 {
			top = append(top, AlarmCount{c.id, c.life.Count})
		}
	}
	slices.SortFunc(top, func(a, b AlarmCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(top) > 10 {
		top = top[:10]
	}
	k.TopFrequent = top
	for _, ci := range e.live {
		l := &t.conds[ci].life
		switch {
		case l.OOS:
			k.OutOfService++
		case l.Shelved != ShelveNone:
			k.Shelved++
			if l.Shelved == ShelveChatter {
				k.ChatteringNow++
			}
		case l.Design:
			k.Suppressed++
		case l.State != StateNormal:
			k.Active++
			k.ActiveByPriority[l.Priority.Severity().String()]++
			if l.State == StateUnacked {
				k.Unacked++
			}
			if l.Active && l.RaisedAt > 0 && now-l.RaisedAt >= int64(e.cfg.staleAge) {
				k.StaleAlarms++
			}
		}
	}
	return k
}

type metrics struct {
	samples     prometheus.Counter
	transitions prometheus.Counter
	events      *prometheus.CounterVec
	suppressed  *prometheus.CounterVec
	chatter     prometheus.Counter
}

func newMetrics(e *Engine, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		samples:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ems", Subsystem: "alarm", Name: "samples_total", Help: "Samples evaluated by the alarm engine."}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ems", Subsystem: "alarm", Name: "transitions_total", Help: "Alarm condition changes detected."}),
		events:      prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ems", Subsystem: "alarm", Name: "events_total", Help: "Alarm events emitted, by kind."}, []string{"kind"}),
		suppressed:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ems", Subsystem: "alarm", Name: "suppressed_total", Help: "Alarm activations not annunciated, by reason."}, []string{"reason"}),
		chatter:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ems", Subsystem: "alarm", Name: "chattering_total", Help: "Chatter detections (each auto-shelves an alarm)."}),
	}
	gauge := func(name, help string, f func(k KPIs) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ems", Subsystem: "alarm", Name: name, Help: help}, func() float64 {
			return f(e.KPIs())
		})
	}
	cs := []prometheus.Collector{m.samples, m.transitions, m.events, m.suppressed, m.chatter,
		gauge("annunciations_10min", "Annunciations in the last 10 minutes.", func(k KPIs) float64 { return float64(k.AnnunciationsLast10Min) }),
		gauge("flood_time_percent", "Percent of time in flood since start.", func(k KPIs) float64 { return k.FloodPercent }),
		gauge("active", "Alarms in the operator's list.", func(k KPIs) float64 { return float64(k.Active) }),
		gauge("unacked", "Unacknowledged alarms.", func(k KPIs) float64 { return float64(k.Unacked) }),
		gauge("shelved", "Shelved alarms.", func(k KPIs) float64 { return float64(k.Shelved) }),
		gauge("stale_alarms", "Alarms active for longer than the stale age.", func(k KPIs) float64 { return float64(k.StaleAlarms) }),
		gauge("in_flood", "1 while an alarm flood goes on.", func(k KPIs) float64 {
			if k.InFlood {
				return 1
			}
			return 0
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
