package relay_test

import (
	"context"
	"fmt"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/relaytest"
)

func Example() {
	mem := &relaytest.Memory{} // any relay.Adapter: mqtt.New(...), kafka.New(...), ...
	p, err := relay.New(mem,
		relay.WithName("uplink"),
		relay.WithPoints("pcs1.*"),
		relay.WithBuffer(10000, 16<<20),
		relay.WithOverflow(relay.DropOldest),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()

	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_ = p.Send(ctx, relay.Batch{Samples: []model.Sample{
		{Point: "pcs1.active_power", Value: 42.5, Time: t},
		{Point: "bms1.soc", Value: 80, Time: t}, // filtered out
	}})

	cancel()
	<-done
	_ = p.Close() // delivers what is still buffered (or spools it)
	for _, m := range mem.Messages() {
		fmt.Println(string(m.Payload))
	}
	st := p.Stats()
	fmt.Println("sent", st.Sent, "filtered", st.Filtered, "dropped", st.Dropped.Total())
	// Output:
	// {"point":"pcs1.active_power","value":42.5,"time":"2026-01-02T03:04:05Z","quality":"good"}
	// sent 1 filtered 1 dropped 0
}

func ExampleLineProtocol() {
	b, _ := relay.LineProtocol{}.AppendSample(nil, model.Sample{
		Point: "pcs1.active_power", Value: 42.5, Time: time.Unix(1767323045, 0),
	})
	fmt.Println(string(b))
	// Output: ems,point=pcs1.active_power,quality=good value=42.5 1767323045000000000
}
