// Package kafka is a relay adapter producing to Apache Kafka with franz-go.
//
// Records are keyed by point (Message.Key), so every point's messages land
// in one partition in order. The producer is idempotent and waits for all
// in-sync replicas (acks=all) by default: a retried batch does not create
// duplicates inside the producer session.
//
//	a, err := kafka.New([]string{"kafka1:9092"}, "ems.samples", kafka.WithEventTopic("ems.events"))
//	p, err := relay.New(a, relay.WithName("kafka"))
package kafka
