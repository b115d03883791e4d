package alarm

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/model"
)

func states(e *Engine, ids ...string) []string {
	var out []string
	for _, id := range ids {
		a, err := e.Get(id)
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, summary(a))
	}
	return out
}

func TestLimitsAndDeadbands(t *testing.T) {
	d := Definition{ID: "x", Point: "p", Range: &Range{Min: 0, Max: 200}, Limits: &Limits{
		HH: &Limit{Value: 90, DeadbandPct: 5}, // clears below 80
		H:  &Limit{Value: 80, Deadband: 2},    // clears below 78
		L:  &Limit{Value: 20, Deadband: 2},    // clears above 22
		LL: &Limit{Value: 10},                 // no deadband
	}}
	e := mustNew(t, append(quiet(), WithDefinitions(d))...)
	ids := []string{"x.hh", "x.h", "x.l", "x.ll"}
	steps := []struct {
		v    float64
		want []string // active flags of hh, h, l, ll
	}{
		{50, []string{"-", "-", "-", "-"}},
		{79.99, []string{"-", "-", "-", "-"}},
		{80, []string{"-", "A", "-", "-"}},   // at the limit: active
		{78.5, []string{"-", "A", "-", "-"}}, // inside the deadband: still active
		{78, []string{"-", "A", "-", "-"}},   // at limit-deadband: still active
		{77.9, []string{"-", "-", "-", "-"}},
		{95, []string{"A", "A", "-", "-"}},
		{80.5, []string{"A", "A", "-", "-"}}, // hh deadband 5% of 200 = 10
		{79.9, []string{"-", "A", "-", "-"}},
		{20, []string{"-", "-", "A", "-"}},
		{21.9, []string{"-", "-", "A", "-"}},
		{10, []string{"-", "-", "A", "A"}},
		{10.01, []string{"-", "-", "A", "-"}},
		{22.1, []string{"-", "-", "-", "-"}},
	}
	for i, s := range steps {
		send(t, e, "p", s.v)
		var got []string
		for _, id := range ids {
			a, _ := e.Get(id)
			if a.Active {
				got = append(got, "A")
			} else {
				got = append(got, "-")
			}
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("step %d value %g: active %v, want %v", i, s.v, got, s.want)
		}
	}
	// bad quality samples do not move limit alarms
	e.Process(context.Background(), []model.Sample{{Point: "p", Value: 100, Quality: model.Bad(model.ReasonCommFailure)}})
	if a, _ := e.Get("x.hh"); a.Active {
		t.Error("bad-quality sample activated a limit alarm")
	}
	send(t, e, "p", 5)
	e.Process(context.Background(), []model.Sample{{Point: "p", Value: math.NaN()}})
	if a, _ := e.Get("x.ll"); !a.Active {
		t.Error("a NaN sample cleared a low-low alarm")
	}
}

func TestOnOffDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := Definition{ID: "x", Point: "p", Limits: &Limits{H: &Limit{Value: 10, OnDelay: Duration(5 * time.Second), OffDelay: Duration(3 * time.Second)}}}
		e := mustNew(t, append(quiet(), WithDefinitions(d))...)
		if evs := send(t, e, "p", 11); len(evs) != 0 {
			t.Fatalf("raised before the on-delay: %v", kinds(evs))
		}
		time.Sleep(4 * time.Second)
		if evs := tick(t, e); len(evs) != 0 {
			t.Fatalf("raised after 4 s of a 5 s delay: %v", kinds(evs))
		}
		// the condition goes away before the delay ends: the delay restarts
		send(t, e, "p", 9)
		time.Sleep(2 * time.Second)
		if evs := tick(t, e); len(evs) != 0 {
			t.Fatalf("raised although the condition disappeared: %v", kinds(evs))
		}
		send(t, e, "p", 12)
		time.Sleep(4999 * time.Millisecond)
		if evs := tick(t, e); len(evs) != 0 {
			t.Fatalf("raised 1 ms early: %v", kinds(evs))
		}
		time.Sleep(time.Millisecond)
		evs := tick(t, e)
		if !slices.Equal(kinds(evs), []string{"alarm.raised"}) {
			t.Fatalf("exactly at the on-delay: %v", kinds(evs))
		}
		if evs[0].Attrs["value"] != "12" {
			t.Errorf("value attr %q", evs[0].Attrs["value"])
		}
		// off-delay: a sample after the delay clears immediately on the sample path
		send(t, e, "p", 0)
		time.Sleep(2 * time.Second)
		if evs := send(t, e, "p", 0); len(evs) != 0 {
			t.Fatalf("cleared before the off-delay: %v", kinds(evs))
		}
		time.Sleep(time.Second)
		if evs := send(t, e, "p", 0); !slices.Equal(kinds(evs), []string{"alarm.cleared"}) {
			t.Fatalf("clear after the off-delay: %v", kinds(evs))
		}
	})
}

