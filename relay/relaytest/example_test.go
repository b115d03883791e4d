package relaytest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/relaytest"
)

func ExampleMemory() {
	m := &relaytest.Memory{}
	m.FailWith(func(call int, _ []relay.Message) error {
		if call == 1 {
			return errors.New("peer down")
		}
		return nil
	})
	msgs := relaytest.Messages("dev", 2, 0)
	fmt.Println(m.Send(context.Background(), msgs))
	fmt.Println(m.Send(context.Background(), msgs), m.Len())
	// Output:
	// peer down
	// <nil> 2
}
