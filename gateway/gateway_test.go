package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/model"
)

func TestPointsEndpoints(t *testing.T) {
	s := newSite()
	gw := newTestServer(t, s)

	w := call(t, gw, "GET", "/api/v1/points/pcs1.active_power", viewerKey, nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var smp sampleJSON
	if err := json.Unmarshal(w.Body.Bytes(), &smp); err != nil {
		t.Fatal(err)
	}
	if smp.Point != "pcs1.active_power" || smp.Value == nil || *smp.Value != 42.5 || smp.Quality != "good" {
		t.Fatalf("sample = %+v", smp)
	}
	if w.Header().Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}

	w = call(t, gw, "GET", "/api/v1/points/pcs9.nothing", viewerKey, nil)
	if w.Code != 404 || errBody(t, w).Code != "unknown_point" {
		t.Fatalf("unknown point: %d %s", w.Code, w.Body)
	}

	w = call(t, gw, "GET", "/api/v1/points?pattern=pcs1.*", viewerKey, nil)
	var pl pointList
	if err := json.Unmarshal(w.Body.Bytes(), &pl); err != nil || w.Code != 200 {
		t.Fatalf("%d %s %v", w.Code, w.Body, err)
	}
	if pl.Count != 2 || pl.Points[0].Point != "pcs1.active_power" || pl.Points[1].Point != "pcs1.power_setpoint" {
		t.Fatalf("list = %+v", pl)
	}
	w = call(t, gw, "GET", "/api/v1/points?quality=uncertain", viewerKey, nil)
	_ = json.Unmarshal(w.Body.Bytes(), &pl)
	if pl.Count != 1 || pl.Points[0].Point != "bms1.soc" || pl.Points[0].Quality != "uncertain:stale" {
		t.Fatalf("quality filter = %+v", pl)
	}
	w = call(t, gw, "GET", "/api/v1/points?limit=1", viewerKey, nil)
	_ = json.Unmarshal(w.Body.Bytes(), &pl)
	if pl.Count != 3 || !pl.Truncated || len(pl.Points) != 1 || pl.Points[0].Point != "bms1.soc" {
		t.Fatalf("limit = %+v", pl)
	}

	w = call(t, gw, "GET", "/api/v1/snapshot", viewerKey, nil)
	var snap snapshotJSON
	if err := json.Unmarshal(w.Body.Bytes(), &snap); err != nil || len(snap.Samples) != 3 || *snap.Samples["bms1.soc"].Value != 87 {
		t.Fatalf("snapshot %s %v", w.Body, err)
	}
}

func TestNonFiniteValueIsNull(t *testing.T) {
	s := newSite()
	s.snap.Update([]model.Sample{{Point: "bms1.soc", Value: nanValue(), Quality: model.Bad(model.ReasonCommFailure)}})
	gw := newTestServer(t, s)
	w := call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"value":null,"value_text":"NaN"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestCommands(t *testing.T) {
	s := newSite()
	gw := newTestServer(t, s)
	cases := []struct {
		body   string
		status int
		code   string
	}{
		{`{"point":"pcs1.power_setpoint","value":50.5}`, 200, ""},
		{`{"point":"pcs1.power_setpoint","value":150}`, 422, "out_of_range"},
		{`{"point":"pcs1.power_setpoint","value":50.3}`, 422, "bad_step"},
		{`{"point":"pcs1.active_power","value":1}`, 409, "not_writable"},
		{`{"point":"nope.x","value":1}`, 404, "not_found"},
		{`{"point":"pcs1.start","value":2}`, 422, "out_of_range"},
		{`{"point":"pcs1.start"}`, 400, "bad_request"},
		{`{"point":"pcs1.start","value":"1"}`, 400, "bad_request"},
		{`{"point":"pcs1.start","value":1,"extra":true}`, 400, "bad_request"},
		{`{"point":"pcs1.start","value":1}{"x":1}`, 400, "bad_request"},
		{`{"point":"pcs1.start",`, 400, "bad_request"},
		{`[1,2]`, 400, "bad_request"},
		{``, 400, "bad_request"},
		{`{"point":"../../etc/passwd","value":1}`, 400, "bad_request"},
		{`{"point":"pcs1.start\u0000","value":1}`, 400, "bad_request"},
		{`{"point":"pcs1.start","value":1e400}`, 400, "bad_request"},
	}
	for _, c := range cases {
		w := call(t, gw, "POST", "/api/v1/commands", operatorKey, c.body)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.body, w.Code, c.status, w.Body)
			continue
		}
		if c.status != 200 {
			if e := errBody(t, w); e.Code != c.code {
				t.Errorf("%s: code %q, want %q (%s)", c.body, e.Code, c.code, e.Error)
			}
			continue
		}
		var res commandResult
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Status != "executed" || res.Source != "api:olga" || res.ID == "" {
			t.Errorf("result %s %v", w.Body, err)
		}
	}
	if n := s.execs.Load(); n != 1 {
		t.Fatalf("%d commands executed, want exactly 1 (no partial writes)", n)
	}
	if v, _ := s.snap.Get("pcs1.power_setpoint"); v.Value != 50.5 {
		t.Fatalf("setpoint = %v", v)
	}
}

