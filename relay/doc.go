// Package relay forwards samples and events to external systems (the
// netsrv of VoltageEMS) and takes commands back.
//
// A Relay receives Batches from the EMS data path. The default Relay is a
// Pipeline built by New around a transport Adapter:
//
//	Send: filter (point and event-kind globs) -> Formatter (JSON, VoltageEMS,
//	      LineProtocol, Template) -> bounded buffer (messages and bytes;
//	      DropOldest, DropNewest or Block; optional disk spool)
//	Run:  buffer -> token bucket -> circuit breaker -> Adapter.Send
//
// Send never waits on the network (except under the Block policy, for room
// in the buffer). Run delivers batches; a failed batch stays at the head of
// the queue and is retried with exponential backoff and jitter, so delivery
// is at least once and in order. Every message that is not delivered is
// counted by reason in Stats and in the ems_relay_dropped_messages_total
// metric.
//
// Adapters live in sub-packages so a program compiles only the clients it
// uses: relay/mqtt, relay/kafka, relay/websocket, relay/opcua and
// relay/webhook. Optional adapter capabilities are separate interfaces:
// Connector, Closer and Receiver (inbound commands through an Executor).
// relay/relaytest holds the conformance suite every adapter passes.
package relay
