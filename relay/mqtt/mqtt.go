package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/voltage-ems/ems/relay"
)

// Adapter publishes relay messages to an MQTT 3.1.1 broker with
// paho.mqtt.golang, and optionally takes write commands back. It
// implements relay.Adapter, relay.Connector, relay.Closer and
// relay.Receiver. Build it with New.
type Adapter struct {
	cfg       config
	broker    string
	log       *slog.Logger
	topic     topicTmpl
	evTopic   topicTmpl
	cmdBase   string
	cmdWrite  string
	reply     string
	heartbeat string

	mu       sync.Mutex
	client   paho.Client
	closed   bool
	stop     chan struct{}
	bg       sync.WaitGroup // heartbeat and command handlers
	exec     atomic.Pointer[execBox]
	toks     []paho.Token
	buf      []byte
	topics   map[string]string // point -> sample topic (used by Send only)
	stats    cmdCounters
	handler  context.Context
	execSet  chan struct{} // closed when an executor was first set
	execOnce sync.Once
	cancel   context.CancelFunc
}

type execBox struct{ relay.Executor }

// execWait is how long a command waits for the first executor.
const execWait = 5 * time.Second

var (
	_ relay.Adapter   = (*Adapter)(nil)
	_ relay.Connector = (*Adapter)(nil)
	_ relay.Closer    = (*Adapter)(nil)
	_ relay.Receiver  = (*Adapter)(nil)
)