func TestErrorMessagesAreClear(t *testing.T) {
	gw := newTestServer(t, newSite())
	for _, c := range []struct{ body, want string }{
		{`{"point":"pcs1.start","value":"1"}`, `field "value" must be a number, got string`},
		{`{"point":"pcs1.start","value":1,"extra":true}`, `unknown field "extra"`},
		{`{"point":"pcs1.start",`, `truncated JSON`},
		{`{"point":pcs1}`, `malformed JSON at byte 10`},
		{`{"point":"a/b","value":1}`, `forbidden character '/'`},
		{`{"point":"pcs1.power_setpoint","value":150}`, `above max 100`},
	} {
		w := call(t, gw, "POST", "/api/v1/commands", operatorKey, c.body)
		if e := errBody(t, w); !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: message %q does not say %q", c.body, e.Error, c.want)
		}
	}
}

func TestHostileInput(t *testing.T) {
	gw := newTestServer(t, newSite(), WithBodyLimit(1024))
	huge := `{"point":"pcs1.start","value":1,"id":"` + strings.Repeat("a", 4096) + `"}`
	cases := []struct {
		method, target, body string
		status               int
	}{
		{"POST", "/api/v1/commands", huge, 413},
		{"GET", "/api/v1/points/%2e%2e%2fetc", "", 400},
		{"GET", "/api/v1/points/a%00b", "", 400},
		{"GET", "/api/v1/points/a%0Ab", "", 400},
		{"GET", "/api/v1/points/a%5Cb", "", 400},
		{"GET", "/api/v1/points/" + strings.Repeat("x", 300), "", 400},
		{"GET", "/api/v1/points/%ff%fe", "", 400},
		{"GET", "/api/v1/points?pattern=[", "", 400},
		{"GET", "/api/v1/points?limit=-1", "", 400},
		{"GET", "/api/v1/points?limit=abc", "", 400},
		{"GET", "/api/v1/points?quality=great", "", 400},
		{"GET", "/api/v1/points?bogus=1", "", 400},
		{"GET", "/api/v1/points?limit=1&limit=2", "", 400},
		{"GET", "/api/v1/points?pattern=%zz", "", 400},
		{"GET", "/api/v1/stream?include=videos", "", 400},
		{"GET", "/api/v1/stream?events=ALARM!", "", 400},
		{"DELETE", "/api/v1/points", "", 405},
		{"GET", "/api/v1/nothing", "", 404},
		{"GET", "/etc/passwd", "", 404},
	}
	for _, c := range cases {
		var body any
		if c.body != "" {
			body = c.body
		}
		w := call(t, gw, c.method, c.target, adminKey, body)
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.target, w.Code, c.status, w.Body)
			continue
		}
		errBody(t, w)
	}
	// A body without Content-Length past the limit (chunked) is cut too.
	req := httptest.NewRequest("POST", "/api/v1/commands", strings.NewReader(huge))
	req.ContentLength = -1
	req.Header.Set("X-API-Key", adminKey)
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("chunked huge body: %d %s", w.Code, w.Body)
	}
	// Wrong content type.
	req = httptest.NewRequest("POST", "/api/v1/commands", strings.NewReader(`{"point":"pcs1.start","value":1}`))
	req.Header.Set("X-API-Key", adminKey)
	req.Header.Set("Content-Type", "text/plain")
	w = httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 415 {
		t.Fatalf("text/plain body: %d %s", w.Code, w.Body)
	}
}

