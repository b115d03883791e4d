package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/kafka"
)

func Example() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ems.samples"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	a, err := kafka.New(c.ListenAddrs(), "ems.samples")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := relay.New(a, relay.WithName("kafka"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_ = p.Send(ctx, relay.Batch{Samples: []model.Sample{{Point: "pcs1.active_power", Value: 42.5, Time: t}}})

	consumer, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("ems.samples"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer consumer.Close()
	fs := consumer.PollRecords(ctx, 1)
	fs.EachRecord(func(r *kgo.Record) { fmt.Printf("key=%s value=%s\n", r.Key, r.Value) })
	cancel()
	<-done
	_ = p.Close()
	// Output: key=pcs1.active_power value={"point":"pcs1.active_power","value":42.5,"time":"2026-01-02T03:04:05Z","quality":"good"}
}
