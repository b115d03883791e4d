package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/kafka"
	"github.com/voltage-ems/ems/relay/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func cluster(t *testing.T, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type record struct {
	key, value string
	partition  int32
	topic      string
}

// consume reads topics from the start in the background.
func consume(t *testing.T, c *kfake.Cluster, topics ...string) func() []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []record
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				got = append(got, record{string(r.Key), string(r.Value), r.Partition, r.Topic})
			})
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return func() []record {
		mu.Lock()
		defer mu.Unlock()
		return append([]record(nil), got...)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	relaytest.Run(t, func(t *testing.T) relaytest.Harness {
		c := cluster(t, "ems")
		got := consume(t, c, "ems")
		a, err := kafka.New(c.ListenAddrs(), "ems")
		if err != nil {
			t.Fatal(err)
		}
		return relaytest.Harness{Adapter: a, Unordered: true, Received: func() [][]byte {
			var out [][]byte
			for _, r := range got() {
				out = append(out, []byte(r.value))
			}
			return out
		}}
	})
}

func connected(t *testing.T, c *kfake.Cluster, topic string, opts ...kafka.Option) *kafka.Adapter {
	t.Helper()
	a, err := kafka.New(c.ListenAddrs(), topic, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestKeyedByPointAndEventTopic(t *testing.T) {
	c := cluster(t, "samples", "events")
	got := consume(t, c, "samples", "events")
	a := connected(t, c, "samples", kafka.WithEventTopic("events"))
	msgs := relaytest.Messages("dev", 30, 0)
	msgs = append(msgs, relay.Message{Kind: relay.KindEvent, Event: model.EventAlarmRaised, Key: "alarm", Payload: []byte("ev"),
		Headers: map[string]string{"h": "v"}})
	if err := a.Send(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "31 records", func() bool { return len(got()) == 31 })
	part := map[string]int32{}
	seq := map[string]int{}
	for _, r := range got() {
		if r.topic == "events" {
			if r.value != "ev" || r.key != "alarm" {
				t.Fatalf("event record %+v", r)
			}
			continue
		}
		if p, ok := part[r.key]; ok && p != r.partition {
			t.Fatalf("point %s in partitions %d and %d", r.key, p, r.partition)
		}
		part[r.key] = r.partition
		var n int
		fmt.Sscanf(r.value[len(`{"point":"dev.pX","value":`):], "%d", &n)
		if prev, ok := seq[r.key]; ok && n <= prev {
			t.Fatalf("point %s: value %d after %d", r.key, n, prev)
		}
		seq[r.key] = n
	}
	if len(part) != 3 {
		t.Fatalf("keys %v", part)
	}
}

// produceError answers the next n produce requests with code for every
// partition.
func produceError(c *kfake.Cluster, n int32, code int16) *atomic.Int32 {
	var hits atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if hits.Add(1) > n {
			return nil, nil, false
		}
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &hits
}

func TestRetriableBrokerErrorsNoDuplicates(t *testing.T) {
	c := cluster(t, "ems")
	got := consume(t, c, "ems")
	// Short metadata refresh and backoff so the client's own retries are quick.
	a := connected(t, c, "ems", kafka.WithClientOptions(kgo.MetadataMinAge(10*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })))
	hits := produceError(c, 3, kerr.NotLeaderForPartition.Code)
	msgs := relaytest.Messages("dev", 20, 0)
	if err := a.Send(t.Context(), msgs); err != nil {
		t.Fatalf("Send through 3 NOT_LEADER errors: %v", err)
	}
	waitUntil(t, "20 records", func() bool { return len(got()) >= 20 })
	time.Sleep(100 * time.Millisecond) // let any duplicate arrive before counting
	if n := len(got()); n != 20 {
		t.Fatalf("%d records, want 20 exactly (idempotent producer)", n)
	}
	if hits.Load() < 3 {
		t.Fatalf("injected errors hit %d times", hits.Load())
	}
}

func TestPermanentBrokerErrorIsRejected(t *testing.T) {
	c := cluster(t, "ems")
	got := consume(t, c, "ems")
	a, err := kafka.New(c.ListenAddrs(), "ems")
	if err != nil {
		t.Fatal(err)
	}
	produceError(c, 1, kerr.MessageTooLarge.Code)
	p, err := relay.New(a, relay.WithBatchSize(5))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	p.Send(ctx, relay.Batch{Samples: []model.Sample{{Point: "a.b", Value: 1}, {Point: "a.b", Value: 2}}})
	waitUntil(t, "the rejection", func() bool { return p.Stats().Dropped.Rejected == 2 })
	p.Send(ctx, relay.Batch{Samples: []model.Sample{{Point: "a.b", Value: 3}}})
	waitUntil(t, "the next record", func() bool { return len(got()) == 1 })
	cancel()
	<-done
	p.Close()
	if st := p.Stats(); st.Sent != 1 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := kafka.New(nil, "t"); err == nil {
		t.Error("no brokers accepted")
	}
	if _, err := kafka.New([]string{"x:1"}, ""); err == nil {
		t.Error("empty topic accepted")
	}
	if _, err := kafka.New([]string{"x:1"}, "t", kafka.WithEventTopic("")); err == nil {
		t.Error("empty event topic accepted")
	}
	a, _ := kafka.New([]string{"x:1"}, "t")
	if err := a.Send(t.Context(), relaytest.Messages("d", 1, 0)); !errors.Is(err, relay.ErrNotConnected) {
		t.Errorf("Send before Connect: %v", err)
	}
}