// ticketRole marks the stream-ticket credential of TestAuthMatrix.
const ticketRole Role = -2

func TestAuthMatrix(t *testing.T) {
	gw := newFullSite(t).server(t, WithMetrics(prometheus.NewRegistry()))
	creds := []struct {
		name string
		set  func(*http.Request)
		role Role
	}{
		{"none", func(*http.Request) {}, 0},
		{"bad-key", func(r *http.Request) { r.Header.Set("X-API-Key", "not-a-key-0123456789") }, -1},
		{"bad-bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminKey) }, -1},
		{"basic", func(r *http.Request) { r.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=") }, -1},
		{"viewer", func(r *http.Request) { r.Header.Set("X-API-Key", viewerKey) }, RoleViewer},
		{"operator", func(r *http.Request) { r.Header.Set("X-API-Key", operatorKey) }, RoleOperator},
		{"admin", func(r *http.Request) { r.Header.Set("X-API-Key", adminKey) }, RoleAdmin},
		{"admin-bearer", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+adminToken) }, RoleAdmin},
		// An operator's stream ticket: the operator role on the stream
		// routes, no credentials anywhere else.
		{"ticket", func(r *http.Request) {
			r.URL.RawQuery = "ticket=" + url.QueryEscape(issueTicket(t, gw, operatorKey).Ticket)
		}, ticketRole},
	}
	if len(gw.routes) < 10 {
		t.Fatalf("only %d routes", len(gw.routes))
	}
	for _, rt := range gw.routes {
		target := strings.NewReplacer("{id}", "pcs1.start", "{name}", "x").Replace(rt.full)
		for _, c := range creds {
			t.Run(rt.Method+" "+rt.full+"/"+c.name, func(t *testing.T) {
				req := httptest.NewRequest(rt.Method, target, strings.NewReader("{}"))
				if strings.Contains(rt.full, "/stream") {
					// An allowed stream would run until the client leaves: leave at once.
					ctx, cancel := context.WithCancel(req.Context())
					cancel()
					req = req.WithContext(ctx)
				}
				req.Header.Set("Content-Type", "application/json")
				c.set(req)
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, req)
				var want int
				if c.role == ticketRole {
					c.role = 0
					if rt.tickets {
						c.role = RoleOperator
					}
				}
				switch {
				case rt.Role == RolePublic:
					want = 0 // anything but 401/403
				case c.role == 0 || c.role == -1:
					want = 401
				case c.role < rt.Role:
					want = 403
				}
				switch want {
				case 0:
					if w.Code == 401 || w.Code == 403 || w.Code >= 500 {
						t.Fatalf("allowed request: %d %s", w.Code, w.Body)
					}
				default:
					if w.Code != want {
						t.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
					}
					errBody(t, w)
				}
			})
		}
	}
}

func TestKeysNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, nil))
	gw := newTestServer(t, newSite(), WithLogger(log))
	call(t, gw, "GET", "/api/v1/points/pcs1.active_power", viewerKey, nil)
	call(t, gw, "GET", "/api/v1/points/pcs1.active_power", "wrong-secret-0123456789", nil)
	req := httptest.NewRequest("GET", "/api/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	gw.ServeHTTP(httptest.NewRecorder(), req)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, secret := range []string{viewerKey, "wrong-secret-0123456789", adminToken} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q in log:\n%s", secret, out)
		}
	}
	if strings.Count(out, `"msg":"http request"`) != 3 || !strings.Contains(out, `"client":"vic"`) || !strings.Contains(out, `"path":"/api/v1/points/pcs1.active_power","status":200`) {
		t.Fatalf("access log incomplete:\n%s", out)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		gw := newTestServer(t, newSite(), WithRateLimit(RateLimit{PerSecond: 1, Burst: 2}), WithMetrics(reg))
		get := func(key string) *httptest.ResponseRecorder {
			return call(t, gw, "GET", "/api/v1/points/pcs1.active_power", key, nil)
		}
		for i := range 2 {
			if w := get(viewerKey); w.Code != 200 {
				t.Fatalf("request %d: %d", i, w.Code)
			}
		}
		w := get(viewerKey)
		if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("third request: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
		}
		if errBody(t, w).Code != "rate_limited" {
			t.Fatal("code")
		}
		// Another client has its own bucket.
		if w := get(operatorKey); w.Code != 200 {
			t.Fatalf("other client: %d", w.Code)
		}
		time.Sleep(999 * time.Millisecond)
		if w := get(viewerKey); w.Code != 429 {
			t.Fatalf("before refill: %d", w.Code)
		}
		time.Sleep(time.Millisecond)
		if w := get(viewerKey); w.Code != 200 {
			t.Fatalf("after refill: %d", w.Code)
		}
		// Failed authentication is limited per IP.
		for range 2 {
			get("guess-000000000000000")
		}
		if w := get("guess-111111111111111"); w.Code != 429 {
			t.Fatalf("key guessing not limited: %d", w.Code)
		}
	})
}

func TestRateLimitMapBounded(t *testing.T) {
	l, err := newLimiters(RateLimit{PerSecond: 1, Burst: 1, MaxClients: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		l.allow(fmt.Sprint("ip:", i), time.Now())
	}
	if n := l.cache.Len(); n != 3 {
		t.Fatalf("%d limiters kept, want 3", n)
	}
}

// flaky is an executor that fails on demand: a fault no real part produces
// on cue.
type flaky struct {
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Execute(ctx context.Context, cmd model.Command) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errLinkDown
	}
	return nil
}

func TestBreakerTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &flaky{}
		ex.fail.Store(true)
		gw, err := New(append(authOpts(), WithExecutor(ex), WithBreaker(BreakerConfig{Failures: 3, Open: 10 * time.Second}))...)
		if err != nil {
			t.Fatal(err)
		}
		post := func() *httptest.ResponseRecorder {
			return call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.start","value":1}`)
		}
		for i := range 3 {
			if w := post(); w.Code != 500 || strings.Contains(w.Body.String(), "link") {
				t.Fatalf("failure %d: %d %s (internal errors must not leak details)", i, w.Code, w.Body)
			}
		}
		// Open: fail fast, backend not called.
		w := post()
		if w.Code != 503 || ex.calls.Load() != 3 {
			t.Fatalf("open breaker: %d after %d calls", w.Code, ex.calls.Load())
		}
		if e := errBody(t, w); e.Code != "unavailable" {
			t.Fatal(e)
		}
		rz := call(t, gw, "GET", "/readyz", "", nil)
		if rz.Code != 503 || !strings.Contains(rz.Body.String(), `"executor":["open"]`) {
			t.Fatalf("readyz with open breaker: %d %s", rz.Code, rz.Body)
		}
		// Half-open after the timeout; a failing probe reopens.
		time.Sleep(10*time.Second + time.Millisecond)
		if w := post(); w.Code != 500 || ex.calls.Load() != 4 {
			t.Fatalf("half-open probe: %d, calls %d", w.Code, ex.calls.Load())
		}
		if w := post(); w.Code != 503 {
			t.Fatalf("reopened: %d", w.Code)
		}
		// A successful probe closes it.
		time.Sleep(10*time.Second + time.Millisecond)
		ex.fail.Store(false)
		for i := range 3 {
			if w := post(); w.Code != 200 {
				t.Fatalf("closed again, request %d: %d %s", i, w.Code, w.Body)
			}
		}
		// Client errors do not trip the breaker.
		ex2 := newSite()
		gw2, _ := New(append(authOpts(), WithExecutor(ex2), WithBreaker(BreakerConfig{Failures: 1}))...)
		for range 3 {
			if w := call(t, gw2, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.start","value":5}`); w.Code != 422 {
				t.Fatalf("validation error: %d", w.Code)
			}
		}
	})
}

