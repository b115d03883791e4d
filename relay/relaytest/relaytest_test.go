package relaytest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/relay/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The in-memory adapter passes its own suite.
func TestMemoryConformance(t *testing.T) {
	relaytest.Run(t, func(t *testing.T) relaytest.Harness {
		m := &relaytest.Memory{}
		return relaytest.Harness{Adapter: m, Received: m.Payloads}
	})
}
