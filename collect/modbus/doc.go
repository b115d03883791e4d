// Package modbus collects from and writes to Modbus devices over TCP (with
// optional TLS), RTU on a serial line, and RTU over TCP (serial gateways),
// on github.com/grid-x/modbus.
//
// A Collector serves one channel: one physical link and the units (slave
// ids) behind it. It implements collect.Collector, collect.Writer and
// collect.Pointer:
//
//	cfg, err := modbus.LoadDir("channels/pcs") // channel.yaml + point table + *_mapping.csv
//	c, err := modbus.New(cfg, modbus.WithLogger(log), modbus.WithRegisterer(reg))
//	go c.Run(ctx, sink)                          // polls until ctx is done
//	err = c.Write(ctx, model.Command{Point: "pcs.A.1", Value: 250})
//
// # Mapping
//
// Each point of the channel's point table (model.Point: scale, offset,
// limits) has a Mapping: slave_id, function_code (1, 2, 3, 4 to read T and
// S points; 5, 6, 15, 16 to write C and A points), register_address (the
// 0-based protocol address; with address_convention "modicon" the
// 40001-style reference is converted and checked against the function
// code), data_type (bool, int16, uint16, int32, uint32, int64, uint64,
// float32, float64, string with a length in characters), byte_order (ABCD,
// DCBA, BADC, CDAB and their 8-byte forms for 64-bit values; AB/BA for
// 16-bit ones) and bit_position (a bit of a register, for S points).
// Mappings come from VoltageEMS *_mapping.csv files (FromModel over
// model.LoadMappingDir) or from the channel YAML. Every problem is a
// *model.ConfigError naming file, line, column, field and value.
//
// # Planning
//
// Readable points are grouped by unit, function code and interval, and
// coalesced into as few requests as the unit's Limits allow (125
// registers / 2,000 bits per request by default, and a maximum gap of
// unmapped registers read to join two ranges). When a device answers
// "illegal data address" (exception 2) for a coalesced request, the
// collector bisects it over its points, keeps the parts that read, and
// excludes the points whose own addresses are refused (published
// bad:config). Excluded points are read again, alone, every
// ReprobeInterval (default 10 minutes) and return to the plan when the
// device answers. Collector.Plan shows the live requests and exclusions.
//
// # Polling and quality
//
// One goroutine owns the link; units on the link are polled in turn and
// writes go ahead of queued polls. Ticks missed because a cycle ran long
// are skipped. grid-x's link and protocol recovery timeouts are on (equal
// to the request timeout) so a late reply is dropped by transaction id
// instead of desynchronising the connection. Exception 6 (busy) is retried
// with backoff. A failed request publishes its points bad:comm_failure.
// After two consecutive timeouts a unit is skipped (its points stay bad)
// for a backoff growing from 1 s to 60 s, so a dead unit does not slow the
// others. A refused connection marks every point bad and reconnects with
// exponential backoff (1 s to 60 s, ±20% jitter). A point not refreshed for
// StaleAfter intervals while the link is up is published
// uncertain:stale with its last value (uncertain rather than bad: the value
// was measured, only late). Bad and stale samples are published once per
// change; good ones every read.
//
// # Writes
//
// Write validates the command with model.Point.Validate (kind, min, max,
// step), converts it with model.Point.Raw (scale, offset, rounding, range
// of the raw type), encodes it in the mapping's data type and byte order
// and sends FC 5, 6, 15 or 16. A C point with pulse_ms writes on, waits,
// then writes off. With verify set, the value is read back and compared.
// Before Run (or for a collector never run) writes go straight to the
// device. Result events are optional (WithEvents).
//
// # Metrics
//
// WithRegisterer registers ems_modbus_requests_total{unit,function},
// ems_modbus_errors_total{type,code}, ems_modbus_request_duration_seconds,
// ems_modbus_points_total (rate = points/s), ems_modbus_reconnects_total,
// ems_modbus_link_up, ems_modbus_skipped_ticks_total and
// ems_modbus_publish_errors_total, each with a constant channel label.
package modbus
