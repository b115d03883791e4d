package alarm

import (
	"fmt"
	"reflect"
	"testing"
	"testing/synctest"
	"time"
)

// TestParallelEqualsSequential feeds the same batches to an engine that
// partitions every batch across 4 workers and to one that never does, and
// requires identical events and states.
func TestParallelEqualsSequential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		defs := benchDefs(300)
		for i := range defs {
			if i%3 == 0 {
				defs[i].Limits.H.OnDelay = Duration(2 * time.Second)
				defs[i].Limits.L.OffDelay = Duration(time.Second)
			}
			defs[i].Tags = map[string]string{"site": "s", "device": fmt.Sprint(i % 7)}
		}
		// deviation alarms link points across partitions
		for i := 0; i < 50; i++ {
			defs = append(defs, Definition{ID: fmt.Sprintf("dev%d", i), Point: fmt.Sprintf("p%05d", i),
				Deviation: &Deviation{Point: fmt.Sprintf("p%05d", 299-i), Limit: 30, Deadband: 3}})
		}
		par := mustNew(t, WithDefinitions(defs...), WithParallel(4, 1))
		seq := mustNew(t, WithDefinitions(defs...), WithParallel(1, 1<<30))
		batches := walk(300, 60, 500, 7)
		var ep, es int
		for i, b := range batches {
			a, err := par.Process(t.Context(), b)
			must(t, err)
			s, err := seq.Process(t.Context(), b)
			must(t, err)
			if !reflect.DeepEqual(a, s) {
				t.Fatalf("batch %d: parallel events differ:\n%v\nvs\n%v", i, a, s)
			}
			ep += len(a)
			es += len(s)
			time.Sleep(700 * time.Millisecond)
			a, _ = par.Tick(t.Context(), time.Now())
			s, _ = seq.Tick(t.Context(), time.Now())
			if !reflect.DeepEqual(a, s) {
				t.Fatalf("tick %d: events differ", i)
			}
		}
		if ep == 0 {
			t.Fatal("the walk caused no events; the test proves nothing")
		}
		if !reflect.DeepEqual(par.Active(Filter{All: true}), seq.Active(Filter{All: true})) {
			t.Fatal("final states differ")
		}
		t.Logf("%d events", ep)
	})
}
