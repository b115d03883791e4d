package websocket_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	ws "github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/relaytest"
	"github.com/voltage-ems/ems/relay/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server accepts WebSocket clients and records every frame. With closeAfter
// > 0 it closes each connection after that many frames.
type server struct {
	mu         sync.Mutex
	frames     [][]byte
	conns      int
	closeAfter int
	closed     chan struct{}
	auth       string
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.auth != "" && r.Header.Get("Authorization") != s.auth {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	c, err := ws.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	n := 0
	for {
		_, b, err := c.Read(r.Context())
		if err != nil {
			c.CloseNow()
			return
		}
		s.mu.Lock()
		s.frames = append(s.frames, b)
		s.mu.Unlock()
		n++
		if s.closeAfter > 0 && n == s.closeAfter {
			c.Close(ws.StatusGoingAway, "restart")
			if s.closed != nil {
				s.closed <- struct{}{}
			}
			return
		}
	}
}

func (s *server) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.frames...)
}

func start(t *testing.T, s *server) string {
	t.Helper()
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return "ws" + hs.URL[len("http"):]
}

func TestConformance(t *testing.T) {
	relaytest.Run(t, func(t *testing.T) relaytest.Harness {
		s := &server{auth: "Bearer x"}
		a, err := websocket.New(start(t, s), websocket.WithHeader("Authorization", "Bearer x"))
		if err != nil {
			t.Fatal(err)
		}
		return relaytest.Harness{Adapter: a, Received: s.received}
	})
}

func TestReconnectThroughPipeline(t *testing.T) {
	s := &server{closeAfter: 10, closed: make(chan struct{}, 10)}
	a, err := websocket.New(start(t, s))
	if err != nil {
		t.Fatal(err)
	}
	p, err := relay.New(a, relay.WithRetry(time.Millisecond, 10*time.Millisecond), relay.WithBatchSize(10))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done; p.Close() }()
	batch := func(from int) relay.Batch {
		var b relay.Batch
		for i := from; i < from+10; i++ {
			b.Samples = append(b.Samples, model.Sample{Point: "d.p", Value: float64(i)})
		}
		return b
	}
	for round := 0; round < 3; round++ {
		p.Send(ctx, batch(round*10))
		select {
		case <-s.closed: // the server dropped the connection after this batch
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: server got %d frames", round, len(s.received()))
		}
	}
	if got := len(s.received()); got != 30 {
		t.Fatalf("server received %d frames, want 30", got)
	}
	if a.Dials() != 3 {
		t.Fatalf("%d dials, want 3 (one per server-side close)", a.Dials())
	}
}

func TestDialFailureAndValidation(t *testing.T) {
	s := &server{auth: "secret"}
	a, _ := websocket.New(start(t, s))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := a.Connect(ctx); err == nil {
		t.Fatal("connected without the required header")
	}
	a.Close()
	if _, err := websocket.New("http://x"); err == nil {
		t.Fatal("http URL accepted")
	}
	if _, err := websocket.New("ws://x", websocket.WithDialTimeout(0)); err == nil {
		t.Fatal("zero dial timeout accepted")
	}
}
