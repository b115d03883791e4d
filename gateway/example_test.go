package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/model"
)

func ExampleNew() {
	snap := model.NewSnapshot()
	snap.Update([]model.Sample{{Point: "pcs1.active_power", Value: 42.5}})

	gw, err := gateway.New(
		gateway.WithPoints(snap),
		gateway.WithAPIKey("dashboard", "a-long-random-dashboard-key", gateway.RoleViewer),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	// *gateway.Server is an http.Handler: mount it in any mux, or call
	// gw.Run(ctx, ":8080").
	req := httptest.NewRequest("GET", "/api/v1/points/pcs1.active_power", nil)
	req.Header.Set("X-API-Key", "a-long-random-dashboard-key")
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Body)
	fmt.Println(w.Code, strings.Contains(string(body), `"value":42.5`))

	req = httptest.NewRequest("GET", "/api/v1/points/pcs1.active_power", nil)
	w = httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 true
	// 401 Bearer realm="ems"
}

func ExampleStatusOf() {
	err := &model.CommandError{Point: "pcs1.power_setpoint", Value: 500, Err: model.ErrOutOfRange}
	fmt.Println(gateway.StatusOf(err))
	// Output: 422 out_of_range
}

// A browser dashboard cannot send headers with EventSource or WebSocket:
// its backend (or the page, with its key) first asks for a ticket, then
// the browser opens the stream with ?ticket=. Each ticket works once.
func ExampleWithStreamTickets() {
	snap := model.NewSnapshot()
	gw, err := gateway.New(
		gateway.WithPoints(snap),
		gateway.WithSamples(gateway.SnapshotSamples(snap)),
		gateway.WithAPIKey("dashboard", "a-long-random-dashboard-key", gateway.RoleViewer),
		gateway.WithStreamTickets(15*time.Second, 1000),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest("POST", "/api/v1/stream/tickets", nil)
	req.Header.Set("X-API-Key", "a-long-random-dashboard-key")
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	var tk struct{ Ticket, Expires string }
	_ = json.NewDecoder(w.Body).Decode(&tk)
	fmt.Println(w.Code, len(tk.Ticket))

	// new EventSource("/api/v1/stream?ticket=" + ticket) in the browser:
	for range 2 {
		ctx, leave := context.WithCancel(context.Background())
		leave() // the client leaves at once, so the stream returns
		req = httptest.NewRequestWithContext(ctx, "GET", "/api/v1/stream?ticket="+tk.Ticket, nil)
		w = httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// 201 22
	// 200 text/event-stream
	// 401 application/json
}
