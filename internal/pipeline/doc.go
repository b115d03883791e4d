// Package pipeline is the EMS data path between the sink that collectors
// publish to and the consumers (alarm, rule, history, relays): one bounded
// queue and one goroutine per consumer, with a per-consumer policy for a
// full queue.
//
// Ownership: a Batch handed to consumers is immutable and shared by all of
// them. Each consumer holds a reference while the batch is in its queue and
// while its handler runs; the handler must not retain the batch's slices
// after it returns. When the last reference is released the batch's memory
// goes back to a pool.
package pipeline
