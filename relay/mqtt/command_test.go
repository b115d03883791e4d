package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
	"github.com/voltage-ems/ems/relay/mqtt/broker"
)

type recorder struct {
	mu   sync.Mutex
	cmds []model.Command
}

func (r *recorder) Execute(_ context.Context, c model.Command) error {
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	if c.Value > 100 {
		return &model.CommandError{Point: c.Point, Value: c.Value, Err: model.ErrOutOfRange, Reason: "max 100"}
	}
	return nil
}

func (r *recorder) executed() []model.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]model.Command(nil), r.cmds...)
}

type replyMsg struct {
	ID    string  `json:"id"`
	Point string  `json:"point"`
	Value float64 `json:"value"`
	OK    bool    `json:"ok"`
	Code  string  `json:"code"`
	Error string  `json:"error"`
}

func TestInboundCommands(t *testing.T) {
	b := startBroker(t)
	replies := subscribe(t, b, "ems/s1/reply")
	exec := &recorder{}
	a := newAdapter(t, b.URL(), mqtt.WithSite("s1"), mqtt.WithClientID("cmd"),
		mqtt.WithCommands("pcs1.*", "1001.*"), mqtt.WithMaxCommandBytes(256))
	// A retained command left on the broker reaches the adapter when it
	// subscribes, with the retain flag: it may be stale and is refused.
	// (Published in-process, so it is stored before anyone subscribes.)
	if err := b.Server().Publish("ems/s1/cmd/write", []byte(`{"id":"c9","point":"pcs1.x","value":1}`), true, 1); err != nil {
		t.Fatal(err)
	}
	user := pahoClient(t, b.URL(), "operator")
	p, err := relay.New(a, relay.WithExecutor(exec))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done; p.Close() }()
	waitUntil(t, "the command subscription", func() bool {
		cl, ok := b.Server().Clients.Get("cmd")
		return ok && cl.State.Subscriptions.Len() > 0
	})

	send := func(topic, payload string, retained bool) {
		t.Helper()
		tok := user.Publish(topic, 1, retained, payload)
		tok.Wait()
		if tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	cases := []struct {
		topic, payload string
		retained       bool
		code           string
	}{
		{"ems/s1/cmd/write", `{"id":"c1","point":"pcs1.power_setpoint","value":50}`, false, ""},
		{"ems/s1/cmd/write", `{"id":"c2","channel":1001,"type":"a","point":10001,"value":"20.500000"}`, false, ""},
		{"ems/s1/cmd/write", `{"id":"c3","point":"pcs1.power_setpoint","value":500}`, false, "out_of_range"},
		{"ems/s1/cmd/write", `{"id":"c4","point":"bms1.contactor","value":1}`, false, "not_allowed"},
		{"ems/s1/cmd/write", `{"id":"c5","point":`, false, "malformed"},
		{"ems/s1/cmd/write", `{"id":"c6","point":"pcs1.x","value":1,"extra":true}`, false, "malformed"},
		{"ems/s1/cmd/write", `{"id":"c7","point":"pcs1.x","value":"` + strings.Repeat("9", 300) + `"}`, false, "oversized"},
		{"ems/s1/cmd/other", `{"id":"c8","point":"pcs1.x","value":1}`, false, "unknown_topic"},
	}
	for _, c := range cases {
		send(c.topic, c.payload, c.retained)
	}
	waitUntil(t, "9 replies", func() bool { return len(replies.payloads()) >= len(cases)+1 })
	byCode := map[string]int{}
	for _, raw := range replies.payloads() {
		var r replyMsg
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("reply %s: %v", raw, err)
		}
		if r.OK != (r.Code == "") {
			t.Fatalf("reply %s: ok and code disagree", raw)
		}
		byCode[r.Code]++
		if r.ID == "c3" && (r.Point != "pcs1.power_setpoint" || !strings.Contains(r.Error, "max 100")) {
			t.Fatalf("reply %s", raw)
		}
	}
	want := map[string]int{"": 2, "out_of_range": 1, "not_allowed": 1, "malformed": 2, "oversized": 1, "unknown_topic": 1, "retained": 1}
	if fmt.Sprint(byCode) != fmt.Sprint(want) {
		var all []string
		for _, raw := range replies.payloads() {
			all = append(all, string(raw))
		}
		t.Fatalf("reply codes %v, want %v\nreplies:\n%s", byCode, want, strings.Join(all, "\n"))
	}
	got := exec.executed()
	if len(got) != 3 {
		t.Fatalf("executed %v, want the 3 allowed and well-formed commands only", got)
	}
	names := map[string]bool{}
	for _, c := range got {
		names[c.Point] = true
		if c.Source != "mqtt" {
			t.Fatalf("source %q", c.Source)
		}
	}
	if !names["pcs1.power_setpoint"] || !names["1001.A.10001"] {
		t.Fatalf("executed %v", got)
	}
	st := a.CommandStats()
	if st.Received != 9 || st.Executed != 2 || st.Failed != 1 || st.NotAllowed != 1 || st.Malformed != 2 ||
		st.Oversized != 1 || st.UnknownTopic != 1 || st.Retained != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Our own replies are not taken for commands.
	if st.Received != uint64(len(cases)+1) {
		t.Fatalf("received %d", st.Received)
	}
}

