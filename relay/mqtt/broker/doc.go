// Package broker starts an in-process MQTT broker (mochi-mqtt) for
// examples, tests and single-box deployments that need no external broker.
//
//	b, err := broker.Start("127.0.0.1:0")
//	if err != nil { ... }
//	defer b.Close()
//	up, _ := mqtt.New(b.URL(), mqtt.WithSite("site1"))
//
// It is a separate package so that programs using relay/mqtt against an
// external broker do not compile the broker.
package broker
