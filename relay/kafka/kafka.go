package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/voltage-ems/ems/relay"
)

// Adapter produces relay messages to Kafka. It implements relay.Adapter,
// relay.Connector and relay.Closer.
type Adapter struct {
	brokers    []string
	topic      string
	eventTopic string
	leaderAck  bool
	extra      []kgo.Opt
	log        *slog.Logger

	mu     sync.Mutex
	client *kgo.Client
	closed bool
	recs   []*kgo.Record
}

var (
	_ relay.Adapter   = (*Adapter)(nil)
	_ relay.Connector = (*Adapter)(nil)
	_ relay.Closer    = (*Adapter)(nil)
)

// Option configures an Adapter.
type Option func(*Adapter) error

// WithEventTopic sends events to their own topic (default: the sample topic).
func WithEventTopic(topic string) Option {
	return func(a *Adapter) error {
		if topic == "" {
			return errors.New("kafka: WithEventTopic: empty topic")
		}
		a.eventTopic = topic
		return nil
	}
}

// WithLeaderAck waits for the partition leader only (acks=1) instead of
// all in-sync replicas. It turns idempotence off (Kafka requires acks=all
// for it), so a retried batch may be duplicated.
func WithLeaderAck() Option { return func(a *Adapter) error { a.leaderAck = true; return nil } }

// WithClientOptions passes further franz-go options (TLS dialer, SASL,
// compression, ...). They are applied after the adapter's own.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(a *Adapter) error { a.extra = append(a.extra, opts...); return nil }
}

// WithLogger logs connection problems. nil discards.
func WithLogger(l *slog.Logger) Option { return func(a *Adapter) error { a.log = l; return nil } }

// New returns an adapter producing to topic on the given seed brokers. It
// does not connect: Connect does.
func New(brokers []string, topic string, opts ...Option) (*Adapter, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka: New: no seed brokers")
	}
	if topic == "" {
		return nil, errors.New("kafka: New: empty topic")
	}
	a := &Adapter{brokers: append([]string(nil), brokers...), topic: topic}
	var errs []error
	for _, o := range opts {
		if err := o(a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if a.eventTopic == "" {
		a.eventTopic = topic
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Connect creates the client and checks that a broker answers.
func (a *Adapter) Connect(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return relay.ErrClosed
	}
	if a.client == nil {
		opts := []kgo.Opt{
			kgo.SeedBrokers(a.brokers...),
			kgo.DefaultProduceTopic(a.topic),
			kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // hash of the key: per-point order
		}
		if a.leaderAck {
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		} else {
			opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		}
		opts = append(opts, a.extra...)
		c, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		a.client = c
	}
	if err := a.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: connect %v: %w", a.brokers, err)
	}
	return nil
}

// Send produces every message and waits for all acknowledgements. An
// error the broker will never accept (record too large, invalid record)
// is returned as relay.Permanent.
func (a *Adapter) Send(ctx context.Context, msgs []relay.Message) error {
	a.mu.Lock()
	c := a.client
	a.mu.Unlock()
	if c == nil {
		return relay.ErrNotConnected
	}
	if len(msgs) == 0 {
		return nil
	}
	recs := a.recs[:0]
	for i := range msgs {
		m := &msgs[i]
		r := &kgo.Record{Key: []byte(m.Key), Value: m.Payload, Timestamp: m.Time, Topic: m.Topic}
		if r.Topic == "" {
			r.Topic = a.topic
			if m.Kind == relay.KindEvent {
				r.Topic = a.eventTopic
			}
		}
		for k, v := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs = append(recs, r)
	}
	defer func() { clear(recs); a.recs = recs[:0] }()
	if err := c.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) || errors.Is(err, kerr.InvalidRecord) {
			return relay.Permanent(fmt.Errorf("kafka: produce: %w", err))
		}
		return fmt.Errorf("kafka: produce: %w", err)
	}
	return nil
}

// Close flushes nothing (Send already waited) and closes the client.
func (a *Adapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.client != nil {
		a.client.Close()
	}
	return nil
}
