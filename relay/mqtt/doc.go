// Package mqtt is the relay adapter for MQTT 3.1.1 brokers, on
// paho.mqtt.golang.
//
// Samples go to a topic built from a template ("ems/{site}/{device}/{point}"
// by default), events to "ems/{site}/events/{kind}"; QoS 0, 1 or 2,
// retained messages, a last will, TLS and a heartbeat are options. Send
// publishes a whole batch before waiting for the acknowledgements, so QoS 1
// throughput is not bound by one round trip per message. While the client is
// disconnected Send fails with relay.ErrNotConnected and the pipeline keeps
// the data in its own bounded buffer (paho's store is not used as an outage
// buffer).
//
// Inbound commands (WithCommands): the adapter subscribes to
// "ems/{site}/cmd/#", parses payloads on "ems/{site}/cmd/write" with
// ParseCommand, checks the point against the allow-list, hands accepted
// commands to the relay.Executor (the EMS downlink path) and publishes
// {"id","point","value","ok","code","error"} to "ems/{site}/reply".
// Malformed, oversized, retained, not-allowed and unknown-topic messages are
// rejected, counted in CommandStats and answered with an error reply; they
// are never executed.
//
// Package relay/mqtt/broker starts an in-process broker for examples and
// tests.
package mqtt