// New returns an adapter for broker ("tcp://host:1883", "tls://host:8883",
// "ws://host/mqtt"). It does not connect: Connect does (the pipeline calls
// it from Run).
func New(broker string, opts ...Option) (*Adapter, error) {
	if broker == "" {
		return nil, errors.New("mqtt: New: empty broker URL")
	}
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.birth != nil && cfg.will == nil {
		errs = append(errs, errors.New("mqtt: WithBirth needs WithWill (the birth message goes to the will topic)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, broker: broker, log: cfg.logger, stop: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.topic, _ = compileTopic(cfg.topic)
	a.evTopic, _ = compileTopic(cfg.eventTopic)
	base, _ := compileTopic(cfg.commandBase)
	rep, _ := compileTopic(cfg.replyTopic)
	a.cmdBase = base.fixed(cfg.site)
	a.cmdWrite = a.cmdBase + "/write"
	a.reply = rep.fixed(cfg.site)
	if cfg.heartbeatTopic != "" {
		hb, _ := compileTopic(cfg.heartbeatTopic)
		a.heartbeat = hb.fixed(cfg.site)
	}
	a.execSet = make(chan struct{})
	if cfg.executor != nil {
		a.exec.Store(&execBox{cfg.executor})
		close(a.execSet)
	}
	a.handler, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Connect connects to the broker. After the first success the client
// reconnects by itself (and resubscribes to the command topic); Send fails
// with relay.ErrNotConnected while it is disconnected, so the pipeline
// keeps the messages.
func (a *Adapter) Connect(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return relay.ErrClosed
	}
	if a.client != nil && a.client.IsConnected() {
		a.mu.Unlock()
		return nil
	}
	old := a.client
	a.mu.Unlock()
	if old != nil {
		old.Disconnect(0)
	}
	o := paho.NewClientOptions().
		AddBroker(a.broker).
		SetClientID(a.cfg.clientID).
		SetKeepAlive(a.cfg.keepAlive).
		SetConnectTimeout(a.cfg.connectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(a.cfg.reconnectMax).
		SetCleanSession(a.cfg.cleanSession).
		SetOrderMatters(false).
		SetOnConnectHandler(a.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			a.log.Warn("mqtt: connection lost", "broker", a.broker, "err", err)
		})
	if a.cfg.user != "" {
		o.SetUsername(a.cfg.user).SetPassword(a.cfg.pass)
	}
	if a.cfg.tls != nil {
		o.SetTLSConfig(a.cfg.tls)
	}
	if w := a.cfg.will; w != nil {
		o.SetBinaryWill(w.topic, w.payload, w.qos, w.retained)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { <-tok.Done(); c.Disconnect(0) }()
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: connect %s: %w", a.broker, err)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		c.Disconnect(0)
		return relay.ErrClosed
	}
	if a.client == nil && a.heartbeat != "" {
		a.bg.Go(a.heartbeatLoop)
	}
	a.client = c
	a.mu.Unlock()
	return nil
}

func (a *Adapter) onConnect(c paho.Client) {
	a.log.Info("mqtt: connected", "broker", a.broker)
	if w := a.cfg.will; w != nil && a.cfg.birth != nil {
		c.Publish(w.topic, w.qos, w.retained, a.cfg.birth)
	}
	if a.cfg.commands {
		a.subscribe(c)
	}
}

// subscribe subscribes to the command topics; it is called on every
// connection (a clean session starts without subscriptions).
func (a *Adapter) subscribe(c paho.Client) {
	filter := a.cmdBase + "/#"
	tok := c.Subscribe(filter, 1, a.onCommand)
	go func() {
		<-tok.Done()
		if err := tok.Error(); err != nil {
			a.log.Error("mqtt: subscribe failed", "filter", filter, "err", err)
		}
	}()
}

// Connected reports whether the client has an open connection now.
func (a *Adapter) Connected() bool {
	c := a.current()
	return c != nil && c.IsConnectionOpen()
}

func (a *Adapter) current() paho.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// Send publishes every message and waits until the broker acknowledged all
// of them (QoS 1 and 2) or they were written (QoS 0). The messages are all
// published before the first wait, so acknowledgements overlap.
func (a *Adapter) Send(ctx context.Context, msgs []relay.Message) error {
	c := a.current()
	if c == nil || !c.IsConnectionOpen() {
		return relay.ErrNotConnected
	}
	toks := a.toks[:0]
	for i := range msgs {
		m := &msgs[i]
		topic := m.Topic
		if topic == "" {
			topic = a.topicOf(m)
		}
		toks = append(toks, c.Publish(topic, a.cfg.qos, a.cfg.retained, m.Payload))
	}
	defer func() { clear(toks); a.toks = toks[:0] }()
	for _, t := range toks {
		select {
		case <-t.Done():
			if err := t.Error(); err != nil {
				return fmt.Errorf("mqtt: publish: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// topicOf renders m's topic, caching sample topics per point (a site has
// a bounded set of points; the cache is reset if it grows past 1<<16).
func (a *Adapter) topicOf(m *relay.Message) string {
	if m.Kind == relay.KindEvent {
		a.buf = a.evTopic.render(a.buf[:0], a.cfg.site, m)
		return string(a.buf)
	}
	if t, ok := a.topics[m.Point]; ok {
		return t
	}
	a.buf = a.topic.render(a.buf[:0], a.cfg.site, m)
	t := string(a.buf)
	if a.topics == nil || len(a.topics) >= 1<<16 {
		a.topics = make(map[string]string)
	}
	a.topics[m.Point] = t
	return t
}

func (a *Adapter) heartbeatLoop() {
	t := time.NewTicker(a.cfg.heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			c := a.current()
			if c == nil || !c.IsConnectionOpen() {
				continue
			}
			payload := fmt.Appendf(nil, `{"status":"online","time":%q}`, now.UTC().Format(time.RFC3339Nano))
			c.Publish(a.heartbeat, a.cfg.qos, false, payload)
		}
	}
}

// Receive hands inbound commands to exec until ctx is done (unless the
// adapter was given its own with WithExecutor). A command that arrives
// before any executor was set waits for one (up to 5s, then it is answered
// "unavailable"); one that arrives after Receive returned is answered
// "unavailable" at once. Without WithCommands nothing is subscribed and
// Receive only waits.
func (a *Adapter) Receive(ctx context.Context, exec relay.Executor) error {
	if a.cfg.executor == nil && exec != nil {
		box := &execBox{exec}
		a.exec.Store(box)
		a.execOnce.Do(func() { close(a.execSet) })
		defer a.exec.CompareAndSwap(box, nil)
	}
	<-ctx.Done()
	return nil
}

// CommandStats counts inbound commands. Every received message is in
// exactly one of Executed, Failed or a Rejected counter.
type CommandStats struct {
	Received     uint64
	Executed     uint64 // the executor returned nil
	Failed       uint64 // the executor returned an error
	Malformed    uint64 // not a valid command payload
	NotAllowed   uint64 // point not on the allow-list
	Oversized    uint64 // payload over the size bound
	UnknownTopic uint64 // under the command base but not the write topic
	Retained     uint64 // retained messages are never executed (they may be stale)
	NoExecutor   uint64 // no Executor set yet
}

type cmdCounters struct {
	received, executed, failed, malformed, notAllowed, oversized, unknownTopic, retained, noExecutor atomic.Uint64
}

// CommandStats returns the inbound command counters.
func (a *Adapter) CommandStats() CommandStats {
	s := &a.stats
	return CommandStats{Received: s.received.Load(), Executed: s.executed.Load(), Failed: s.failed.Load(),
		Malformed: s.malformed.Load(), NotAllowed: s.notAllowed.Load(), Oversized: s.oversized.Load(),
		UnknownTopic: s.unknownTopic.Load(), Retained: s.retained.Load(), NoExecutor: s.noExecutor.Load()}
}

func (a *Adapter) onCommand(c paho.Client, m paho.Message) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.bg.Add(1)
	a.mu.Unlock()
	defer a.bg.Done()
	a.stats.received.Add(1)
	reject := func(ctr *atomic.Uint64, code string, r reply, err error) {
		ctr.Add(1)
		r.Code, r.Error = code, err.Error()
		a.log.Warn("mqtt: command rejected", "topic", m.Topic(), "code", code, "err", err)
		a.publishReply(c, r)
	}
	switch {
	case m.Retained():
		reject(&a.stats.retained, "retained", reply{}, errors.New("retained command messages are not executed"))
		return
	case m.Topic() != a.cmdWrite:
		reject(&a.stats.unknownTopic, "unknown_topic", reply{}, fmt.Errorf("unknown command topic %q (want %q)", m.Topic(), a.cmdWrite))
		return
	case len(m.Payload()) > a.cfg.maxCommand:
		reject(&a.stats.oversized, "oversized", reply{}, fmt.Errorf("payload of %d bytes exceeds %d", len(m.Payload()), a.cfg.maxCommand))
		return
	}
	cmd, err := ParseCommand(m.Payload())
	if err != nil {
		reject(&a.stats.malformed, "malformed", reply{ID: cmd.ID}, err)
		return
	}
	r := reply{ID: cmd.ID, Point: cmd.Point, Value: cmd.Value}
	if !a.allowed(cmd.Point) {
		reject(&a.stats.notAllowed, "not_allowed", r, fmt.Errorf("point %q is not on the command allow-list", cmd.Point))
		return
	}
	box := a.exec.Load()
	if box == nil {
		// The connection (and subscription) can come up just before the
		// EMS hands its executor to Receive: wait for the first one.
		t := time.NewTimer(execWait)
		select {
		case <-a.execSet:
		case <-t.C:
		case <-a.handler.Done():
		}
		t.Stop()
		box = a.exec.Load()
	}
	if box == nil {
		reject(&a.stats.noExecutor, "unavailable", r, errors.New("no executor: commands are not accepted yet"))
		return
	}
	cmd.Source = "mqtt"
	cmd.Time = time.Now()
	ctx, cancel := context.WithTimeout(a.handler, 30*time.Second)
	err = box.Execute(ctx, cmd)
	cancel()
	if err != nil {
		a.stats.failed.Add(1)
		r.Code, r.Error = errorCode(err), err.Error()
		a.log.Warn("mqtt: command failed", "command", cmd.String(), "err", err)
	} else {
		a.stats.executed.Add(1)
		r.OK = true
	}
	a.publishReply(c, r)
}

func (a *Adapter) allowed(point string) bool {
	for _, p := range a.cfg.allow {
		if ok, _ := path.Match(p, point); ok {
			return true
		}
	}
	return false
}

func (a *Adapter) publishReply(c paho.Client, r reply) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	c.Publish(a.reply, 1, false, b) // not waited on: the reply is best effort
}

// Close stops the heartbeat, waits for command handlers and disconnects
// cleanly (the broker does not publish the will). It is idempotent.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	c := a.client
	close(a.stop)
	a.mu.Unlock()
	a.cancel()
	a.bg.Wait()
	if c != nil {
		c.Disconnect(250)
	}
	return nil
}
