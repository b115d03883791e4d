package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/voltage-ems/ems/model"
)

// issueTicket creates a stream ticket with the given API key and checks
// the response shape.
func issueTicket(t testing.TB, h http.Handler, key string) ticketJSON {
	t.Helper()
	w := call(t, h, "POST", "/api/v1/stream/tickets", key, nil)
	if w.Code != http.StatusCreated {
		t.Fatalf("issuing a ticket: %d %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	var tk ticketJSON
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tk); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tk.Ticket)
	if err != nil || len(raw) != 16 {
		t.Fatalf("ticket %q is not 128 bits of base64url: %v", tk.Ticket, err)
	}
	if _, err := time.Parse(time.RFC3339, tk.Expires); err != nil {
		t.Fatalf("expires %q: %v", tk.Expires, err)
	}
	return tk
}

// openStream requests a stream route in memory with the client already
// gone, so an accepted SSE request answers 200 and returns at once.
func openStream(t testing.TB, h http.Handler, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	ctx, cancel := context.WithCancel(req.Context())
	cancel()
	req = req.WithContext(ctx)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func withTicket(path, ticket string) string {
	return path + "?include=events&ticket=" + url.QueryEscape(ticket)
}

func wantUnauthorized(t testing.TB, w *httptest.ResponseRecorder, what string) errorBody {
	t.Helper()
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("%s: status %d, want 401: %s", what, w.Code, w.Body)
	}
	e := errBody(t, w)
	if e.Code != "unauthorized" {
		t.Fatalf("%s: code %q", what, e.Code)
	}
	return e
}

// TestStreamTicketSSE issues a ticket over a real socket, opens the SSE
// stream with it and no header, receives an event, and shows that the
// ticket cannot be used twice and never reaches the access log.
func TestStreamTicketSSE(t *testing.T) {
	var logBuf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&logBuf, &mu}, nil))
	s := newSite()
	srv := httptest.NewServer(newTestServer(t, s, WithLogger(log)))
	defer srv.Close()

	before := time.Now()
	tk := issueTicket(t, srv.Config.Handler, viewerKey)
	exp, _ := time.Parse(time.RFC3339, tk.Expires)
	if exp.Before(before.Add(DefaultTicketTTL-time.Second)) || exp.After(time.Now().Add(DefaultTicketTTL)) {
		t.Fatalf("expires %v, want about %v from %v", exp, DefaultTicketTTL, before)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+withTicket("/api/v1/stream", tk.Ticket), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream with ticket: %d %v", resp.StatusCode, resp.Header)
	}
	waitFor(t, "event subscription", func() bool { return s.events.count() == 1 })
	s.events.publish(model.Event{ID: "e1", Kind: model.EventRuleFired})
	sc := bufio.NewScanner(resp.Body)
	for !strings.Contains(sc.Text(), `"id":"e1"`) {
		if !sc.Scan() {
			t.Fatalf("stream ended before the event: %v", sc.Err())
		}
	}

	// Single use: the same ticket is refused, over the wire too.
	req2, _ := http.NewRequest("GET", srv.URL+withTicket("/api/v1/stream", tk.Ticket), nil)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	var e errorBody
	err = json.NewDecoder(resp2.Body).Decode(&e)
	resp2.Body.Close()
	if resp2.StatusCode != 401 || err != nil || e.Code != "unauthorized" || !strings.Contains(e.Error, "stream ticket") {
		t.Fatalf("second use: %d %+v %v", resp2.StatusCode, e, err)
	}
	cancel()
	waitFor(t, "unsubscribe", func() bool { return s.events.count() == 0 })
	http.DefaultClient.CloseIdleConnections()

	mu.Lock()
	out := logBuf.String()
	mu.Unlock()
	if strings.Contains(out, tk.Ticket) || strings.Contains(out, url.QueryEscape(tk.Ticket)) || strings.Contains(out, "ticket=") {
		t.Fatalf("ticket in the log:\n%s", out)
	}
	// The stream request is logged as the ticket's creator.
	if !strings.Contains(out, `"path":"/api/v1/stream","status":200`) || !strings.Contains(out, `"client":"vic"`) ||
		!strings.Contains(out, `"path":"/api/v1/stream/tickets","status":201`) || !strings.Contains(out, `"path":"/api/v1/stream","status":401`) {
		t.Fatalf("access log incomplete:\n%s", out)
	}
}