func TestRoundRobinWithBreakers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{}, &flaky{}
		a.fail.Store(true)
		gw, err := New(append(authOpts(), WithExecutor(a, b), WithBreaker(BreakerConfig{Failures: 2, Open: time.Minute}))...)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[int]int{}
		for range 10 {
			codes[call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.start","value":1}`).Code]++
		}
		// a fails twice (then its breaker opens), b serves the rest.
		if codes[500] != 2 || codes[200] != 8 || a.calls.Load() != 2 || b.calls.Load() != 8 {
			t.Fatalf("codes %v, calls a=%d b=%d", codes, a.calls.Load(), b.calls.Load())
		}
		b.fail.Store(true)
		for range 2 {
			call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.start","value":1}`)
		}
		if w := call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.start","value":1}`); w.Code != 503 {
			t.Fatalf("all open: %d", w.Code)
		}
	})
}

func TestCache(t *testing.T) {
	s := newSite()
	reg := prometheus.NewRegistry()
	gw := newTestServer(t, s, WithCache(CacheConfig{TTL: time.Hour}), WithMetrics(reg))
	get := func() *httptest.ResponseRecorder {
		return call(t, gw, "GET", "/api/v1/points/pcs1.power_setpoint", viewerKey, nil)
	}
	w1 := get()
	etag := w1.Header().Get("ETag")
	if w1.Code != 200 || etag == "" {
		t.Fatalf("%d etag %q", w1.Code, etag)
	}
	// A change outside the API is not seen until the TTL or an invalidation.
	s.snap.Update([]model.Sample{{Point: "pcs1.power_setpoint", Value: 7}})
	if w := get(); w.Body.String() != w1.Body.String() {
		t.Fatalf("not served from cache: %s", w.Body)
	}
	req := httptest.NewRequest("GET", "/api/v1/points/pcs1.power_setpoint", nil)
	req.Header.Set("X-API-Key", viewerKey)
	req.Header.Set("If-None-Match", etag)
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 304 || w.Body.Len() != 0 {
		t.Fatalf("If-None-Match: %d", w.Code)
	}
	// A write through the API invalidates what it changes.
	if w := call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":20}`); w.Code != 200 {
		t.Fatal(w.Body)
	}
	w2 := get()
	if !strings.Contains(w2.Body.String(), `"value":20`) || w2.Header().Get("ETag") == etag {
		t.Fatalf("after write: %s etag %s", w2.Body, w2.Header().Get("ETag"))
	}
	// A failed write invalidates nothing.
	s.snap.Update([]model.Sample{{Point: "pcs1.power_setpoint", Value: 9}})
	call(t, gw, "POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":1000}`)
	if w := get(); !strings.Contains(w.Body.String(), `"value":20`) {
		t.Fatalf("failed write invalidated: %s", w.Body)
	}
	gw.Invalidate(TagPoints)
	if w := get(); !strings.Contains(w.Body.String(), `"value":9`) {
		t.Fatalf("Invalidate: %s", w.Body)
	}
	// Errors are not cached.
	call(t, gw, "GET", "/api/v1/points/later.point", viewerKey, nil)
	s.snap.Update([]model.Sample{{Point: "later.point", Value: 1}})
	if w := call(t, gw, "GET", "/api/v1/points/later.point", viewerKey, nil); w.Code != 200 {
		t.Fatalf("404 was cached: %d", w.Code)
	}
	mf, _ := reg.Gather()
	var hits float64
	for _, f := range mf {
		if f.GetName() == "ems_gateway_cache_hits_total" {
			hits = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if hits < 3 {
		t.Fatalf("cache hits metric = %v", hits)
	}
}

func TestCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSite()
		gw := newTestServer(t, s, WithCache(CacheConfig{TTL: time.Second}))
		call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil)
		s.snap.Update([]model.Sample{{Point: "bms1.soc", Value: 50}})
		if w := call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil); !strings.Contains(w.Body.String(), `"value":87`) {
			t.Fatal("not cached")
		}
		time.Sleep(time.Second)
		if w := call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil); !strings.Contains(w.Body.String(), `"value":50`) {
			t.Fatalf("stale after TTL: %s", w.Body)
		}
	})
}

// slowPoints blocks Get until released, to observe miss coalescing.
type slowPoints struct {
	*model.Snapshot
	gets    atomic.Int64
	release chan struct{}
}

func (p *slowPoints) Get(id string) (model.Sample, bool) {
	p.gets.Add(1)
	<-p.release
	return p.Snapshot.Get(id)
}

func TestCacheSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := &slowPoints{Snapshot: newSite().snap, release: make(chan struct{})}
		gw, err := New(append(authOpts(), WithPoints(sp), WithCache(CacheConfig{TTL: time.Minute}))...)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Go(func() { codes[i] = call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil).Code })
		}
		synctest.Wait()
		close(sp.release)
		wg.Wait()
		if n := sp.gets.Load(); n != 1 {
			t.Fatalf("%d backend reads for 20 concurrent misses", n)
		}
		for _, c := range codes {
			if c != 200 {
				t.Fatal(codes)
			}
		}
	})
}

type panicky struct{}

func (panicky) Get(string) (model.Sample, bool) { panic("boom") }
func (panicky) Range(func(model.Sample) bool)   {}

func TestPanicRecovery(t *testing.T) {
	reg := prometheus.NewRegistry()
	gw, err := New(append(authOpts(), WithPoints(panicky{}), WithMetrics(reg))...)
	if err != nil {
		t.Fatal(err)
	}
	w := call(t, gw, "GET", "/api/v1/points/x", viewerKey, nil)
	if w.Code != 500 || errBody(t, w).Code != "internal" || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestCORS(t *testing.T) {
	gw := newTestServer(t, newSite(), WithCORS("https://scada.example.com"))
	req := httptest.NewRequest("OPTIONS", "/api/v1/commands", nil)
	req.Header.Set("Origin", "https://scada.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://scada.example.com" || !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "X-API-Key") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	req.Header.Set("Origin", "https://evil.example.com")
	w = httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", w.Code, w.Header())
	}
	req = httptest.NewRequest("GET", "/api/v1/points/bms1.soc", nil)
	req.Header.Set("Origin", "https://scada.example.com")
	req.Header.Set("X-API-Key", viewerKey)
	w = httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://scada.example.com" {
		t.Fatalf("simple request: %d %v", w.Code, w.Header())
	}
}

func TestVersioningAndDeprecation(t *testing.T) {
	dep := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sunset := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	v2 := Route{Method: "GET", Path: "/points/{id}", Role: RoleViewer, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"id": r.PathValue("id"), "api": "v2", "user": User(r.Context())})
	})}
	v2post := Route{Method: "POST", Path: "/notes", Role: RoleOperator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var note struct{ Text string }
		if err := DecodeJSON(r, &note); err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, 201, note)
	})}
	old := Route{Method: "GET", Path: "/legacy", Role: RoleViewer, Deprecated: dep, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, "old")
	})}
	gw := newTestServer(t, newSite(), WithAPI("v2", v2, old, v2post), WithDeprecation("v1", dep, sunset, "/api/v2"))
	w := call(t, gw, "GET", "/api/v2/points/bms1.soc", viewerKey, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"api":"v2"`) || !strings.Contains(w.Body.String(), `"user":"vic"`) || w.Header().Get("Deprecation") != "" {
		t.Fatalf("v2: %d %s %v", w.Code, w.Body, w.Header())
	}
	w = call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil)
	if w.Code != 200 || w.Header().Get("Deprecation") != fmt.Sprintf("@%d", dep.Unix()) ||
		w.Header().Get("Sunset") != "Fri, 01 Jan 2027 00:00:00 GMT" || w.Header().Get("Link") != `</api/v2>; rel="successor-version"` {
		t.Fatalf("v1 deprecated: %v", w.Header())
	}
	w = call(t, gw, "GET", "/api/v2/legacy", viewerKey, nil)
	if w.Header().Get("Deprecation") == "" || w.Header().Get("Sunset") != "" {
		t.Fatalf("deprecated route: %v", w.Header())
	}
	expect(t, call(t, gw, "POST", "/api/v2/notes", operatorKey, `{"Text":"hi","x":1}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v2/notes", operatorKey, `{"Text":"hi"}`), 201, "")
	expect(t, call(t, gw, "POST", "/api/v2/notes", viewerKey, `{"Text":"hi"}`), 403, "forbidden")
	// v2 routes take part in auth.
	if w := call(t, gw, "GET", "/api/v2/points/bms1.soc", "", nil); w.Code != 401 {
		t.Fatalf("v2 without key: %d", w.Code)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	bad := map[string][]Option{
		"no auth":        {WithPoints(newSite().snap)},
		"short key":      {WithAPIKey("a", "short", RoleViewer)},
		"no name":        {WithAPIKey("", viewerKey, RoleViewer)},
		"bad role":       {WithAPIKey("a", viewerKey, RolePublic)},
		"dup secret":     {WithAPIKey("a", viewerKey, RoleViewer), WithAPIKey("b", viewerKey, RoleAdmin)},
		"nil points":     {WithAnonymous(RoleViewer), WithPoints(nil)},
		"negative rate":  {WithAnonymous(RoleViewer), WithRateLimit(RateLimit{PerSecond: -1})},
		"negative cache": {WithAnonymous(RoleViewer), WithCache(CacheConfig{TTL: -1})},
		"bad origin":     {WithAnonymous(RoleViewer), WithCORS("scada.example.com")},
		"zero body":      {WithAnonymous(RoleViewer), WithBodyLimit(0)},
		"neg timeout":    {WithAnonymous(RoleViewer), WithTimeouts(Timeouts{Read: -1})},
		"neg breaker":    {WithAnonymous(RoleViewer), WithBreaker(BreakerConfig{Open: -1})},
		"bad version":    {WithAnonymous(RoleViewer), WithAPI("2", Route{Method: "GET", Path: "/x", Role: RoleViewer, Handler: h})},
		"dup version":    {WithAnonymous(RoleViewer), WithAPI("v1", Route{Method: "GET", Path: "/x", Role: RoleViewer, Handler: h})},
		"no role":        {WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "GET", Path: "/x", Handler: h})},
		"bad method":     {WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "FETCH", Path: "/x", Role: RoleViewer, Handler: h})},
		"dup route":      {WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "GET", Path: "/x", Role: RoleViewer, Handler: h}, Route{Method: "GET", Path: "/x", Role: RoleViewer, Handler: h})},
		"cache POST":     {WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "POST", Path: "/x", Role: RoleViewer, Handler: h, CacheTag: "x"})},
		"bad pattern":    {WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "GET", Path: "/{x", Role: RoleViewer, Handler: h})},
		"sunset early":   {WithAnonymous(RoleViewer), WithDeprecation("v1", time.Unix(100, 0), time.Unix(50, 0), "")},
		"dup component":  {WithAnonymous(RoleViewer), WithComponent("a", HealthFunc(nil)), WithComponent("a", HealthFunc(nil))},
	}
	for name, opts := range bad {
		if _, err := New(opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := New(WithAnonymous(RoleViewer)); err != nil {
		t.Fatal(err)
	}
	// A failed New leaves the registry untouched; a second gateway on the
	// same registry is refused.
	reg := prometheus.NewRegistry()
	if _, err := New(WithMetrics(reg), WithAnonymous(RoleViewer), WithAPI("v2", Route{Method: "GET", Path: "/{x", Role: RoleViewer, Handler: h})); err == nil {
		t.Fatal("bad route accepted")
	}
	if _, err := New(WithMetrics(reg), WithAnonymous(RoleViewer)); err != nil {
		t.Fatalf("registry polluted by the failed New: %v", err)
	}
	if _, err := New(WithMetrics(reg), WithAnonymous(RoleViewer)); err == nil {
		t.Fatal("duplicate registration accepted")
	}
	// A later backend option replaces an earlier one.
	a, b := &flaky{}, &flaky{}
	gw, err := New(WithAnonymous(RoleOperator), WithExecutor(a), WithExecutor(b))
	if err != nil {
		t.Fatal(err)
	}
	call(t, gw, "POST", "/api/v1/commands", "", `{"point":"p.x","value":1}`)
	call(t, gw, "POST", "/api/v1/commands", "", `{"point":"p.x","value":1}`)
	if a.calls.Load() != 0 || b.calls.Load() != 2 {
		t.Fatalf("calls a=%d b=%d", a.calls.Load(), b.calls.Load())
	}
}

func TestNotConfiguredBackends(t *testing.T) {
	gw, err := New(WithAnonymous(RoleAdmin))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/api/v1/points/x", "/api/v1/snapshot", "/api/v1/stream", "/metrics"} {
		if w := call(t, gw, "GET", target, "", nil); w.Code != 501 || errBody(t, w).Code != "not_configured" {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var broken atomic.Bool
	gw := newTestServer(t, newSite(), WithMetrics(reg),
		WithComponent("collector", HealthFunc(func(context.Context) error {
			if broken.Load() {
				return errors.New("modbus link down")
			}
			return nil
		})))
	if w := call(t, gw, "GET", "/healthz", "", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"ok"`) {
		t.Fatal(w.Code, w.Body)
	}
	if w := call(t, gw, "GET", "/readyz", "", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"ready"`) {
		t.Fatal(w.Code, w.Body)
	}
	broken.Store(true)
	w := call(t, gw, "GET", "/readyz", "", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"error":"modbus link down"`) {
		t.Fatal(w.Code, w.Body)
	}
	call(t, gw, "GET", "/api/v1/points/bms1.soc", viewerKey, nil)
	w = call(t, gw, "GET", "/metrics", viewerKey, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `ems_gateway_requests_total{code="200",route="GET /api/v1/points/{id}"} 1`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	gw := newTestServer(t, newSite())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln := listen(t)
	go func() { done <- gw.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := gw.Run(context.Background(), "256.0.0.1:0"); err == nil {
		t.Fatal("Run on a bad address succeeded")
	}
}

func TestMethodNotAllowedHeadAndMounting(t *testing.T) {
	gw := newTestServer(t, newSite(), WithCache(CacheConfig{TTL: time.Minute}))
	w := call(t, gw, "PUT", "/api/v1/points/bms1.soc", adminKey, nil)
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" || errBody(t, w).Code != "method_not_allowed" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	for range 2 { // miss, then hit
		w = call(t, gw, "HEAD", "/api/v1/points/bms1.soc", viewerKey, nil)
		if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("ETag") == "" {
			t.Fatalf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
		}
	}
	// Mounted under a prefix of a vendor's mux.
	mux := http.NewServeMux()
	mux.Handle("/ems/", http.StripPrefix("/ems", gw))
	w = call(t, mux, "GET", "/ems/api/v1/points/bms1.soc", viewerKey, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"point":"bms1.soc"`) {
		t.Fatalf("mounted: %d %s", w.Code, w.Body)
	}
	// A sane incoming request ID is kept, a hostile one replaced.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "abc-123")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Header().Get("X-Request-ID") != "abc-123" {
		t.Fatal(rec.Header())
	}
	req.Header.Set("X-Request-ID", "<script>\n")
	rec = httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if id := rec.Header().Get("X-Request-ID"); id == "" || strings.ContainsAny(id, "<>\n") {
		t.Fatalf("request id %q", id)
	}
}
