package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
	"github.com/voltage-ems/ems/relay/mqtt/broker"
)

// seen is the set of sample values that reached a subscriber.
type seen struct {
	mu sync.Mutex
	v  map[float64]bool
}

func (s *seen) add(payload []byte) {
	var m struct{ Value float64 }
	if json.Unmarshal(payload, &m) != nil {
		return
	}
	s.mu.Lock()
	s.v[m.Value] = true
	s.mu.Unlock()
}

func (s *seen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.v)
}

// peer is a broker that can be stopped and started again on the same port.
type peer struct {
	url         string
	start, stop func(t *testing.T)
}

const (
	outageBuffer = 500
	outageBatch  = 50
)

// runOutage sends through a pipeline while the broker goes down twice:
// first with less than the buffer bound outstanding (nothing may be lost),
// then with more (exactly the counted number is dropped).
func runOutage(t *testing.T, p peer, got *seen) {
	a, err := mqtt.New(p.url, mqtt.WithClientID("outage-pub"), mqtt.WithReconnect(200*time.Millisecond),
		mqtt.WithConnectTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := relay.New(a, relay.WithBuffer(outageBuffer, 16<<20), relay.WithBatchSize(outageBatch),
		relay.WithRetry(20*time.Millisecond, 200*time.Millisecond), relay.WithBreaker(1000, 100*time.Millisecond),
		relay.WithSendTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- pl.Run(ctx) }()
	defer func() { cancel(); <-done; pl.Close() }()

	next := 0
	send := func(n int) {
		for i := 0; i < n; i += 10 {
			var b relay.Batch
			for j := 0; j < 10; j++ {
				b.Samples = append(b.Samples, model.Sample{Point: fmt.Sprintf("dev.p%d", next%5), Value: float64(next), Time: time.Now()})
				next++
			}
			if err := pl.Send(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	settled := func() bool {
		st := pl.Stats()
		return st.Buffered == 0 && st.Pending == 0 && st.Sent+st.Dropped.Total() >= st.Accepted
	}
	waitLong := func(what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s after %v", what, time.Since(start)) }()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; stats %+v, subscriber has %d", what, pl.Stats(), got.len())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// 1. Broker up.
	send(200)
	waitLong("200 delivered", func() bool { return got.len() == 200 })

	// 2. Outage under the bound: zero loss.
	p.stop(t)
	waitLong("the disconnect", func() bool { return !a.Connected() })
	send(300)
	p.start(t)
	waitLong("the backlog", settled)
	waitLong("500 delivered", func() bool { return got.len() == 500 })
	if d := pl.Stats().Dropped; d.Total() != 0 {
		t.Fatalf("dropped %+v during an outage under the buffer bound", d)
	}

	// 3. Outage beyond the bound: exactly the counted number is missing.
	p.stop(t)
	waitLong("the disconnect", func() bool { return !a.Connected() })
	send(800)
	p.start(t)
	waitLong("the backlog", settled)
	st := pl.Stats()
	dropped := int(st.Dropped.Overflow)
	if dropped < 800-outageBuffer-outageBatch || dropped > 800-outageBuffer || st.Dropped.Total() != st.Dropped.Overflow {
		t.Fatalf("dropped %+v, want %d-%d overflow", st.Dropped, 800-outageBuffer-outageBatch, 800-outageBuffer)
	}
	waitLong("the survivors", func() bool { return got.len() >= 1300-dropped })
	time.Sleep(200 * time.Millisecond) // anything beyond the count would show up now
	if got.len() != 1300-dropped {
		t.Fatalf("subscriber has %d distinct values, want %d (1300 sent, %d counted as dropped)", got.len(), 1300-dropped, dropped)
	}
}

func TestOutageInProcess(t *testing.T) {
	addr := freeAddr(t)
	got := &seen{v: map[float64]bool{}}
	var b *broker.Broker
	p := peer{url: "tcp://" + addr}
	p.start = func(t *testing.T) {
		var err error
		if b, err = broker.Start(addr); err != nil {
			t.Fatal(err)
		}
		// Subscribe before any client can reconnect.
		b.Server().Subscribe("ems/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) { got.add(pk.Payload) })
	}
	p.stop = func(t *testing.T) { b.Close() }
	p.start(t)
	defer func() { b.Close() }()
	runOutage(t, p, got)
}

// TestOutageMosquitto runs the same outage against Debian's mosquitto,
// stopped (SIGTERM) and restarted by the test. The subscriber has a
// persistent session and mosquitto persistence is on, so what the broker
// acknowledged survives its restart.
func TestOutageMosquitto(t *testing.T) {
	if os.Getenv("EMS_INTEGRATION") != "1" {
		t.Skip("set EMS_INTEGRATION=1 to run against mosquitto (Debian package mosquitto)")
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatalf("EMS_INTEGRATION=1 but mosquitto is not installed: %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location %s/\nlog_dest none\n", port, dir)), 0o600)
	var cmd *exec.Cmd
	p := peer{url: "tcp://" + addr}
	p.start = func(t *testing.T) {
		cmd = exec.Command(bin, "-c", conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p.stop = func(t *testing.T) {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	p.start(t)
	defer func() { p.stop(t) }()

	got := &seen{v: map[float64]bool{}}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(p.url).SetClientID("outage-sub").
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got.add(m.Payload()) }))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("ems/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	runOutage(t, p, got)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
