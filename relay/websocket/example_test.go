package websocket_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	ws "github.com/coder/websocket"

	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/websocket"
)

func Example() {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			got <- string(b)
		}
	}))
	defer srv.Close()

	a, err := websocket.New("ws" + srv.URL[len("http"):])
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_ = a.Send(ctx, []relay.Message{{Payload: []byte("one")}, {Payload: []byte("two")}})
	fmt.Println(<-got, <-got)
	// Output: one two
}