func TestDiscreteRateDeviationQuality(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		defs := []Definition{
			{ID: "on", Point: "sw", Discrete: &Discrete{Value: ptr(1.0)}},
			{ID: "trip", Point: "brk", Latched: true, Discrete: &Discrete{Transition: "falling"}},
			{ID: "ramp", Point: "soc", Rate: &Rate{Limit: 5, Per: Duration(time.Minute)}},
			{ID: "dev", Point: "pw", Deviation: &Deviation{Point: "sp", Limit: 20, Deadband: 5}},
			{ID: "devsp", Point: "f", Deviation: &Deviation{Setpoint: ptr(50.0), Limit: 0.5}},
			{ID: "q", Point: "m", Quality: &BadQuality{}},
		}
		e := mustNew(t, append(quiet(), WithDefinitions(defs...))...)
		send(t, e, "sw", 0, "brk", 1, "pw", 100, "sp", 100, "f", 50)
		send(t, e, "sw", 1)
		if a, _ := e.Get("on"); !a.Active {
			t.Error("discrete value alarm not active")
		}
		evs := send(t, e, "brk", 0)
		if !slices.Equal(kinds(evs), []string{"alarm.raised", "alarm.cleared"}) {
			t.Errorf("transition alarm events %v", kinds(evs))
		}
		if a, _ := e.Get("trip"); a.State != StateRTNUnacked {
			t.Errorf("transition alarm state %s, want rtn_unacked", a.State)
		}
		must(t, e.Ack("trip", "op", ""))
		if a, _ := e.Get("trip"); a.State != StateLatched {
			t.Errorf("latched transition alarm after ack: %s", a.State)
		}
		tick(t, e) // the ack event
		if evs := send(t, e, "brk", 1); len(evs) != 0 {
			t.Errorf("rising edge of a falling-transition alarm: %v", kinds(evs))
		}
		// a bad sample in between is no transition, and is not the previous value
		e.Process(context.Background(), []model.Sample{{Point: "brk", Value: 0, Quality: model.Bad(model.ReasonCommFailure)}})
		if evs := send(t, e, "brk", 1); len(evs) != 0 {
			t.Errorf("bad sample made a transition: %v", kinds(evs))
		}
		// rate: 50 -> 53 within 30 s is 6 per minute
		e.Process(context.Background(), []model.Sample{{Point: "soc", Value: 50, Time: time.Now()}})
		time.Sleep(30 * time.Second)
		e.Process(context.Background(), []model.Sample{{Point: "soc", Value: 52, Time: time.Now()}})
		if a, _ := e.Get("ramp"); a.Active {
			t.Error("rate 4/min raised a 5/min alarm")
		}
		time.Sleep(30 * time.Second)
		e.Process(context.Background(), []model.Sample{{Point: "soc", Value: 55, Time: time.Now()}})
		if a, _ := e.Get("ramp"); !a.Active {
			t.Error("rate 6/min did not raise")
		}
		// deviation from another point, evaluated on updates of either
		evs = send(t, e, "sp", 125)
		if a, _ := e.Get("dev"); !a.Active || a.Value != 100 {
			t.Errorf("deviation 25 >= 20 not active after the setpoint moved: %+v", a)
		}
		if len(evs) != 1 || evs[0].Point != "pw" || evs[0].Attrs["value"] != "100" {
			t.Errorf("deviation event: %v", evs)
		}
		send(t, e, "pw", 109) // deviation 16: inside the deadband
		if a, _ := e.Get("dev"); !a.Active {
			t.Error("deviation cleared inside its deadband")
		}
		send(t, e, "pw", 111) // deviation 14 < 15
		if a, _ := e.Get("dev"); a.Active {
			t.Error("deviation did not clear")
		}
		send(t, e, "f", 49.4)
		if a, _ := e.Get("devsp"); !a.Active {
			t.Error("deviation from setpoint not active")
		}
		e.Process(context.Background(), []model.Sample{{Point: "m", Quality: model.Bad(model.ReasonCommFailure)}})
		if a, _ := e.Get("q"); !a.Active {
			t.Error("bad quality alarm not active")
		}
		send(t, e, "m", 1)
		if a, _ := e.Get("q"); a.Active {
			t.Error("bad quality alarm did not clear on a good sample")
		}
	})
}

func TestStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := Definition{ID: "st", Point: "p", Stale: &Stale{After: Duration(30 * time.Second)}}
		e := mustNew(t, append(quiet(), WithDefinitions(d))...)
		send(t, e, "p", 1)
		time.Sleep(29 * time.Second)
		if evs := tick(t, e); len(evs) != 0 {
			t.Fatalf("stale early: %v", kinds(evs))
		}
		time.Sleep(time.Second)
		if evs := tick(t, e); !slices.Equal(kinds(evs), []string{"alarm.raised"}) {
			t.Fatalf("stale after 30 s: %v", kinds(evs))
		}
		if evs := send(t, e, "p", 2); !slices.Equal(kinds(evs), []string{"alarm.cleared"}) {
			t.Fatalf("fresh sample: %v", kinds(evs))
		}
		// a second, slower point must not delay detection of the first
		must(t, e.AddDefinition(Definition{ID: "slow", Point: "q", Stale: &Stale{After: Duration(time.Hour)}}, "u"))
		send(t, e, "q", 1)
		tick(t, e)
		time.Sleep(20 * time.Second)
		send(t, e, "p", 3) // p fresh again: its deadline is 20 s + 30 s
		tick(t, e)
		time.Sleep(10 * time.Second)
		send(t, e, "p", 4) // p was fresh but q's deadline (1 h) is the remembered one
		tick(t, e)
		time.Sleep(30 * time.Second)
		if evs := tick(t, e); !slices.Equal(kinds(evs), []string{"alarm.raised"}) {
			t.Fatalf("second stale period of p: %v", kinds(evs))
		}
		time.Sleep(time.Second)
		if evs := send(t, e, "p", 5); !slices.Equal(kinds(evs), []string{"alarm.cleared"}) {
			t.Fatalf("fresh sample: %v", kinds(evs))
		}
		time.Sleep(30 * time.Second)
		if evs := tick(t, e); !slices.Equal(kinds(evs), []string{"alarm.raised"}) {
			t.Fatalf("stale after a stale period ended: %v", kinds(evs))
		}
	})
}

func TestDependencySuppression(t *testing.T) {
	defs := []Definition{
		{ID: "comm", Point: "online", Priority: PriorityCritical, Discrete: &Discrete{Value: ptr(0.0)}},
		{ID: "temp", Point: "t", DependsOn: "comm", Limits: &Limits{H: &Limit{Value: 80}}},
	}
	e := mustNew(t, append(quiet(), WithDefinitions(defs...))...)
	send(t, e, "online", 1, "t", 90) // process alarm active before comm failure
	must(t, e.Ack("temp.h", "op", ""))
	send(t, e, "online", 0) // comm fails
	// an active process alarm still clears while comm is failed
	if evs := send(t, e, "t", 20); !slices.Equal(kinds(evs), []string{"alarm.cleared"}) {
		t.Fatalf("clear during comm failure: %v", kinds(evs))
	}
	// but it is not created
	evs := send(t, e, "t", 95)
	if !slices.Equal(kinds(evs), []string{"alarm.suppressed"}) || evs[0].Attrs["reason"] != "dependency" {
		t.Fatalf("creation during comm failure: %v", evs)
	}
	if got := len(e.Active(Filter{Prefix: "temp"})); got != 0 {
		t.Fatalf("%d temp alarms listed during comm failure", got)
	}
	// comm returns with the process condition still true: now it is raised
	evs = send(t, e, "online", 1)
	if !slices.Equal(kinds(evs), []string{"alarm.cleared", "alarm.raised"}) || evs[1].Attrs["alarm_id"] != "temp.h" {
		t.Fatalf("after comm returned: %v", kinds(evs))
	}
}
