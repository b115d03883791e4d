package ems_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/model"
)

// BenchmarkDetectionLatency publishes samples through the EMS at about
// 100,000 samples/s (batches of 100 every millisecond) with the default
// alarm engine watching 1,000 points. One sample per batch crosses a high
// limit; the figure is the time from Publish to the alarm Event arriving on
// an event subscription (alarm consumer, event fan-out, subscriber). Chatter
// and flood control are off: every crossing must be annunciated.
func BenchmarkDetectionLatency(b *testing.B) {
	const points, batchSize = 1000, 100
	// Quiet points stay below their limits; hot points alternate: the
	// first pass over them raises, the second clears, and so on.
	var defs []alarm.Definition
	quiet := make([]string, points)
	hotIDs := make([]string, points)
	for i := 0; i < points; i++ {
		quiet[i] = fmt.Sprintf("dev%d.temp", i)
		hotIDs[i] = fmt.Sprintf("hot%d.temp", i)
		for _, id := range []string{quiet[i], hotIDs[i]} {
			defs = append(defs, alarm.Definition{ID: "a_" + id, Point: id, Priority: 900,
				Limits: &alarm.Limits{H: &alarm.Limit{Value: 100, Deadband: 1}}})
		}
	}
	e, err := ems.New(ems.WithRuleEngine(nil), ems.WithHistory(nil),
		ems.WithAlarmOptions(alarm.WithDefinitions(defs...), alarm.WithChatter(0, 0, 0), alarm.WithFlood(0, 0, 0)))
	if err != nil {
		b.Fatal(err)
	}
	events, cancelEvents := e.SubscribeEvents(4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	batch := make([]model.Sample, batchSize)
	var lat []time.Duration
	i := 0
	start := time.Now()
	for b.Loop() {
		tick := time.Now()
		hot := hotIDs[i%points]
		want, value := model.EventAlarmRaised, 150.0
		if (i/points)%2 == 1 {
			want, value = model.EventAlarmCleared, 20
		}
		for j := range batch {
			batch[j] = model.Sample{Point: quiet[(i*batchSize+j)%points], Value: 20, Time: tick}
		}
		batch[batchSize/2] = model.Sample{Point: hot, Value: value, Time: tick}
		t0 := time.Now()
		if err := e.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for {
			ev := <-events
			if ev.Point == hot && ev.Kind == want {
				lat = append(lat, time.Since(t0))
				break
			}
		}
		i++
		// Pace to one batch per millisecond on an absolute schedule.
		if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	cancelEvents()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(float64(b.N*batchSize)/elapsed.Seconds(), "samples/s")
}
