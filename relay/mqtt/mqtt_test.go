package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
	"github.com/voltage-ems/ems/relay/mqtt/broker"
	"github.com/voltage-ems/ems/relay/relaytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLimit = 10 * time.Second

func startBroker(t testing.TB, opts ...broker.Option) *broker.Broker {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// received collects what an inline subscription on the broker sees.
type received struct {
	mu   sync.Mutex
	msgs []packets.Packet
}

func (r *received) handler(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
	r.mu.Lock()
	pk.Payload = append([]byte(nil), pk.Payload...)
	r.msgs = append(r.msgs, pk)
	r.mu.Unlock()
}

func (r *received) payloads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Payload
	}
	return out
}

func (r *received) packets() []packets.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]packets.Packet(nil), r.msgs...)
}

// waitUntil polls cond (a real broker delivers asynchronously).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var subID = 0
var subMu sync.Mutex

func subscribe(t testing.TB, b *broker.Broker, filter string) *received {
	t.Helper()
	r := &received{}
	subMu.Lock()
	subID++
	id := subID
	subMu.Unlock()
	if err := b.Server().Subscribe(filter, id, r.handler); err != nil {
		t.Fatal(err)
	}
	return r
}

func newAdapter(t testing.TB, url string, opts ...mqtt.Option) *mqtt.Adapter {
	t.Helper()
	a, err := mqtt.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func connect(t testing.TB, a relay.Connector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
}

// pahoClient is an independent subscriber/publisher client.
func pahoClient(t testing.TB, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("client connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestConformance(t *testing.T) {
	relaytest.Run(t, func(t *testing.T) relaytest.Harness {
		b := startBroker(t)
		r := subscribe(t, b, "ems/#")
		a, err := mqtt.New(b.URL(), mqtt.WithClientID("conf"))
		if err != nil {
			t.Fatal(err)
		}
		return relaytest.Harness{Adapter: a, Received: r.payloads}
	})
}

func TestTopicTemplates(t *testing.T) {
	b := startBroker(t)
	r := subscribe(t, b, "#")
	a := newAdapter(t, b.URL(), mqtt.WithSite("s1"))
	connect(t, a)
	msgs := []relay.Message{
		{Kind: relay.KindSample, Point: "pcs1.active_power", Payload: []byte("1")},
		{Kind: relay.KindSample, Point: "ch1.T.7", Payload: []byte("2")},
		{Kind: relay.KindSample, Point: "odd/na+me#", Payload: []byte("3")},
		{Kind: relay.KindEvent, Event: model.EventAlarmRaised, Point: "bms1.soc", Payload: []byte("4")},
		{Kind: relay.KindSample, Point: "x.y", Topic: "custom/topic", Payload: []byte("5")},
	}
	if err := a.Send(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "5 messages", func() bool { return len(r.packets()) >= 5 })
	var got []string
	for _, p := range r.packets() {
		got = append(got, p.TopicName+"="+string(p.Payload))
	}
	want := "[ems/s1/pcs1/active_power=1 ems/s1/ch1/T.7=2 ems/s1//odd_na_me_=3 ems/s1/events/alarm.raised=4 custom/topic=5]"
	if fmt.Sprint(got) != want {
		t.Fatalf("topics\n got %v\nwant %s", got, want)
	}
	if _, err := mqtt.New(b.URL(), mqtt.WithTopic("ems/{nope}")); err == nil {
		t.Fatal("unknown placeholder accepted")
	}
	if _, err := mqtt.New(b.URL(), mqtt.WithTopic("ems/+/{point}")); err == nil {
		t.Fatal("wildcard in publish topic accepted")
	}
}

func TestQoSLevels(t *testing.T) {
	b := startBroker(t)
	sub := pahoClient(t, b.URL(), "sub")
	var mu sync.Mutex
	got := map[string]byte{}
	tok := sub.Subscribe("ems/#", 2, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got[string(m.Payload())] = m.Qos()
		mu.Unlock()
	})
	tok.Wait()
	for q := byte(0); q <= 2; q++ {
		a := newAdapter(t, b.URL(), mqtt.WithQoS(q), mqtt.WithClientID(fmt.Sprintf("q%d", q)))
		connect(t, a)
		if err := a.Send(t.Context(), []relay.Message{{Kind: relay.KindSample, Point: "d.p", Payload: fmt.Appendf(nil, "qos%d", q)}}); err != nil {
			t.Fatalf("QoS %d: %v", q, err)
		}
	}
	waitUntil(t, "3 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	for q := byte(0); q <= 2; q++ {
		if got[fmt.Sprintf("qos%d", q)] != q {
			t.Errorf("message published at QoS %d arrived at QoS %d", q, got[fmt.Sprintf("qos%d", q)])
		}
	}
	if _, err := mqtt.New(b.URL(), mqtt.WithQoS(3)); err == nil {
		t.Fatal("QoS 3 accepted")
	}
}

func TestRetained(t *testing.T) {
	b := startBroker(t)
	a := newAdapter(t, b.URL(), mqtt.WithRetained(true))
	connect(t, a)
	if err := a.Send(t.Context(), []relay.Message{{Kind: relay.KindSample, Point: "pcs1.p", Payload: []byte("42")}}); err != nil {
		t.Fatal(err)
	}
	// A subscriber that arrives later gets the retained value.
	sub := pahoClient(t, b.URL(), "late")
	ch := make(chan paho.Message, 1)
	sub.Subscribe("ems/site/pcs1/p", 1, func(_ paho.Client, m paho.Message) { ch <- m })
	select {
	case m := <-ch:
		if !m.Retained() || string(m.Payload()) != "42" {
			t.Fatalf("got retained=%v %q", m.Retained(), m.Payload())
		}
	case <-time.After(waitLimit):
		t.Fatal("no retained message")
	}
}

func TestLastWill(t *testing.T) {
	b := startBroker(t)
	r := subscribe(t, b, "ems/site/status")
	px := newProxy(t, b.Addr())
	a := newAdapter(t, "tcp://"+px.addr(), mqtt.WithClientID("will1"), mqtt.WithWill("ems/site/status", []byte("offline"), 1, false),
		mqtt.WithBirth([]byte("online")))
	connect(t, a)
	waitUntil(t, "the birth message", func() bool { return len(r.payloads()) == 1 })
	// The network fails for good: the broker sees the TCP connection end
	// without DISCONNECT, and the client cannot come back (a quick
	// reconnection with the same client id would take the session over).
	px.l.Close()
	px.cut()
	waitUntil(t, "the will", func() bool { return len(r.payloads()) == 2 })
	if got := fmt.Sprintf("%s", r.payloads()); got != "[online offline]" {
		t.Fatalf("status messages %s, want birth then will", got)
	}
	// A clean Close publishes no will.
	r2 := subscribe(t, b, "ems/site/status2")
	a2 := newAdapter(t, b.URL(), mqtt.WithClientID("will2"), mqtt.WithWill("ems/site/status2", []byte("offline"), 1, false))
	connect(t, a2)
	a2.Close()
	waitUntil(t, "will2 to leave", func() bool { return isGone(b, "will2") })
	if n := len(r2.payloads()); n != 0 {
		t.Fatalf("clean close published the will (%d messages)", n)
	}
}

// proxy forwards TCP connections to target; cut closes the current ones.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(u, c); u.Close() })
			p.wg.Go(func() { io.Copy(c, u); c.Close() })
		}
	})
	t.Cleanup(func() { l.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func isGone(b *broker.Broker, id string) bool {
	cl, ok := b.Server().Clients.Get(id)
	return !ok || cl.Closed()
}

func TestHeartbeat(t *testing.T) {
	b := startBroker(t)
	r := subscribe(t, b, "ems/s9/status")
	a := newAdapter(t, b.URL(), mqtt.WithSite("s9"), mqtt.WithHeartbeat("ems/{site}/status", 10*time.Millisecond))
	connect(t, a)
	waitUntil(t, "2 heartbeats", func() bool { return len(r.payloads()) >= 2 })
	var hb struct {
		Status string    `json:"status"`
		Time   time.Time `json:"time"`
	}
	if err := json.Unmarshal(r.payloads()[0], &hb); err != nil || hb.Status != "online" || hb.Time.IsZero() {
		t.Fatalf("heartbeat %s: %+v %v", r.payloads()[0], hb, err)
	}
}

func TestTLS(t *testing.T) {
	serverCfg, pool := selfSigned(t)
	b := startBroker(t, broker.WithTLS(serverCfg))
	if !strings.HasPrefix(b.URL(), "tls://") {
		t.Fatalf("URL %s", b.URL())
	}
	r := subscribe(t, b, "ems/#")
	a := newAdapter(t, b.URL(), mqtt.WithTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	connect(t, a)
	if err := a.Send(t.Context(), relaytest.Messages("tls", 3, 0)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "3 messages over TLS", func() bool { return len(r.payloads()) == 3 })
	// Without the CA the handshake fails.
	bad := newAdapter(t, b.URL(), mqtt.WithClientID("bad"), mqtt.WithTLS(&tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := bad.Connect(ctx); err == nil {
		t.Fatal("connected to a broker with an untrusted certificate")
	}
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

func TestSendWhileDisconnected(t *testing.T) {
	a, err := mqtt.New("tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Send(t.Context(), relaytest.Messages("d", 1, 0)); !errors.Is(err, relay.ErrNotConnected) {
		t.Fatalf("Send before Connect: %v, want ErrNotConnected", err)
	}
}

func TestNewValidates(t *testing.T) {
	bad := []mqtt.Option{
		mqtt.WithClientID(""), mqtt.WithTLS(nil), mqtt.WithWill("a/#", nil, 0, false), mqtt.WithWill("a", nil, 3, false),
		mqtt.WithSite("a+b"), mqtt.WithEventTopic("{x}"), mqtt.WithHeartbeat("hb", 0), mqtt.WithKeepAlive(0),
		mqtt.WithReconnect(0), mqtt.WithCommands(), mqtt.WithCommands("[x"), mqtt.WithCommandTopics("ems/cmd", "ems/cmd/reply"),
		mqtt.WithMaxCommandBytes(1), mqtt.WithBirth([]byte("x")), mqtt.WithConnectTimeout(0),
	}
	for i, o := range bad {
		if _, err := mqtt.New("tcp://127.0.0.1:1883", o); err == nil {
			t.Errorf("option %d accepted", i)
		}
	}
	if _, err := mqtt.New(""); err == nil {
		t.Error("empty URL accepted")
	}
}
