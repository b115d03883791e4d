package collecttest_test

import (
	"testing"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/collect/collecttest"
)

// A driver author runs the suite from a test of their own package.
func ExampleRun() {
	_ = func(t *testing.T) {
		collecttest.Run(t, collecttest.Config{
			New: func(t *testing.T) collect.Collector {
				sim, err := collect.NewSimulator(collect.SimConfig{Devices: []collect.SimDevice{{Name: "dev", Points: []collect.SimPoint{{Name: "sp", Kind: 4}}}}})
				if err != nil {
					t.Fatal(err)
				}
				return sim
			},
			WritablePoint: "dev.sp",
			WriteValue:    1,
		})
	}
}
