package alarm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
)

// TestConcurrentOperations runs operator operations from several
// goroutines while one goroutine processes samples and ticks, and checks
// (under -race) that every acknowledgement made comes out as an Event of
// Process or Tick exactly once.
func TestConcurrentOperations(t *testing.T) {
	e := mustNew(t, append(quiet(), WithDefinitions(benchDefs(50)...), WithHistorySize(1<<20))...)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("a%05d.h", (i*7+w)%50)
				_ = e.Ack(id, fmt.Sprint("op", w), "") // may be invalid in the current state
				e.Active(Filter{})
				e.KPIs()
				e.History(HistoryFilter{Limit: 5})
			}
		}()
	}
	var events []model.Event
	batch := make([]model.Sample, 50)
	for round := 0; round < 200; round++ {
		for i := range batch {
			v := 50.0
			if (round+i)%3 == 0 {
				v = 90
			}
			batch[i] = model.Sample{Point: fmt.Sprintf("p%05d", i), Value: v}
		}
		evs, err := e.Process(ctx, batch)
		must(t, err)
		events = append(events, evs...)
		evs, err = e.Tick(ctx, time.Now())
		must(t, err)
		events = append(events, evs...)
	}
	close(stop)
	wg.Wait()
	evs, _ := e.Tick(ctx, time.Now())
	events = append(events, evs...)
	acks := 0
	for _, ev := range events {
		if ev.Kind == model.EventAlarmAcked {
			acks++
		}
	}
	hist := e.History(HistoryFilter{Kind: model.EventAlarmAcked})
	if acks == 0 || acks != len(hist) {
		t.Fatalf("%d ack events delivered, %d in history", acks, len(hist))
	}
	seen := map[string]bool{}
	for _, ev := range events {
		if seen[ev.ID] {
			t.Fatalf("event %s delivered twice", ev.ID)
		}
		seen[ev.ID] = true
	}
}
