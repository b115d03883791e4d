package alarm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voltage-ems/ems/model"
)

func count(evs []model.Event, k model.EventKind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func TestChatterAutoShelves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := mustNew(t, WithDefinitions(highDef(false)), WithFlood(0, 0, 0), WithCorrelation(0),
			WithChatter(3, time.Minute, 10*time.Minute))
		var evs []model.Event
		for i := 0; i < 3; i++ {
			evs = append(evs, send(t, e, "p", 20)...)
			time.Sleep(10 * time.Second)
			evs = append(evs, send(t, e, "p", 0)...)
			time.Sleep(10 * time.Second)
		}
		if n := count(evs, EventAlarmChatter); n != 1 {
			t.Fatalf("%d chatter events in %v", n, kinds(evs))
		}
		a, _ := e.Get("t.h")
		if a.Shelved != ShelveChatter || a.ShelvedBy != "system" {
			t.Fatalf("not auto-shelved: %+v", a)
		}
		// shelved: further cycles are not annunciated
		evs = append(send(t, e, "p", 20), send(t, e, "p", 0)...)
		if len(evs) != 0 {
			t.Fatalf("shelved chattering alarm annunciated: %v", kinds(evs))
		}
		if k := e.KPIs(); k.Chattering != 1 || k.ChatteringNow != 1 {
			t.Errorf("KPIs: %+v", k)
		}
		send(t, e, "p", 20)
		time.Sleep(10 * time.Minute)
		evs = tick(t, e)
		if !slices.Equal(kinds(evs), []string{"alarm.unshelved", "alarm.raised"}) {
			t.Fatalf("after the chatter shelve: %v", kinds(evs))
		}
	})
}

func TestChatterSlowCyclesDoNotCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := mustNew(t, WithDefinitions(highDef(false)), WithFlood(0, 0, 0), WithCorrelation(0))
		for i := 0; i < 5; i++ {
			send(t, e, "p", 20)
			time.Sleep(15 * time.Second)
			send(t, e, "p", 0)
			time.Sleep(15 * time.Second) // 3 cycles take 90 s > 60 s
		}
		if a, _ := e.Get("t.h"); a.Shelved != ShelveNone {
			t.Fatalf("slow cycles taken for chatter: %+v", a)
		}
	})
}

func TestFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var defs []Definition
		for i := 0; i < 20; i++ {
			p := PriorityMedium
			if i%5 == 0 {
				p = PriorityCritical
			}
			defs = append(defs, Definition{ID: fmt.Sprintf("a%d", i), Point: fmt.Sprintf("p%d", i), Priority: p,
				Limits: &Limits{H: &Limit{Value: 10}}})
		}
		e := mustNew(t, WithDefinitions(defs...), WithChatter(0, 0, 0), WithCorrelation(0),
			WithFlood(10, 10*time.Minute, PriorityCritical))
		var evs []model.Event
		for i := 0; i < 20; i++ {
			evs = append(evs, send(t, e, fmt.Sprintf("p%d", i), 20)...)
			time.Sleep(time.Second)
		}
		// 11th annunciation starts the flood; of a11..a19 only a15 (critical) is annunciated
		if n := count(evs, model.EventAlarmFlood); n != 1 {
			t.Fatalf("%d flood events", n)
		}
		var raised []string
		for _, ev := range evs {
			if ev.Kind == model.EventAlarmRaised {
				raised = append(raised, ev.Attrs["alarm_id"])
			}
		}
		want := []string{"a0.h", "a1.h", "a2.h", "a3.h", "a4.h", "a5.h", "a6.h", "a7.h", "a8.h", "a9.h", "a10.h", "a15.h"}
		if !slices.Equal(raised, want) {
			t.Fatalf("raised during flood: %v", raised)
		}
		// hidden alarms are still in the list (only annunciation stops)
		if n := len(e.Active(Filter{})); n != 20 {
			t.Fatalf("%d alarms in the list, want 20", n)
		}
		k := e.KPIs()
		if !k.InFlood || k.AnnunciationsLast10Min != 20 {
			t.Fatalf("KPIs during flood: %+v", k)
		}
		// the flood began at 10 s; while alarms keep coming (two a minute
		// here), a summary follows every window
		for i := 0; i < 10; i++ {
			time.Sleep(time.Minute)
			for _, p := range []int{i, i + 10} {
				send(t, e, fmt.Sprintf("p%d", p), 0)
				send(t, e, fmt.Sprintf("p%d", p), 20)
			}
			evs = tick(t, e)
			if i < 9 && len(evs) != 0 {
				t.Fatalf("minute %d: %v", i, evs)
			}
		}
		// 8 hidden before + 20 re-raised of which 4 critical
		if len(evs) != 1 || evs[0].Kind != model.EventAlarmFlood || evs[0].Attrs["phase"] != "summary" || evs[0].Attrs["hidden"] != "24" {
			t.Fatalf("flood summary: %v", evs)
		}
		time.Sleep(10 * time.Minute)
		evs = tick(t, e)
		if len(evs) != 1 || evs[0].Kind != model.EventAlarmFlood || evs[0].Attrs["phase"] != "end" || evs[0].Attrs["hidden"] != "24" {
			t.Fatalf("flood end: %v", evs)
		}
		if k := e.KPIs(); k.InFlood || k.FloodPercent <= 0 || k.FloodPercent >= 100 {
			t.Fatalf("KPIs after flood: %+v", k)
		}
	})
}

func TestSuppressorWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := mustNew(t, WithDefinitions(highDef(false)), WithChatter(0, 0, 0), WithFlood(0, 0, 0), WithCorrelation(0),
			WithSuppressor(time.Minute, 2, 100))
		var evs []model.Event
		for i := 0; i < 4; i++ {
			evs = append(evs, send(t, e, "p", 20)...)
			evs = append(evs, send(t, e, "p", 0)...)
			time.Sleep(5 * time.Second)
		}
		if n := count(evs, model.EventAlarmRaised); n != 2 {
			t.Fatalf("%d raised within the window, want 2: %v", n, kinds(evs))
		}
		if n := count(evs, model.EventAlarmSuppressed); n != 1 {
			t.Fatalf("%d suppressed notices, want 1", n)
		}
		time.Sleep(time.Minute)
		if evs := send(t, e, "p", 20); count(evs, model.EventAlarmRaised) != 1 {
			t.Fatalf("new window: %v", kinds(evs))
		}
	})
}

func TestEscalationAndRealarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := highDef(false)
		d.Priority = PriorityMedium
		d.Escalation = []EscalationStep{{After: Duration(5 * time.Minute), Priority: PriorityHigh}, {After: Duration(15 * time.Minute), Priority: PriorityCritical}}
		d.Realarm = Duration(30 * time.Minute)
		e := mustNew(t, append(quiet(), WithDefinitions(d))...)
		send(t, e, "p", 20)
		time.Sleep(5*time.Minute - time.Second)
		if evs := tick(t, e); len(evs) != 0 {
			t.Fatalf("early escalation: %v", kinds(evs))
		}
		time.Sleep(time.Second)
		evs := tick(t, e)
		if len(evs) != 1 || evs[0].Kind != model.EventAlarmEscalated || evs[0].Attrs["priority"] != "high" || evs[0].Severity != model.SeverityHigh {
			t.Fatalf("first escalation: %v", evs)
		}
		time.Sleep(10 * time.Minute)
		evs = tick(t, e)
		if len(evs) != 1 || evs[0].Attrs["priority"] != "critical" {
			t.Fatalf("second escalation: %v", evs)
		}
		must(t, e.Ack("t.h", "op", ""))
		tick(t, e)
		time.Sleep(30 * time.Minute)
		evs = tick(t, e)
		if len(evs) != 1 || evs[0].Kind != model.EventAlarmRaised || evs[0].Attrs["reason"] != "realarm" {
			t.Fatalf("re-alarm: %v", evs)
		}
		if a, _ := e.Get("t.h"); a.State != StateUnacked || a.Priority != PriorityMedium {
			t.Fatalf("after re-alarm: %+v", a)
		}
	})
}

func TestCorrelationFirstOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func(id, dev string) Definition {
			return Definition{ID: id, Point: id, Tags: map[string]string{"site": "s1", "device": dev}, Limits: &Limits{H: &Limit{Value: 10}}}
		}
		e := mustNew(t, WithDefinitions(mk("trip", "pcs1"), mk("volt", "pcs1"), mk("temp", "pcs1"), mk("other", "pcs2")),
			WithChatter(0, 0, 0), WithFlood(0, 0, 0), WithCorrelation(30*time.Second, "site", "device"))
		send(t, e, "trip", 20)
		time.Sleep(5 * time.Second)
		send(t, e, "volt", 20, "other", 20)
		time.Sleep(20 * time.Second)
		evs := send(t, e, "temp", 20)
		if evs[0].Attrs["first_out"] != "trip.h" {
			t.Fatalf("first_out of temp: %v", evs[0].Attrs)
		}
		a, _ := e.Get("trip.h")
		b, _ := e.Get("temp.h")
		o, _ := e.Get("other.h")
		if !a.FirstOut || b.FirstOut || a.Group == "" || a.Group != b.Group || o.Group == a.Group || !o.FirstOut {
			t.Fatalf("groups: %+v %+v %+v", a, b, o)
		}
		time.Sleep(31 * time.Second)
		send(t, e, "volt", 0)
		send(t, e, "volt", 20)
		v, _ := e.Get("volt.h")
		if v.Group == a.Group || !v.FirstOut {
			t.Fatalf("after the window a new group starts: %+v", v)
		}
		gs := e.Groups()
		if len(gs) < 3 || !strings.HasPrefix(gs[len(gs)-1].ID, "s1/pcs1#") || !slices.Equal(gs[len(gs)-1].Members, []string{"trip.h", "volt.h", "temp.h"}) {
			t.Fatalf("groups: %+v", gs)
		}
	})
}

func TestMetricsAndKPIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		e := mustNew(t, append(quiet(), WithDefinitions(highDef(false)), WithMetrics(reg), WithStaleAlarmAge(time.Hour))...)
		send(t, e, "p", 20)
		must(t, e.Ack("t.h", "op", ""))
		send(t, e, "p", 21)
		time.Sleep(2 * time.Hour)
		k := e.KPIs()
		if k.Active != 1 || k.StaleAlarms != 1 || k.Annunciations != 1 || k.PriorityDistribution["high"] != 1 ||
			len(k.TopFrequent) != 1 || k.TopFrequent[0] != (AlarmCount{"t.h", 1}) {
			t.Fatalf("KPIs: %+v", k)
		}
		mfs, err := reg.Gather()
		must(t, err)
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "{" + l.GetValue() + "}"
				}
				switch {
				case m.Counter != nil:
					got[name] = m.Counter.GetValue()
				case m.Gauge != nil:
					got[name] = m.Gauge.GetValue()
				}
			}
		}
		for name, want := range map[string]float64{
			"ems_alarm_samples_total": 2, "ems_alarm_stale_alarms": 1, "ems_alarm_active": 1,
			"ems_alarm_events_total{alarm.raised}": 1, "ems_alarm_events_total{alarm.acked}": 1,
		} {
			if got[name] != want {
				t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
			}
		}
	})
}
