// Package collect defines how data enters the EMS: a Collector polls
// devices and publishes batches of samples to a Sink; the optional Writer
// interface writes controls and setpoints back. It also ships a simulator
// of virtual devices for development and tests.
package collect
