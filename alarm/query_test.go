package alarm

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/model"
)

func TestActiveAndHistoryFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		defs := []Definition{
			{ID: "a", Point: "pa", Priority: PriorityLow, Tags: map[string]string{"area": "north"}, Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "b", Point: "pb", Priority: PriorityCritical, Tags: map[string]string{"area": "south"}, Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "c", Point: "pc", Priority: 600, Limits: &Limits{H: &Limit{Value: 10}}},
		}
		e := mustNew(t, append(quiet(), WithDefinitions(defs...), WithHistorySize(5))...)
		t0 := time.Now()
		send(t, e, "pa", 20)
		time.Sleep(time.Minute)
		send(t, e, "pb", 20, "pc", 20)
		must(t, e.Ack("c.h", "op", ""))
		tick(t, e)
		ids := func(as []Alarm) []string {
			var out []string
			for _, a := range as {
				out = append(out, a.ID)
			}
			return out
		}
		// highest priority first
		if got := ids(e.Active(Filter{})); len(got) != 3 || got[0] != "b.h" || got[1] != "c.h" || got[2] != "a.h" {
			t.Fatalf("Active order: %v", got)
		}
		if got := ids(e.Active(Filter{MinPriority: 600})); len(got) != 2 {
			t.Fatalf("min priority: %v", got)
		}
		if got := ids(e.Active(Filter{Tags: map[string]string{"area": "north"}})); len(got) != 1 || got[0] != "a.h" {
			t.Fatalf("tags: %v", got)
		}
		if got := ids(e.Active(Filter{State: StateAcked})); len(got) != 1 || got[0] != "c.h" {
			t.Fatalf("state: %v", got)
		}
		if got := e.History(HistoryFilter{To: t0.Add(time.Second)}); len(got) != 1 || got[0].Point != "pa" {
			t.Fatalf("history before t0+1s: %v", got)
		}
		if got := e.History(HistoryFilter{MinPriority: PriorityCritical}); len(got) != 1 || got[0].Point != "pb" {
			t.Fatalf("history by priority: %v", got)
		}
		if got := e.History(HistoryFilter{State: StateAcked}); len(got) != 1 || got[0].Kind != model.EventAlarmAcked {
			t.Fatalf("history by state: %v", got)
		}
		if got := e.History(HistoryFilter{Point: "pc", Limit: 1}); len(got) != 1 || got[0].Kind != model.EventAlarmAcked {
			t.Fatalf("history by point with limit: %v", got)
		}
		// the history is bounded: 4 events so far, 2 more push the oldest out
		send(t, e, "pa", 0, "pb", 0)
		h := e.History(HistoryFilter{})
		if len(h) != 5 || h[0].Point != "pb" || h[4].Kind != model.EventAlarmCleared {
			t.Fatalf("bounded history: %v", h)
		}
	})
}
