// Package historytest is a conformance suite for history.Store
// implementations. The embedded store passes it in memory and on disk; a
// user runs the same suite against their own adapter:
//
//	func TestConformance(t *testing.T) {
//		historytest.Run(t, func(t *testing.T) history.Store { return openMine(t) })
//	}
//
// The suite needs a store with an out-of-order window of at least one hour
// and no query limits below 10 points and 100,000 samples.
package historytest
