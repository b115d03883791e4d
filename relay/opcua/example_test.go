package opcua_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/opcua"
)

func Example() {
	// An in-process OPC UA server with one variable.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := server.New(server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous), server.EndPoint("127.0.0.1", port),
		server.SetLogger(slog.New(slog.DiscardHandler)))
	ns := server.NewMapNamespace(srv, "site")
	ns.Data["PCS1.P"] = 0.0 // set before Start
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	a, err := opcua.New(fmt.Sprintf("opc.tcp://127.0.0.1:%d", port), map[string]opcua.Node{
		"pcs1.active_power": {NodeID: fmt.Sprintf("ns=%d;s=PCS1.P", ns.ID())},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	if err := a.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	err = a.Send(ctx, []relay.Message{{Kind: relay.KindSample, Point: "pcs1.active_power", Value: 42.5}})
	fmt.Println(ns.GetValue("PCS1.P"), err)
	// Output: 42.5 <nil>
}
