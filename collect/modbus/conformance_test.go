package modbus

import (
	"testing"

	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/collect/collecttest"
	"github.com/voltage-ems/ems/model"
)

func TestConformance(t *testing.T) {
	dev := newTestDevice(1)
	srv := startServer(t, dev)
	dev.setHR(1, 0, regs(10, 20))
	collecttest.Run(t, collecttest.Config{
		New: func(t *testing.T) collect.Collector {
			var tb table
			tb.add(t, model.Point{ID: 1, Kind: model.Telemetry, Scale: 0.5}, "slave_id", "1", "function_code", "3", "register_address", "0")
			tb.add(t, model.Point{ID: 2, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "1")
			tb.add(t, model.Point{ID: 1, Kind: model.Adjustment, Scale: 1, Min: 0, Max: 100, HasMin: true, HasMax: true}, "slave_id", "1", "function_code", "6", "register_address", "9")
			c, err := New(baseConfig(srv.addr, &tb))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		WritablePoint: "pcs.A.1",
		WriteValue:    42,
		ReadOnlyPoint: "pcs.T.1",
	})
}