func TestCommandsWaitForTheFirstExecutor(t *testing.T) {
	b := startBroker(t)
	replies := subscribe(t, b, "ems/site/reply")
	a := newAdapter(t, b.URL(), mqtt.WithClientID("noexec"), mqtt.WithCommands("*"))
	connect(t, a)
	waitUntil(t, "the command subscription", func() bool {
		cl, ok := b.Server().Clients.Get("noexec")
		return ok && cl.State.Subscriptions.Len() == 1
	})
	// A command before the EMS handed over its executor waits for it.
	user := pahoClient(t, b.URL(), "op2")
	user.Publish("ems/site/cmd/write", 1, false, `{"id":"1","point":"a.b","value":1}`).Wait()
	waitUntil(t, "the command to arrive", func() bool { return a.CommandStats().Received == 1 })
	exec := &recorder{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- a.Receive(ctx, exec) }()
	waitUntil(t, "a reply", func() bool { return len(replies.payloads()) == 1 })
	cancel()
	<-done
	// Receive returned: commands are refused at once.
	user.Publish("ems/site/cmd/write", 1, false, `{"id":"2","point":"a.b","value":1}`).Wait()
	waitUntil(t, "a second reply", func() bool { return len(replies.payloads()) == 2 })
	r := replies.payloads()
	if !strings.Contains(string(r[0]), `"ok":true`) || !strings.Contains(string(r[1]), `"code":"unavailable"`) {
		t.Fatalf("replies %s / %s", r[0], r[1])
	}
	if st := a.CommandStats(); st.Executed != 1 || st.NoExecutor != 1 || len(exec.executed()) != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestParseCommand(t *testing.T) {
	ok := map[string]model.Command{
		`{"id":"a","point":"pcs1.sp","value":1.5}`:                        {ID: "a", Point: "pcs1.sp", Value: 1.5},
		`{"point":"pcs1.sw","value":true}`:                                {Point: "pcs1.sw", Value: 1},
		`{"channel":"ch1","type":"yk","point":"3","value":0}`:             {Point: "ch1.C.3", Value: 0},
		`{"channel":1001,"type":"A","point":10001,"value":"220.5"}`:       {Point: "1001.A.10001", Value: 220.5},
		` {"point":"p","value":-1e3} `:                                    {Point: "p", Value: -1000},
		`{"id":"x","channel":7,"type":"control","point":1,"value":false}`: {ID: "x", Point: "7.C.1", Value: 0},
	}
	for in, want := range ok {
		got, err := mqtt.ParseCommand([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseCommand(%s) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := []string{
		``, `null`, `[]`, `{}`, `{"point":"p"}`, `{"value":1}`, `{"point":"","value":1}`, `{"point":1,"value":1}`,
		`{"point":"p","value":"NaN"}`, `{"point":"p","value":"1e999"}`, `{"point":"p","value":{}}`,
		`{"point":"p\n","value":1}`, `{"point":"p","value":1}{"x":1}`, `{"point":"p","value":1,"type":"c"}`,
		`{"channel":"c","type":"t","point":1,"value":1}`, `{"channel":"c","type":"a","point":-1,"value":1}`,
		`{"channel":"c.d","type":"a","point":1,"value":1}`, `{"channel":"c","point":1,"value":1}`,
		`{"point":"` + strings.Repeat("x", 300) + `","value":1}`,
	}
	for _, in := range bad {
		if c, err := mqtt.ParseCommand([]byte(in)); !errors.Is(err, mqtt.ErrMalformed) {
			t.Errorf("ParseCommand(%q) = %+v, %v; want ErrMalformed", in, c, err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"id":"a","point":"pcs1.sp","value":1.5}`))
	f.Add([]byte(`{"channel":1001,"type":"a","point":10001,"value":"220.5"}`))
	f.Add([]byte(`{"point":"p","value":true}`))
	f.Add([]byte(`{"point":"\u0000","value":1e400}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := mqtt.ParseCommand(in)
		if err != nil {
			if !errors.Is(err, mqtt.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Point == "" || math.IsNaN(c.Value) || math.IsInf(c.Value, 0) || strings.ContainsAny(c.Point, "\x00\n") {
			t.Fatalf("accepted a bad command %+v from %q", c, in)
		}
		// What was accepted survives a round trip through the plain form.
		b, _ := json.Marshal(map[string]any{"id": c.ID, "point": c.Point, "value": c.Value})
		c2, err := mqtt.ParseCommand(b)
		if err != nil || c2 != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, c2, err)
		}
	})
}

func TestCommandsResubscribeAfterReconnect(t *testing.T) {
	addr := freeAddr(t)
	b, err := broker.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	exec := &recorder{}
	a := newAdapter(t, "tcp://"+addr, mqtt.WithClientID("resub"), mqtt.WithCommands("*"), mqtt.WithExecutor(exec),
		mqtt.WithReconnect(100*time.Millisecond), mqtt.WithConnectTimeout(500*time.Millisecond))
	connect(t, a)
	b.Close()
	waitUntil(t, "the disconnect", func() bool { return !a.Connected() })
	b, err = broker.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitUntil(t, "the resubscription", func() bool {
		cl, ok := b.Server().Clients.Get("resub")
		return ok && cl.State.Subscriptions.Len() == 1
	})
	user := pahoClient(t, b.URL(), "op3")
	user.Publish("ems/site/cmd/write", 1, false, `{"point":"a.b","value":2}`).Wait()
	waitUntil(t, "the command", func() bool { return len(exec.executed()) == 1 })
}