func TestStreamTicketWebSocket(t *testing.T) {
	s := newSite()
	gw := newTestServer(t, s)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk := issueTicket(t, gw, operatorKey)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + withTicket("/api/v1/stream/ws", tk.Ticket)
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, "event subscription", func() bool { return s.events.count() == 1 })
	s.events.publish(model.Event{ID: "w1", Kind: model.EventRuleFired})
	_, b, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"id":"w1"`) {
		t.Fatalf("%s %v", b, err)
	}
	_, resp, err := websocket.Dial(ctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second use of a WebSocket ticket: %v %v", resp, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "unsubscribe", func() bool { return s.events.count() == 0 })
}

// TestStreamTicketExpiry runs on synctest's fake clock: a ticket works
// until its lifetime is over and not a nanosecond later.
func TestStreamTicketExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newTestServer(t, newSite())
		tk := issueTicket(t, gw, viewerKey)
		if want := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339); tk.Expires != want {
			t.Fatalf("default expiry %s, want %s", tk.Expires, want)
		}

		gw = newTestServer(t, newSite(), WithStreamTickets(10*time.Second, 0))
		a, b := issueTicket(t, gw, viewerKey), issueTicket(t, gw, viewerKey)
		if want := time.Now().Add(10 * time.Second).UTC().Format(time.RFC3339); a.Expires != want {
			t.Fatalf("expiry %s, want %s", a.Expires, want)
		}
		time.Sleep(10*time.Second - time.Nanosecond)
		if w := openStream(t, gw, withTicket("/api/v1/stream", a.Ticket), nil); w.Code != 200 {
			t.Fatalf("ticket just before expiry: %d %s", w.Code, w.Body)
		}
		time.Sleep(time.Nanosecond)
		wantUnauthorized(t, openStream(t, gw, withTicket("/api/v1/stream", b.Ticket), nil), "expired ticket")
		if n := gw.tickets.outstanding(time.Now()); n != 0 {
			t.Fatalf("%d tickets kept after expiry", n)
		}
	})
}

// TestStreamTicketOnlyOnStreamRoutes: other routes ignore the ticket (it
// authenticates nothing there and is not spent).
func TestStreamTicketOnlyOnStreamRoutes(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	gw := newTestServer(t, newSite(), WithMetrics(nil), WithAPI("v2", Route{Method: "GET", Path: "/stream", Role: RoleViewer, Handler: ok}))
	tk := issueTicket(t, gw, adminKey)
	q := "?ticket=" + url.QueryEscape(tk.Ticket)
	for _, c := range []struct{ method, target string }{
		{"GET", "/api/v2/stream" + q}, // a vendor route of the same path
		{"GET", "/api/v1/points" + q},
		{"GET", "/api/v1/snapshot" + q},
		{"GET", "/metrics" + q},
		{"POST", "/api/v1/commands" + q},
		{"POST", "/api/v1/stream/tickets" + q}, // a ticket cannot mint tickets
	} {
		w := call(t, gw, c.method, c.target, "", nil)
		e := wantUnauthorized(t, w, c.method+" "+c.target)
		if !strings.Contains(e.Error, "stream tickets are accepted only by GET /api/v1/stream") {
			t.Fatalf("%s: message %q does not explain", c.target, e.Error)
		}
	}
	// With headers, the parameter is an unknown one, as before.
	if w := call(t, gw, "GET", "/api/v1/points"+q, viewerKey, nil); w.Code != 400 || !strings.Contains(errBody(t, w).Error, `unknown query parameter "ticket"`) {
		t.Fatalf("ticket on /points with a key: %d %s", w.Code, w.Body)
	}
	if n := gw.tickets.outstanding(time.Now()); n != 1 {
		t.Fatalf("%d outstanding tickets, want the unspent one", n)
	}
	if w := openStream(t, gw, withTicket("/api/v1/stream", tk.Ticket), nil); w.Code != 200 {
		t.Fatalf("ticket after use elsewhere: %d %s", w.Code, w.Body)
	}
}

// TestStreamTicketAuthRules: headers take precedence over a ticket (which
// is then not spent); repeated, empty or unknown tickets are refused, also
// when anonymous viewers are allowed; the missing-credentials message
// mentions tickets on the stream routes.
func TestStreamTicketAuthRules(t *testing.T) {
	gw := newTestServer(t, newSite())
	tk := issueTicket(t, gw, viewerKey)
	hdr := func(k, v string) http.Header { return http.Header{k: {v}} }

	if w := openStream(t, gw, withTicket("/api/v1/stream", tk.Ticket), hdr("X-Api-Key", operatorKey)); w.Code != 200 {
		t.Fatalf("headers and ticket: %d %s", w.Code, w.Body)
	}
	wantUnauthorized(t, openStream(t, gw, withTicket("/api/v1/stream", tk.Ticket), hdr("X-Api-Key", "wrong-key-0123456789")), "bad key with a good ticket")
	if n := gw.tickets.outstanding(time.Now()); n != 1 {
		t.Fatalf("ticket spent although headers were sent (%d outstanding)", n)
	}
	for _, q := range []string{
		"ticket=" + url.QueryEscape(tk.Ticket) + "&ticket=" + url.QueryEscape(tk.Ticket),
		"ticket=",
		"ticket=AAAAAAAAAAAAAAAAAAAAAA",
		"ticket=" + url.QueryEscape(strings.ToUpper(tk.Ticket)+"x"),
	} {
		wantUnauthorized(t, openStream(t, gw, "/api/v1/stream?"+q, nil), q)
	}
	if n := gw.tickets.outstanding(time.Now()); n != 1 {
		t.Fatalf("a refused request spent the ticket (%d outstanding)", n)
	}
	e := wantUnauthorized(t, openStream(t, gw, "/api/v1/stream/ws", nil), "no credentials")
	if !strings.Contains(e.Error, "?ticket=") {
		t.Fatalf("message %q", e.Error)
	}
	// Percent-encoded parameter names are the same parameter.
	if w := openStream(t, gw, "/api/v1/stream?t%69cket="+url.QueryEscape(tk.Ticket), nil); w.Code != 200 {
		t.Fatalf("encoded parameter name: %d %s", w.Code, w.Body)
	}

	anon := newTestServer(t, newSite(), WithAnonymous(RoleViewer))
	wantUnauthorized(t, openStream(t, anon, "/api/v1/stream?ticket=AAAAAAAAAAAAAAAAAAAAAA", nil), "unknown ticket with anonymous viewers")
	if w := openStream(t, anon, "/api/v1/stream", nil); w.Code != 200 {
		t.Fatalf("anonymous stream: %d", w.Code)
	}
	// Anonymous viewers may mint tickets too (they gain nothing by it).
	atk := issueTicket(t, anon, "")
	if w := openStream(t, anon, withTicket("/api/v1/stream", atk.Ticket), nil); w.Code != 200 {
		t.Fatalf("anonymous ticket: %d", w.Code)
	}
}

// TestStreamTicketSingleUseConcurrent redeems one ticket from many
// goroutines at once: exactly one request gets through.
func TestStreamTicketSingleUseConcurrent(t *testing.T) {
	gw := newTestServer(t, newSite())
	tk := issueTicket(t, gw, viewerKey)
	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- openStream(t, gw, withTicket("/api/v1/stream", tk.Ticket), nil).Code })
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case 200:
			ok++
		case 401:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent uses accepted, want 1", ok, n)
	}
}

// TestStreamTicketBound: when max tickets are outstanding new ones are
// refused with 429 until one is used or the oldest expires.
func TestStreamTicketBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newTestServer(t, newSite(), WithStreamTickets(time.Minute, 2))
		a := issueTicket(t, gw, viewerKey)
		time.Sleep(20 * time.Second)
		issueTicket(t, gw, operatorKey)
		w := call(t, gw, "POST", "/api/v1/stream/tickets", viewerKey, nil)
		if w.Code != 429 || w.Header().Get("Retry-After") != "40" || errBody(t, w).Code != "too_many_tickets" {
			t.Fatalf("third ticket: %d Retry-After=%q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		if w := openStream(t, gw, withTicket("/api/v1/stream", a.Ticket), nil); w.Code != 200 {
			t.Fatalf("existing ticket evicted: %d", w.Code)
		}
		issueTicket(t, gw, viewerKey) // the used ticket freed its place
		if w := call(t, gw, "POST", "/api/v1/stream/tickets", viewerKey, nil); w.Code != 429 || w.Header().Get("Retry-After") != "60" {
			t.Fatalf("over the bound again: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
		}
		time.Sleep(time.Minute - time.Nanosecond)
		if w := call(t, gw, "POST", "/api/v1/stream/tickets", viewerKey, nil); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("just before expiry: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
		}
		time.Sleep(time.Nanosecond) // both outstanding tickets expire
		issueTicket(t, gw, viewerKey)
		issueTicket(t, gw, viewerKey)
	})
}

// TestStreamTicketRateLimited: creating tickets is rate-limited like any
// route, per client.
func TestStreamTicketRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newTestServer(t, newSite(), WithRateLimit(RateLimit{PerSecond: 1, Burst: 1}))
		issueTicket(t, gw, viewerKey)
		w := call(t, gw, "POST", "/api/v1/stream/tickets", viewerKey, nil)
		if w.Code != 429 || errBody(t, w).Code != "rate_limited" {
			t.Fatalf("second ticket within the second: %d %s", w.Code, w.Body)
		}
		time.Sleep(time.Second)
		issueTicket(t, gw, viewerKey)
	})
}

func TestWithStreamTicketsValidates(t *testing.T) {
	for _, c := range []struct {
		ttl time.Duration
		max int
	}{{-time.Second, 0}, {MaxTicketTTL + 1, 0}, {time.Second, -1}} {
		if _, err := New(append(authOpts(), WithStreamTickets(c.ttl, c.max))...); err == nil {
			t.Errorf("WithStreamTickets(%v, %d) accepted", c.ttl, c.max)
		}
	}
	if _, err := New(append(authOpts(), WithStreamTickets(MaxTicketTTL, 1))...); err != nil {
		t.Fatal(err)
	}
}

// FuzzStreamTicket sends arbitrary query strings without credentials to
// the stream routes while a real ticket is outstanding: none may get in
// (only that exact ticket could), and the real ticket still works after.
func FuzzStreamTicket(f *testing.F) {
	for _, s := range []string{
		"ticket=AAAAAAAAAAAAAAAAAAAAAA", "ticket=", "ticket=a&ticket=b", "ticket=%zz", "t%69cket=x",
		"include=events&ticket=" + strings.Repeat("A", 1000), "ticket=\x00", "points=pcs1.*&ticket=x;y",
	} {
		f.Add(s)
	}
	gw := newTestServer(f, newSite())
	f.Fuzz(func(t *testing.T, rawQuery string) {
		tk := issueTicket(t, gw, viewerKey)
		for _, path := range []string{"/api/v1/stream", "/api/v1/stream/ws"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, rawQuery
			req.RequestURI = req.URL.RequestURI()
			ctx, cancel := context.WithCancel(req.Context())
			cancel()
			w := httptest.NewRecorder()
			gw.ServeHTTP(w, req.WithContext(ctx))
			checkResponse(t, w, path+"?"+rawQuery)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("%s?%q: status %d without a valid ticket", path, rawQuery, w.Code)
			}
		}
		if w := openStream(t, gw, withTicket("/api/v1/stream", tk.Ticket), nil); w.Code != 200 {
			t.Fatalf("%q spent the outstanding ticket: %d", rawQuery, w.Code)
		}
	})
}
