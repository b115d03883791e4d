// Package collecttest is a conformance suite for collect.Collector and
// collect.Writer implementations. A driver author runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		collecttest.Run(t, collecttest.Config{
//			New: func(t *testing.T) collect.Collector { return newMyCollector(t) },
//			WritablePoint: "dev1.setpoint", WriteValue: 5,
//		})
//	}
package collecttest
