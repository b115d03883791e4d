// Package opcua is a relay adapter that writes sample values to mapped
// NodeIDs on an OPC UA server with gopcua.
//
// Each sample whose point is in the map becomes one WriteValue of the
// Value attribute (all of a batch in one Write request); unmapped points and
// events are skipped and counted. A node the server refuses for good
// (unknown node, type mismatch, not writable) is counted and logged and does
// not block the relay; any other failure fails the batch so the pipeline
// retries it.
//
//	a, err := opcua.New("opc.tcp://plc:4840", map[string]opcua.Node{
//		"pcs1.active_power": {NodeID: "ns=2;s=PCS1.P"},
//		"bms1.soc":          {NodeID: "ns=2;s=BMS1.SOC", Type: "float"},
//	})
package opcua
