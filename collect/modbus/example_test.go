package modbus_test

import (
	"fmt"

	"github.com/voltage-ems/ems/collect/modbus"
	"github.com/voltage-ems/ems/model"
)

// Decode a float32 in word-swapped (CDAB) order, as many PCS and meters
// send it.
func ExampleDecodeRegisters() {
	v, err := modbus.DecodeRegisters([]byte{0x20, 0x00, 0x47, 0xF1}, model.Float32, modbus.OrderCDAB)
	fmt.Println(v, err)
	// Output: 123456 <nil>
}

// The planner joins nearby registers into one request; Plan shows it.
func ExampleCollector_Plan() {
	cfg, err := modbus.ParseConfig("pcs.yaml", []byte(`
channel: pcs
address: 192.0.2.10:502
mappings:
  - {kind: T, point_id: 1, slave_id: 1, function_code: 3, register_address: 0, data_type: uint16}
  - {kind: T, point_id: 2, slave_id: 1, function_code: 3, register_address: 1, data_type: int32, byte_order: CDAB}
  - {kind: T, point_id: 3, slave_id: 1, function_code: 3, register_address: 10, data_type: float32}
  - {kind: S, point_id: 1, slave_id: 1, function_code: 3, register_address: 12, bit_position: 3}
  - {kind: S, point_id: 2, slave_id: 1, function_code: 2, register_address: 0}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.Points = []model.Point{
		{ID: 1, Kind: model.Telemetry, Scale: 0.1}, {ID: 2, Kind: model.Telemetry}, {ID: 3, Kind: model.Telemetry},
		{ID: 1, Kind: model.Signal}, {ID: 2, Kind: model.Signal},
	}
	c, err := modbus.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Print(c.Plan())
	// Output:
	// unit 1 fc 2 addr 0 qty 1 every 1s: 1 points
	// unit 1 fc 3 addr 0 qty 13 every 1s: 4 points
}

// A config error names the file, line, column, field and value.
func ExampleParseMapping() {
	_, err := modbus.ParseMapping("pcs/telemetry_mapping.csv", 4, model.Telemetry,
		map[string]string{"point_id": "7", "slave_id": "1", "function_code": "3", "register_address": "100", "data_type": "uint16", "byte_order": "CDAB"},
		map[string]int{"point_id": 1, "slave_id": 2, "function_code": 3, "register_address": 4, "data_type": 5, "byte_order": 6})
	fmt.Println(err)
	// Output: pcs/telemetry_mapping.csv:4:6: 7: byte_order "CDAB": byte order CDAB on a 16-bit type uint16 (16-bit values take AB or BA)
}
