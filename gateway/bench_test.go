package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAPI measures GET /api/v1/points/{id} over loopback with
// parallel keep-alive clients. "bare" is a plain handler writing the same
// JSON; "full" is the gateway with every middleware on: request ID, access
// log (JSON to io.Discard), recovery, CORS, API-key auth, rate limiting,
// response cache, circuit breaker and metrics.
func BenchmarkAPI(b *testing.B) {
	bareMux, full := benchHandlers(b)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bareMux}, {"full", full}} {
		b.Run(c.name, func(b *testing.B) { benchHandler(b, c.h, benchPath, c.name == "full") })
	}
}

const benchPath = "/api/v1/points/pcs1.active_power"

// benchHandlers returns the bare handler and the full gateway.
func benchHandlers(b *testing.B) (bareMux *http.ServeMux, full *Server) {
	s := newSite()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		smp, ok := s.snap.Get(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		body, _ := json.Marshal(toSampleJSON(smp))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(body, '\n'))
	})
	bareMux = http.NewServeMux()
	bareMux.Handle("GET /api/v1/points/{id}", bare)

	full, err := New(append(authOpts(),
		WithPoints(s.snap), WithExecutor(s),
		WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))),
		WithMetrics(prometheus.NewRegistry()),
		WithRateLimit(RateLimit{PerSecond: 1e7, Burst: 1e6}),
		WithCache(CacheConfig{TTL: time.Second}),
		WithCORS("https://scada.example.com"),
	)...)
	if err != nil {
		b.Fatal(err)
	}
	return bareMux, full
}

func benchHandler(b *testing.B, h http.Handler, path string, reportP99 bool) {
	ln := listen(b)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + path
	get := func() (int, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-API-Key", viewerKey)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); err != nil || code != 200 { // warm up and check
		b.Fatalf("status %d, %v", code, err)
	}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(1)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			code, err := get()
			lat = append(lat, time.Since(t0))
			if err != nil || code != 200 {
				b.Errorf("status %d, %v", code, err)
				return
			}
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	if reportP99 && len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
	}
}

// BenchmarkAPIInterleaved compares bare and full under the same machine
// load: each op is one round of 256 requests (4 parallel keep-alive
// clients) to each server, alternating which goes first, so load that
// drifts during the run hits both alike. It reports both rates, their
// ratio and the full gateway's p99.
func BenchmarkAPIInterleaved(b *testing.B) {
	bareMux, full := benchHandlers(b)
	type target struct {
		url     string
		client  *http.Client
		elapsed time.Duration
		n       int
		lat     []time.Duration
	}
	mk := func(h http.Handler) *target {
		ln := listen(b)
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Shutdown(context.Background()) })
		tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
		b.Cleanup(tr.CloseIdleConnections)
		return &target{url: "http://" + ln.Addr().String() + benchPath, client: &http.Client{Transport: tr}}
	}
	bare, gw := mk(bareMux), mk(full)
	const clients, perClient = 4, 64
	phase := func(t *target) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := time.Now()
		for range clients {
			wg.Go(func() {
				lat := make([]time.Duration, 0, perClient)
				for range perClient {
					t0 := time.Now()
					req, _ := http.NewRequest("GET", t.url, nil)
					req.Header.Set("X-API-Key", viewerKey)
					resp, err := t.client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					lat = append(lat, time.Since(t0))
				}
				mu.Lock()
				t.lat = append(t.lat, lat...)
				mu.Unlock()
			})
		}
		wg.Wait()
		t.elapsed += time.Since(start)
		t.n += clients * perClient
	}
	phase(bare) // warm up connections
	phase(gw)
	bare.elapsed, bare.n, gw.elapsed, gw.n, gw.lat = 0, 0, 0, 0, gw.lat[:0]
	round := 0
	for b.Loop() {
		if round%2 == 0 {
			phase(bare)
			phase(gw)
		} else {
			phase(gw)
			phase(bare)
		}
		round++
	}
	bareRate := float64(bare.n) / bare.elapsed.Seconds()
	fullRate := float64(gw.n) / gw.elapsed.Seconds()
	b.ReportMetric(bareRate, "bare-req/s")
	b.ReportMetric(fullRate, "full-req/s")
	b.ReportMetric(fullRate/bareRate, "full/bare")
	if len(gw.lat) > 0 {
		slices.Sort(gw.lat)
		b.ReportMetric(float64(gw.lat[len(gw.lat)*99/100].Nanoseconds()), "p99-ns")
	}
}
