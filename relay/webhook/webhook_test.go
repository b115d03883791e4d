package webhook_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/relaytest"
	"github.com/voltage-ems/ems/relay/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("s3cret")

// receiver is an httptest server that verifies signatures and records lines.
type receiver struct {
	mu    sync.Mutex
	lines [][]byte
	bad   int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	err := webhook.Verify(secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Minute, time.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || req.Header.Get("Content-Type") != "application/x-ndjson" || req.Method != http.MethodPost {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.lines = append(r.lines, bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))...)
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.lines...)
}

func server(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestConformance(t *testing.T) {
	relaytest.Run(t, func(t *testing.T) relaytest.Harness {
		r := &receiver{}
		s := server(t, r)
		a, err := webhook.New(s.URL, webhook.WithSecret(secret))
		if err != nil {
			t.Fatal(err)
		}
		return relaytest.Harness{Adapter: a, Received: r.received}
	})
}

func TestSignatureChecked(t *testing.T) {
	r := &receiver{}
	s := server(t, r)
	a, _ := webhook.New(s.URL, webhook.WithSecret([]byte("wrong")))
	err := a.Send(t.Context(), relaytest.Messages("d", 2, 0))
	var se *webhook.StatusError
	if !relay.IsPermanent(err) || !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Fatalf("Send with a wrong secret: %v, want a permanent 401", err)
	}
	body := []byte("x\n")
	ts := "1767323045"
	sig := webhook.Sign(secret, ts, body)
	now := time.Unix(1767323045, 0)
	if err := webhook.Verify(secret, ts, sig, body, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(secret, ts, sig, []byte("y\n"), time.Minute, now); !errors.Is(err, webhook.ErrBadSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	if err := webhook.Verify(secret, ts, sig, body, time.Minute, now.Add(2*time.Minute)); !errors.Is(err, webhook.ErrStale) {
		t.Fatalf("replayed later: %v", err)
	}
}

func TestRetriesTransientStatus(t *testing.T) {
	var calls atomic.Int32
	r := &receiver{}
	s := server(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.ServeHTTP(w, req)
	}))
	a, _ := webhook.New(s.URL, webhook.WithSecret(secret), webhook.WithRetry(3, time.Millisecond))
	if err := a.Send(t.Context(), relaytest.Messages("d", 3, 0)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if calls.Load() != 3 || len(r.received()) != 3 {
		t.Fatalf("calls %d, lines %d", calls.Load(), len(r.received()))
	}
	calls.Store(-10)
	err := a.Send(t.Context(), relaytest.Messages("d", 1, 0))
	if err == nil || relay.IsPermanent(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Send to a server that stays busy: %v, want a retryable 503", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s := server(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	a, _ := webhook.New(s.URL, webhook.WithTimeout(20*time.Millisecond), webhook.WithRetry(1, 0))
	start := time.Now()
	err := a.Send(t.Context(), relaytest.Messages("d", 1, 0))
	if err == nil || relay.IsPermanent(err) || !errors.Is(err, errDeadline(err)) {
		t.Fatalf("Send to a hanging server: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the timeout did not apply")
	}
}

func errDeadline(err error) error {
	if strings.Contains(err.Error(), "deadline exceeded") || strings.Contains(err.Error(), "Timeout") {
		return err
	}
	return errors.New("not a timeout")
}

func TestNewValidates(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := webhook.New(u); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	for i, o := range []webhook.Option{webhook.WithSecret(nil), webhook.WithTimeout(0), webhook.WithRetry(0, 0), webhook.WithHTTPClient(nil)} {
		if _, err := webhook.New("http://x", o); err == nil {
			t.Errorf("option %d accepted", i)
		}
	}
}
