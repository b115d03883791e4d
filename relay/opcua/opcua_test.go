package opcua_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/opcua"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs a gopcua server with a map namespace holding tags. The
// data is set before Start (gopcua panics on SetValue before Start).
func startServer(t *testing.T, tags map[string]any) (endpoint string, ns *server.MapNamespace) {
	t.Helper()
	port := freePort(t)
	s := server.New(
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.EndPoint("127.0.0.1", port),
		server.SetLogger(slog.New(slog.DiscardHandler)),
	)
	ns = server.NewMapNamespace(s, "ems")
	for k, v := range tags {
		ns.Data[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); cancel() })
	return fmt.Sprintf("opc.tcp://127.0.0.1:%d", port), ns
}

func TestWritesMappedPoints(t *testing.T) {
	endpoint, ns := startServer(t, map[string]any{"PCS1.P": 0.0, "BMS1.SOC": float32(0), "SW": false, "CNT": int32(0)})
	nsid := ns.ID()
	a, err := opcua.New(endpoint, map[string]opcua.Node{
		"pcs1.active_power": {NodeID: fmt.Sprintf("ns=%d;s=PCS1.P", nsid)},
		"bms1.soc":          {NodeID: fmt.Sprintf("ns=%d;s=BMS1.SOC", nsid), Type: "float"},
		"pcs1.switch":       {NodeID: fmt.Sprintf("ns=%d;s=SW", nsid), Type: "bool"},
		"meter.count":       {NodeID: fmt.Sprintf("ns=%d;s=CNT", nsid), Type: "int32"},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := relay.New(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	now := time.Now()
	p.Send(ctx, relay.Batch{
		Samples: []model.Sample{
			{Point: "pcs1.active_power", Value: 42.5, Time: now},
			{Point: "bms1.soc", Value: 81.25, Time: now},
			{Point: "pcs1.switch", Value: 1, Time: now},
			{Point: "meter.count", Value: 7, Time: now},
			{Point: "meter.count", Value: 7.5, Time: now}, // does not fit int32: refused, counted
			{Point: "unmapped.point", Value: 1, Time: now},
		},
		Events: []model.Event{{Kind: model.EventAlarmRaised, Time: now}},
	})
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Sent < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", p.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"PCS1.P": 42.5, "BMS1.SOC": float32(81.25), "SW": true, "CNT": int32(7)}
	for k, v := range want {
		if got := ns.GetValue(k); got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if st := a.Stats(); st.Written != 4 || st.Skipped != 2 || st.Refused != 1 {
		t.Fatalf("adapter stats %+v, want 4 written, 2 skipped, 1 refused", st)
	}
}

func TestUnknownNodeRefusedNotRetried(t *testing.T) {
	endpoint, ns := startServer(t, map[string]any{"A": 0.0})
	a, err := opcua.New(endpoint, map[string]opcua.Node{
		"a.b": {NodeID: fmt.Sprintf("ns=%d;s=A", ns.ID())},
		"x.y": {NodeID: "ns=99;s=Nope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = a.Send(t.Context(), []relay.Message{
		{Kind: relay.KindSample, Point: "a.b", Value: 3},
		{Kind: relay.KindSample, Point: "x.y", Value: 4},
	})
	if err != nil {
		t.Fatalf("Send: %v (a refused node must not fail the batch)", err)
	}
	if ns.GetValue("A") != 3.0 || a.Stats().Refused != 1 {
		t.Fatalf("A=%v stats %+v", ns.GetValue("A"), a.Stats())
	}
}

func TestNewValidates(t *testing.T) {
	cases := []map[string]opcua.Node{nil, {"p": {NodeID: "garbage;;"}}, {"p": {NodeID: "i=1", Type: "string"}}}
	for i, c := range cases {
		if _, err := opcua.New("opc.tcp://127.0.0.1:4840", c); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if _, err := opcua.New("", map[string]opcua.Node{"p": {NodeID: "i=1"}}); err == nil {
		t.Error("empty endpoint accepted")
	}
}
