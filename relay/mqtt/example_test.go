package mqtt_test

import (
	"context"
	"fmt"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
	"github.com/voltage-ems/ems/relay/mqtt/broker"
)

// An MQTT uplink to an in-process broker, as the quickstart wires it.
func Example() {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	got := make(chan string, 1)
	b.Server().Subscribe("ems/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		got <- pk.TopicName + " " + string(pk.Payload)
	})

	up, err := mqtt.New(b.URL(), mqtt.WithSite("site1"), mqtt.WithQoS(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := relay.New(up, relay.WithName("mqtt"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done; p.Close() }()

	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_ = p.Send(ctx, relay.Batch{Samples: []model.Sample{{Point: "pcs1.active_power", Value: 42.5, Time: t}}})
	fmt.Println(<-got)
	// Output: ems/site1/pcs1/active_power {"point":"pcs1.active_power","value":42.5,"time":"2026-01-02T03:04:05Z","quality":"good"}
}

func ExampleParseCommand() {
	cmd, err := mqtt.ParseCommand([]byte(`{"id":"c1","channel":1001,"type":"a","point":10001,"value":"50.000000"}`))
	fmt.Println(cmd.Point, cmd.Value, err)
	_, err = mqtt.ParseCommand([]byte(`{"point":"pcs1.sp","value":"NaN"}`))
	fmt.Println(err)
	// Output:
	// 1001.A.10001 50 <nil>
	// mqtt: malformed command: value "NaN" is not a finite number
}
