package broker_test

import (
	"fmt"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/relay/mqtt/broker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartServesClients(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("URL %s addr %s", b.URL(), b.Addr())
	}
	got := make(chan string, 1)
	b.Server().Subscribe("a/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) { got <- string(pk.Payload) })
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("t"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	c.Publish("a/b", 1, false, "hi").Wait()
	if s := <-got; s != "hi" {
		t.Fatalf("got %q", s)
	}
	if _, err := broker.Start("127.0.0.1:-1"); err == nil {
		t.Fatal("bad address accepted")
	}
}

func ExampleStart() {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	got := make(chan string, 1)
	b.Server().Subscribe("ems/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		got <- pk.TopicName + " " + string(pk.Payload)
	})
	_ = b.Server().Publish("ems/site/status", []byte("online"), false, 0)
	fmt.Println(<-got)
	// Output: ems/site/status online
}
