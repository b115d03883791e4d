package alarm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/model"
)

// TestRestartRestoresState closes an engine in the middle of everything
// and checks that a new engine on the same data directory resumes: active,
// acked, shelved, latched and out-of-service states, a running on-delay,
// the shelve timer, history and run-time definition changes.
func TestRestartRestoresState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		defs := []Definition{
			{ID: "a", Point: "pa", Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "b", Point: "pb", Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "c", Point: "pc", Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "d", Point: "pd", Latched: true, Limits: &Limits{H: &Limit{Value: 10}}},
			{ID: "e", Point: "pe", Limits: &Limits{H: &Limit{Value: 10, OnDelay: Duration(time.Minute)}}},
			{ID: "f", Point: "pf", Limits: &Limits{H: &Limit{Value: 10}}},
		}
		opts := append(quiet(), WithDefinitions(defs...), WithDataDir(dir))
		e1, err := New(opts...)
		must(t, err)
		send(t, e1, "pa", 20, "pb", 20, "pc", 20, "pd", 20, "pf", 20)
		must(t, e1.Ack("b.h", "alice", "on it"))
		must(t, e1.Shelve("c.h", "bob", false, time.Hour, "maintenance crew informed"))
		must(t, e1.Ack("d.h", "alice", ""))
		send(t, e1, "pd", 0) // latched, waits for reset
		must(t, e1.SetOutOfService("f.h", "carol", true, "sensor replaced"))
		must(t, e1.AddDefinition(Definition{ID: "g", Point: "pg", Limits: &Limits{L: &Limit{Value: 0}}}, "dave"))
		must(t, e1.RemoveDefinition("a", "dave"))
		time.Sleep(10 * time.Second)
		send(t, e1, "pe", 20) // on-delay of 1 min starts
		tick(t, e1)
		hist := e1.History(HistoryFilter{})
		must(t, e1.Close())
		if _, err := e1.Process(t.Context(), nil); err != ErrClosed {
			t.Fatalf("Process after Close: %v", err)
		}

		time.Sleep(20 * time.Second) // down for 20 s
		e2, err := New(opts...)
		must(t, err)
		defer e2.Close()
		got := states(e2, "b.h", "c.h", "d.h", "f.h", "g.l")
		want := []string{"acked+active", "normal+active+shelved", "latched", "normal+active+oos", "normal"}
		if !slices.Equal(got, want) {
			t.Fatalf("states after restart %v, want %v", got, want)
		}
		if _, err := e2.Get("a.h"); err == nil {
			t.Fatal("removed definition came back")
		}
		if d, err := e2.Definition("g"); err != nil || d.Limits.L == nil {
			t.Fatalf("added definition lost: %v", err)
		}
		if h := e2.History(HistoryFilter{}); !slices.EqualFunc(h, hist, func(a, b model.Event) bool { return a.ID == b.ID && a.Kind == b.Kind }) {
			t.Fatalf("history: %d events after restart, %d before", len(h), len(hist))
		}
		if h := e2.History(HistoryFilter{AlarmID: "b.h", Kind: model.EventAlarmAcked}); len(h) != 1 || h[0].Attrs["user"] != "alice" {
			t.Fatalf("ack history: %v", h)
		}
		// the on-delay (started at 10 s, 1 min) resumes: it ends at 70 s
		time.Sleep(39 * time.Second)
		if evs := tick(t, e2); len(evs) != 0 {
			t.Fatalf("on-delay ended early: %v", kinds(evs))
		}
		time.Sleep(time.Second)
		evs := tick(t, e2)
		if !slices.Equal(kinds(evs), []string{"alarm.raised"}) || evs[0].Attrs["alarm_id"] != "e.h" {
			t.Fatalf("on-delay after restart: %v", evs)
		}
		// event ids continue
		if evs[0].ID == hist[len(hist)-1].ID {
			t.Fatal("event id reused after restart")
		}
		// the shelve timer resumes: 1 h from the shelve
		time.Sleep(time.Hour - 70*time.Second)
		evs = tick(t, e2)
		if !slices.Equal(kinds(evs), []string{"alarm.unshelved", "alarm.raised"}) {
			t.Fatalf("shelve expiry after restart: %v", kinds(evs))
		}
		must(t, e2.Reset("d.h", "alice", ""))
	})
}

