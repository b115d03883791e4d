// Package relaytest holds the conformance suite every relay.Adapter must
// pass, and Memory, an in-memory adapter with fault injection for testing
// pipelines and code that uses them.
//
// A user runs the same suite on their own adapter:
//
//	func TestConformance(t *testing.T) {
//		relaytest.Run(t, func(t *testing.T) relaytest.Harness {
//			peer := startMyPeer(t)
//			return relaytest.Harness{Adapter: myadapter.New(peer.Addr()), Received: peer.Payloads}
//		})
//	}
package relaytest
