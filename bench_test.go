package ems_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/rule"
)

type countAlarm struct{ n atomic.Int64 }

func (c *countAlarm) Process(_ context.Context, b []model.Sample) ([]model.Event, error) {
	c.n.Add(int64(len(b)))
	return nil, nil
}

type countRule struct{ n atomic.Int64 }

func (c *countRule) Process(_ context.Context, b []model.Sample) ([]rule.Action, error) {
	c.n.Add(int64(len(b)))
	return nil, nil
}

type countRelay struct{ n atomic.Int64 }

func (c *countRelay) Send(_ context.Context, b relay.Batch) error {
	c.n.Add(int64(len(b.Samples)))
	return nil
}

// BenchmarkPipeline measures the data path itself: batches of 1,000
// samples over 10,000 channel points routed into 1,000 instances of 10
// measurements, the snapshot updated, fanned out to 4 consumers (alarm,
// rule, history, relay) whose work is counting, so the figure is the cost
// of the EMS between collectors and components.
func BenchmarkPipeline(b *testing.B) {
	const instances, perInstance, batchSize = 1000, 10, 1000
	m := &model.Model{Templates: []model.Template{{Name: "Dev"}}}
	for j := 0; j < perInstance; j++ {
		m.Templates[0].Measurements = append(m.Templates[0].Measurements, model.Measurement{Name: fmt.Sprintf("m%d", j)})
	}
	var channelIDs []string
	for i := 0; i < instances; i++ {
		name := fmt.Sprintf("dev%d", i)
		m.Instances = append(m.Instances, model.Instance{Name: name, Template: "Dev"})
		for j := 0; j < perInstance; j++ {
			ch := model.ChannelPointID(fmt.Sprintf("ch%d", i/100), model.Telemetry, uint32(i%100*perInstance+j))
			channelIDs = append(channelIDs, ch)
			m.Uplinks = append(m.Uplinks, model.Route{From: ch, To: fmt.Sprintf("%s.m%d", name, j)})
		}
	}
	al, ru, hi, re := &countAlarm{}, &countRule{}, &countRelay{}, &countRelay{}
	e, err := ems.New(ems.WithModel(m), ems.WithAlarmer(al), ems.WithRuleEngine(ru),
		ems.WithHistory(historyFunc(func(s []model.Sample) { hi.n.Add(int64(len(s))) })), ems.WithRelay("r", re),
		ems.WithQueue("relay:r", 1024, ems.Block))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	batch := make([]model.Sample, batchSize)
	off := 0
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for b.Loop() {
		for j := range batch {
			batch[j] = model.Sample{Point: channelIDs[(off+j)%len(channelIDs)], Value: float64(j)}
		}
		off += batchSize
		if err := e.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	<-done // drains every queue: the figure includes the drain
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	total := int64(b.N) * batchSize
	if al.n.Load() != total || ru.n.Load() != total || hi.n.Load() != total || re.n.Load() != total {
		b.Fatalf("consumers saw %d/%d/%d/%d samples, want %d each", al.n.Load(), ru.n.Load(), hi.n.Load(), re.n.Load(), total)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(total), "allocs/sample")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(total), "B/sample")
}