func TestJournalTornLine(t *testing.T) {
	dir := t.TempDir()
	opts := append(quiet(), WithDefinitions(highDef(false)), WithDataDir(dir))
	e1, err := New(opts...)
	must(t, err)
	send(t, e1, "p", 20)
	must(t, e1.Close())
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	f.WriteString(`{"t":"s","id":"t.h","l":{"sta`) // crash in the middle of a write
	f.Close()
	e2, err := New(opts...)
	must(t, err)
	defer e2.Close()
	if got := states(e2, "t.h"); got[0] != "unacked+active" {
		t.Fatalf("state after torn journal: %v", got)
	}
}

func TestDefinitionCRUD(t *testing.T) {
	e := mustNew(t, append(quiet(), WithDefinitions(highDef(false)))...)
	send(t, e, "p", 20)
	// a bad change is rejected whole; the old definitions keep running
	bad := highDef(false)
	bad.Limits.H.Deadband = -1
	if err := e.UpdateDefinition(bad, "u"); len(model.AsConfigErrors(err)) != 1 {
		t.Fatalf("bad update: %v", err)
	}
	if err := e.AddDefinition(Definition{ID: "n", Point: "q", DependsOn: "missing", Quality: &BadQuality{}}, "u"); len(model.AsConfigErrors(err)) != 1 {
		t.Fatalf("bad add: %v", err)
	}
	if err := e.AddDefinition(highDef(false), "u"); err == nil {
		t.Fatal("duplicate add accepted")
	}
	if err := e.RemoveDefinition("zzz", "u"); err == nil {
		t.Fatal("remove of unknown id accepted")
	}
	if a, _ := e.Get("t.h"); a.State != StateUnacked {
		t.Fatalf("state lost by rejected changes: %+v", a)
	}
	// a good update keeps the state of surviving alarms and applies the new limit
	up := highDef(false)
	up.Limits.H.Value = 30
	up.Limits.HH = &Limit{Value: 50}
	must(t, e.UpdateDefinition(up, "erin"))
	if a, _ := e.Get("t.h"); a.State != StateUnacked {
		t.Fatalf("state after update: %+v", a)
	}
	evs := send(t, e, "p", 21)
	if len(evs) != 2 || evs[0].Kind != EventAlarmDefinition || evs[0].Attrs["user"] != "erin" || evs[1].Kind != model.EventAlarmCleared {
		t.Fatalf("after raising the limit: %v", evs)
	}
	if d, _ := e.Definition("t"); d.Limits.H.Value != 30 || len(e.Definitions()) != 1 {
		t.Fatalf("definition not updated: %+v", d)
	}
	must(t, e.RemoveDefinition("t", "erin"))
	if _, err := e.Get("t.h"); err == nil {
		t.Fatal("alarm of a removed definition still there")
	}
}

func TestJournaledChangesThatNoLongerFit(t *testing.T) {
	dir := t.TempDir()
	e1 := mustNew(t, append(quiet(), WithDefinitions(highDef(false)), WithDataDir(dir))...)
	must(t, e1.AddDefinition(Definition{ID: "dep", Point: "q", DependsOn: "t.h", Quality: &BadQuality{}}, "u"))
	must(t, e1.Close())
	// the configuration no longer has alarm t, which the added one depends on
	e2, err := New(append(quiet(), WithDefinitions(Definition{ID: "other", Point: "p", Quality: &BadQuality{}}), WithDataDir(dir))...)
	must(t, err)
	defer e2.Close()
	evs := tick(t, e2)
	if len(evs) != 1 || evs[0].Attrs["op"] != "discard" {
		t.Fatalf("no discard event: %v", evs)
	}
	if _, err := e2.Get("dep"); err == nil {
		t.Fatal("a change that does not fit was applied")
	}
}
