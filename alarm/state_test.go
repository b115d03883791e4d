package alarm

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/model"
)

// quiet turns off chatter, flood and correlation so a test sees the bare
// lifecycle.
func quiet() []Option {
	return []Option{WithChatter(0, 0, 0), WithFlood(0, 0, 0), WithCorrelation(0)}
}

func ptr[T any](v T) *T { return &v }

func highDef(latched bool) Definition {
	return Definition{
		ID: "t", Point: "p", Priority: PriorityHigh, Latched: latched,
		SuppressWhen: `point("mode") == 1`,
		Limits:       &Limits{H: &Limit{Value: 10}},
	}
}

func mustNew(t *testing.T, opts ...Option) *Engine {
	t.Helper()
	e, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func send(t *testing.T, e *Engine, kv ...any) []model.Event {
	t.Helper()
	var b []model.Sample
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, model.Sample{Point: kv[i].(string), Value: toF(kv[i+1])})
	}
	evs, err := e.Process(context.Background(), b)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return evs
}

func toF(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic("bad value")
}

func tick(t *testing.T, e *Engine) []model.Event {
	t.Helper()
	evs, err := e.Tick(context.Background(), time.Now())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return evs
}

func kinds(evs []model.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, string(ev.Kind))
	}
	return out
}

func summary(a Alarm) string {
	s := string(a.State)
	if a.Active {
		s += "+active"
	}
	if a.Shelved != ShelveNone {
		s += "+shelved"
	}
	if a.OutOfService {
		s += "+oos"
	}
	if a.Suppressed {
		s += "+supp"
	}
	return s
}

