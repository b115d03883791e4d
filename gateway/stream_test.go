package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voltage-ems/ems/model"
)

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// waitFor polls cond (the subscriptions are registered by server
// goroutines over a real socket, so there is nothing to block on).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSSEOrderingFilterAndDisconnect(t *testing.T) {
	s := newSite()
	srv := httptest.NewServer(newTestServer(t, s, WithStream(StreamConfig{Buffer: 1024})))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/stream?points=pcs1.*&events=command.", nil)
	req.Header.Set("X-API-Key", viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	waitFor(t, "event subscription", func() bool { return s.events.count() == 1 })

	const n = 200
	for i := range n {
		s.snap.Update([]model.Sample{{Point: "pcs1.active_power", Value: float64(i)}, {Point: "bms1.soc", Value: -1}})
	}
	s.events.publish(model.Event{ID: "a1", Kind: model.EventAlarmRaised, Message: "filtered out"})
	s.events.publish(model.Event{ID: "c1", Kind: model.EventCommandExecuted, Message: "kept"})

	sc := bufio.NewScanner(resp.Body)
	next, lastID := 0, 0
	gotEvent := false
	var typ string
	for sc.Scan() && (next < n || !gotEvent) {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			var id int
			fmt.Sscan(strings.TrimPrefix(line, "id: "), &id)
			if id != lastID+1 {
				t.Fatalf("id %d after %d", id, lastID)
			}
			lastID = id
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if typ == "sample" {
				var smp sampleJSON
				if err := json.Unmarshal([]byte(data), &smp); err != nil {
					t.Fatal(err)
				}
				if smp.Point != "pcs1.active_power" || *smp.Value != float64(next) {
					t.Fatalf("sample %d: %+v", next, smp)
				}
				next++
			} else {
				var ev model.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatal(err)
				}
				if ev.ID != "c1" {
					t.Fatalf("event filter let %+v through", ev)
				}
				gotEvent = true
			}
		}
	}
	if next != n || !gotEvent {
		t.Fatalf("got %d samples, event %v, err %v", next, gotEvent, sc.Err())
	}
	cancel() // client disconnects
	waitFor(t, "unsubscribe on disconnect", func() bool { return s.events.count() == 0 })
}

func TestWebSocketOrderingAndDisconnect(t *testing.T) {
	s := newSite()
	srv := httptest.NewServer(newTestServer(t, s, WithStream(StreamConfig{Buffer: 1024})))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+adminToken)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/stream/ws?events=alarm.", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "event subscription", func() bool { return s.events.count() == 1 })
	const n = 100
	for i := range n {
		s.events.publish(model.Event{ID: fmt.Sprint(i), Kind: model.EventAlarmRaised, Severity: model.SeverityHigh})
		s.events.publish(model.Event{ID: "x", Kind: model.EventRuleFired})
	}
	s.snap.Update([]model.Sample{{Point: "bms1.soc", Value: 12}})
	gotEvents, gotSample := 0, false
	for gotEvents < n || !gotSample {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Type   string       `json:"type"`
			Sample *sampleJSON  `json:"sample"`
			Event  *model.Event `json:"event"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		switch m.Type {
		case "event":
			if m.Event.ID != fmt.Sprint(gotEvents) || m.Event.Severity != model.SeverityHigh {
				t.Fatalf("event %d: %+v", gotEvents, m.Event)
			}
			gotEvents++
		case "sample":
			if m.Sample.Point == "bms1.soc" && *m.Sample.Value == 12 {
				gotSample = true
			}
		default:
			t.Fatalf("message %s", b)
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "unsubscribe on close", func() bool { return s.events.count() == 0 })
}

func TestStreamEndsOnShutdown(t *testing.T) {
	s := newSite()
	gw := newTestServer(t, s)
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/stream", nil)
	req.Header.Set("X-API-Key", viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "subscription", func() bool { return s.events.count() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.events.count() != 0 {
		t.Fatal("stream still subscribed after Serve returned")
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestStreamsOutliveServerTimeouts runs both streams on a server whose
// read and write timeouts are short, for longer than those timeouts.
func TestStreamsOutliveServerTimeouts(t *testing.T) {
	s := newSite()
	gw := newTestServer(t, s, WithTimeouts(Timeouts{Read: 100 * time.Millisecond, Write: 100 * time.Millisecond, ReadHeader: 100 * time.Millisecond}),
		WithStream(StreamConfig{Heartbeat: 20 * time.Millisecond, Buffer: 64}))
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()

	req, _ := http.NewRequest("GET", base+"/api/v1/stream?include=events", nil)
	req.Header.Set("X-API-Key", viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := http.Header{}
	h.Set("X-API-Key", viewerKey)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	c, _, err := websocket.Dial(wctx, "ws://"+ln.Addr().String()+"/api/v1/stream/ws?include=events", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, "two subscriptions", func() bool { return s.events.count() == 2 })

	sse := bufio.NewScanner(resp.Body)
	start := time.Now()
	for i := 0; time.Since(start) < 400*time.Millisecond; i++ {
		id := fmt.Sprint(i)
		s.events.publish(model.Event{ID: id, Kind: model.EventRuleFired})
		for {
			_, b, err := c.Read(wctx)
			if err != nil {
				t.Fatalf("websocket after %v: %v", time.Since(start), err)
			}
			if strings.Contains(string(b), `"id":"`+id+`"`) {
				break
			}
		}
		for {
			if !sse.Scan() {
				t.Fatalf("SSE ended after %v: %v", time.Since(start), sse.Err())
			}
			if strings.Contains(sse.Text(), `"id":"`+id+`"`) {
				break
			}
		}
	}
}

func TestWebSocketOriginCheck(t *testing.T) {
	s := newSite()
	srv := httptest.NewServer(newTestServer(t, s, WithCORS("https://scada.example.com")))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/stream/ws"
	for origin, ok := range map[string]bool{"https://scada.example.com": true, "https://evil.example.com": false} {
		h := http.Header{}
		h.Set("X-API-Key", viewerKey)
		h.Set("Origin", origin)
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		if ok {
			if err != nil {
				t.Fatalf("%s: %v", origin, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			continue
		}
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s accepted", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %v %v", origin, resp, err)
		}
	}
	waitFor(t, "unsubscribe", func() bool { return s.events.count() == 0 })
}
