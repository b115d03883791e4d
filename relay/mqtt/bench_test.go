package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
)

const benchBatch = 100 // messages per iteration, in both sub-benchmarks

// BenchmarkPublish publishes QoS 1 messages to an in-process mochi broker:
// "relay" through the whole pipeline (Send of a 100-sample batch: filter,
// JSON format, buffer; Run: batches of 1000, limiter off, breaker, adapter)
// and "raw" with a bare paho client publishing the same payloads in
// windows of 1000 tokens. Both report msgs/s measured until the broker
// acknowledged every message.
func BenchmarkPublish(b *testing.B) {
	samples := make([]model.Sample, benchBatch)
	t0 := time.Now()
	for i := range samples {
		samples[i] = model.Sample{Point: fmt.Sprintf("pcs1.p%d", i%10), Value: float64(i) * 1.5, Time: t0}
	}
	b.Run("relay", func(b *testing.B) {
		br := startBroker(b)
		a, err := mqtt.New(br.URL(), mqtt.WithClientID("bench-relay"), mqtt.WithQoS(1))
		if err != nil {
			b.Fatal(err)
		}
		p, err := relay.New(a, relay.WithOverflow(relay.Block), relay.WithBatchSize(1000), relay.WithBuffer(20000, 64<<20))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		defer func() { cancel(); <-done; p.Close() }()
		waitUntil(b, "connection", func() bool { return p.Stats().Connected })
		start := time.Now()
		n := 0
		for b.Loop() {
			if err := p.Send(ctx, relay.Batch{Samples: samples}); err != nil {
				b.Fatal(err)
			}
			n += benchBatch
		}
		for p.Stats().Sent < uint64(n) {
			time.Sleep(100 * time.Microsecond)
		}
		el := time.Since(start)
		if st := p.Stats(); st.Dropped.Total() != 0 {
			b.Fatalf("dropped %+v", st.Dropped)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
	})
	b.Run("raw", func(b *testing.B) {
		br := startBroker(b)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("bench-raw").SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		defer c.Disconnect(100)
		topics := make([]string, benchBatch)
		payloads := make([][]byte, benchBatch)
		for i, s := range samples {
			topics[i] = "ems/site/pcs1/" + s.Point[len("pcs1."):]
			payloads[i], _ = relay.JSON{}.AppendSample(nil, s)
		}
		toks := make([]paho.Token, 0, 1000)
		wait := func() {
			for _, t := range toks {
				t.Wait()
				if t.Error() != nil {
					b.Fatal(t.Error())
				}
			}
			toks = toks[:0]
		}
		start := time.Now()
		n := 0
		for b.Loop() {
			for i := range benchBatch {
				toks = append(toks, c.Publish(topics[i], 1, false, payloads[i]))
			}
			n += benchBatch
			if len(toks) >= 1000 {
				wait()
			}
		}
		wait()
		el := time.Since(start)
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
	})
}