// TestStateTable drives every lifecycle state with every stimulus and
// checks the resulting state, the events and the error against ISA-18.2.
func TestStateTable(t *testing.T) {
	const id = "t.h"
	setups := map[string]struct {
		latched bool
		do      func(t *testing.T, e *Engine)
		want    string
	}{
		"normal":      {false, func(t *testing.T, e *Engine) {}, "normal"},
		"unacked":     {false, func(t *testing.T, e *Engine) { send(t, e, "p", 20) }, "unacked+active"},
		"acked":       {false, func(t *testing.T, e *Engine) { send(t, e, "p", 20); must(t, e.Ack(id, "op", "")) }, "acked+active"},
		"rtn_unacked": {false, func(t *testing.T, e *Engine) { send(t, e, "p", 20); send(t, e, "p", 0) }, "rtn_unacked"},
		"latched": {true, func(t *testing.T, e *Engine) {
			send(t, e, "p", 20)
			must(t, e.Ack(id, "op", ""))
			send(t, e, "p", 0)
		}, "latched"},
		"shelved": {false, func(t *testing.T, e *Engine) {
			send(t, e, "p", 20)
			must(t, e.Shelve(id, "op", false, time.Hour, "noisy"))
		}, "normal+active+shelved"},
		"oos": {false, func(t *testing.T, e *Engine) {
			send(t, e, "p", 20)
			must(t, e.SetOutOfService(id, "op", true, "maintenance"))
		}, "normal+active+oos"},
		"suppressed": {false, func(t *testing.T, e *Engine) { send(t, e, "p", 20, "mode", 1) }, "normal+active+supp"},
	}
	var out []model.Event
	proc := func(e *Engine, p string, v float64) error {
		evs, err := e.Process(context.Background(), []model.Sample{{Point: p, Value: v}})
		out = append(out, evs...)
		return err
	}
	stimuli := map[string]func(e *Engine) error{
		"activate":   func(e *Engine) error { return proc(e, "p", 20) },
		"clear":      func(e *Engine) error { return proc(e, "p", 0) },
		"ack":        func(e *Engine) error { return e.Ack(id, "op", "seen") },
		"reset":      func(e *Engine) error { return e.Reset(id, "op", "") },
		"shelve":     func(e *Engine) error { return e.Shelve(id, "op", false, time.Hour, "r") },
		"unshelve":   func(e *Engine) error { return e.Unshelve(id, "op", "r") },
		"suppress":   func(e *Engine) error { return proc(e, "mode", 1) },
		"unsuppress": func(e *Engine) error { return proc(e, "mode", 0) },
		"oos":        func(e *Engine) error { return e.SetOutOfService(id, "op", true, "m") },
		"in_service": func(e *Engine) error { return e.SetOutOfService(id, "op", false, "m") },
		"timer": func(e *Engine) error {
			time.Sleep(2 * time.Hour)
			evs, err := e.Tick(context.Background(), time.Now())
			out = append(out, evs...)
			return err
		},
	}
	const (
		R  = "alarm.raised"
		C  = "alarm.cleared"
		A  = "alarm.acked"
		RS = "alarm.reset"
		S  = "alarm.shelved"
		U  = "alarm.unshelved"
		SP = "alarm.suppressed"
		US = "alarm.unsuppressed"
		O  = "alarm.out_of_service"
		I  = "alarm.in_service"
		X  = "invalid" // ErrInvalidTransition, nothing changes
	)
	type want struct {
		state  string
		events []string
	}
	same := func(s string) want { return want{s, nil} }
	inv := func(s string) want { return want{s, []string{X}} }
	table := map[string]map[string]want{
		"normal": {
			"activate": {"unacked+active", []string{R}}, "clear": same("normal"), "ack": inv("normal"), "reset": inv("normal"),
			"shelve": {"normal+shelved", []string{S}}, "unshelve": inv("normal"), "suppress": {"normal+supp", []string{SP}},
			"unsuppress": same("normal"), "oos": {"normal+oos", []string{O}}, "in_service": inv("normal"), "timer": same("normal"),
		},
		"unacked": {
			"activate": same("unacked+active"), "clear": {"rtn_unacked", []string{C}}, "ack": {"acked+active", []string{A}},
			"reset": inv("unacked+active"), "shelve": {"normal+active+shelved", []string{S}}, "unshelve": inv("unacked+active"),
			"suppress": {"normal+active+supp", []string{SP}}, "unsuppress": same("unacked+active"),
			"oos": {"normal+active+oos", []string{O}}, "in_service": inv("unacked+active"), "timer": same("unacked+active"),
		},
		"acked": {
			"activate": same("acked+active"), "clear": {"normal", []string{C}}, "ack": inv("acked+active"), "reset": inv("acked+active"),
			"shelve": {"normal+active+shelved", []string{S}}, "unshelve": inv("acked+active"),
			"suppress": {"normal+active+supp", []string{SP}}, "unsuppress": same("acked+active"),
			"oos": {"normal+active+oos", []string{O}}, "in_service": inv("acked+active"), "timer": same("acked+active"),
		},
		"rtn_unacked": {
			"activate": {"unacked+active", []string{R}}, "clear": same("rtn_unacked"), "ack": {"normal", []string{A}},
			"reset": inv("rtn_unacked"), "shelve": {"normal+shelved", []string{S}}, "unshelve": inv("rtn_unacked"),
			"suppress": {"normal+supp", []string{SP}}, "unsuppress": same("rtn_unacked"), "oos": {"normal+oos", []string{O}},
			"in_service": inv("rtn_unacked"), "timer": same("rtn_unacked"),
		},
		"latched": {
			"activate": {"unacked+active", []string{R}}, "clear": same("latched"), "ack": inv("latched"),
			"reset": {"normal", []string{RS}}, "shelve": {"normal+shelved", []string{S}}, "unshelve": inv("latched"),
			"suppress": {"normal+supp", []string{SP}}, "unsuppress": same("latched"), "oos": {"normal+oos", []string{O}},
			"in_service": inv("latched"), "timer": same("latched"),
		},
		"shelved": {
			"activate": same("normal+active+shelved"), "clear": same("normal+shelved"), "ack": inv("normal+active+shelved"),
			"reset": inv("normal+active+shelved"), "shelve": inv("normal+active+shelved"),
			"unshelve": {"unacked+active", []string{U, R}}, "suppress": {"normal+active+shelved+supp", []string{SP}},
			"unsuppress": same("normal+active+shelved"), "oos": {"normal+active+oos", []string{O}},
			"in_service": inv("normal+active+shelved"), "timer": {"unacked+active", []string{U, R}},
		},
		"oos": {
			"activate": same("normal+active+oos"), "clear": same("normal+oos"), "ack": inv("normal+active+oos"),
			"reset": inv("normal+active+oos"), "shelve": inv("normal+active+oos"), "unshelve": inv("normal+active+oos"),
			"suppress": {"normal+active+oos+supp", []string{SP}}, "unsuppress": same("normal+active+oos"),
			"oos": inv("normal+active+oos"), "in_service": {"unacked+active", []string{I, R}}, "timer": same("normal+active+oos"),
		},
		"suppressed": {
			"activate": same("normal+active+supp"), "clear": same("normal+supp"), "ack": inv("normal+active+supp"),
			"reset": inv("normal+active+supp"), "shelve": {"normal+active+shelved+supp", []string{S}},
			"unshelve": inv("normal+active+supp"), "suppress": same("normal+active+supp"),
			"unsuppress": {"unacked+active", []string{US, R}}, "oos": {"normal+active+oos+supp", []string{O}},
			"in_service": inv("normal+active+supp"), "timer": same("normal+active+supp"),
		},
	}
	for sname, setup := range setups {
		for stim, do := range stimuli {
			w, ok := table[sname][stim]
			if !ok {
				t.Fatalf("table misses %s x %s", sname, stim)
			}
			t.Run(sname+"/"+stim, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					e := mustNew(t, append(quiet(), WithDefinitions(highDef(setup.latched)))...)
					setup.do(t, e)
					a, _ := e.Get(id)
					if got := summary(a); got != setup.want {
						t.Fatalf("setup %s: state %s", sname, got)
					}
					tick(t, e) // drain
					out = nil
					err := do(e)
					evs := append(out, tick(t, e)...)
					got := kinds(evs)
					if err != nil {
						if !errors.Is(err, ErrInvalidTransition) {
							t.Fatalf("error %v is not ErrInvalidTransition", err)
						}
						got = append(got, X)
					}
					a, _ = e.Get(id)
					if s := summary(a); s != w.state {
						t.Errorf("state %s, want %s", s, w.state)
					}
					if !slices.Equal(got, append([]string{}, w.events...)) {
						t.Errorf("events %v, want %v", got, w.events)
					}
					for _, ev := range evs {
						if ev.Source != Source || ev.Attrs["alarm_id"] != id || ev.Point != "p" || ev.Time.IsZero() || ev.ID == "" {
							t.Errorf("malformed event %+v", ev)
						}
						switch ev.Kind {
						case model.EventAlarmAcked, model.EventAlarmShelved, model.EventAlarmUnshelved:
							if ev.Attrs["user"] == "" && ev.Attrs["reason"] == "" {
								t.Errorf("%s event says neither who nor why: %v", ev.Kind, ev.Attrs)
							}
						}
					}
				})
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnknownAlarm(t *testing.T) {
	e := mustNew(t, WithDefinitions(highDef(false)))
	for name, err := range map[string]error{
		"ack":      e.Ack("nope", "u", ""),
		"reset":    e.Reset("nope", "u", ""),
		"shelve":   e.Shelve("nope", "u", true, 0, ""),
		"unshelve": e.Unshelve("nope", "u", ""),
		"oos":      e.SetOutOfService("nope", "u", true, ""),
	} {
		if !errors.Is(err, ErrUnknownAlarm) {
			t.Errorf("%s: %v, want ErrUnknownAlarm", name, err)
		}
	}
	if _, err := e.Get("nope"); !errors.Is(err, ErrUnknownAlarm) {
		t.Errorf("Get: %v", err)
	}
}

func TestOneShotShelve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := mustNew(t, append(quiet(), WithDefinitions(highDef(false)))...)
		if err := e.Shelve("t.h", "op", true, 0, "r"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("one-shot shelve of an inactive alarm: %v", err)
		}
		evs := send(t, e, "p", 20)
		must(t, e.Shelve("t.h", "op", true, 0, "known issue"))
		evs = append(evs, send(t, e, "p", 0)...)
		evs = append(evs, send(t, e, "p", 20)...)
		// shelved, then the clear ended the shelve, then the new activation raises
		if got := kinds(evs); !slices.Equal(got, []string{"alarm.raised", "alarm.shelved", "alarm.unshelved", "alarm.raised"}) {
			t.Fatalf("events %v", got)
		}
		if err := e.Shelve("t.h", "op", false, 9*time.Hour, "r"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("shelve beyond the maximum: %v", err)
		}
	})
}
