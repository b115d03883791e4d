package gateway

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/voltage-ems/ems/model"
)

//go:embed openapi.json
var openAPIDoc []byte

//go:embed docs.html
var docsPage []byte

// Cache tags of the built-in routes.
const (
	TagPoints = "points"
)

// v1Routes is the route table of /api/v1. Routes outside the version
// prefix (health, metrics) use the "/_root" marker.
func (s *Server) v1Routes() []Route {
	hf := func(f func(http.ResponseWriter, *http.Request)) http.Handler { return http.HandlerFunc(f) }
	rs := []Route{
		{Method: "GET", Path: "/points", Role: RoleViewer, Handler: hf(s.listPoints), CacheTag: TagPoints},
		{Method: "GET", Path: "/points/{id}", Role: RoleViewer, Handler: hf(s.getPoint), CacheTag: TagPoints},
		{Method: "GET", Path: "/snapshot", Role: RoleViewer, Handler: hf(s.snapshot), CacheTag: TagPoints},
		{Method: "POST", Path: "/commands", Role: RoleOperator, Handler: hf(s.command), Invalidates: []string{TagPoints}},
		{Method: "GET", Path: "/stream", Role: RoleViewer, Handler: hf(s.streamSSE)},
		{Method: "GET", Path: "/stream/ws", Role: RoleViewer, Handler: hf(s.streamWS)},
		{Method: "POST", Path: "/stream/tickets", Role: RoleViewer, Handler: hf(s.createTicket)},
		{Method: "GET", Path: "/openapi.json", Role: RolePublic, Handler: hf(serveStatic("application/json", openAPIDoc))},
		{Method: "GET", Path: "/docs", Role: RolePublic, Handler: hf(serveStatic("text/html; charset=utf-8", docsPage))},
		{Method: "GET", Path: "/_root/healthz", Role: RolePublic, Handler: hf(s.healthz)},
		{Method: "GET", Path: "/_root/readyz", Role: RolePublic, Handler: hf(s.readyz)},
		{Method: "GET", Path: "/_root/metrics", Role: RoleViewer, Handler: hf(s.serveMetrics)},
	}
	return append(rs, s.extRoutes()...)
}

func serveStatic(ctype string, body []byte) func(http.ResponseWriter, *http.Request) {
	etag := etagOf(body)
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := queryParams(r); err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", etag)
		if ctype[:9] == "text/html" {
			h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		}
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}

type pointList struct {
	Count     int          `json:"count"`
	Truncated bool         `json:"truncated"`
	Points    []sampleJSON `json:"points"`
}

// listPoints: GET /points?pattern=&quality=&limit=
func (s *Server) listPoints(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "pattern", "quality", "limit")
	if err != nil {
		writeError(w, err)
		return
	}
	pattern := q["pattern"]
	if !model.ValidPattern(pattern) {
		writeError(w, badRequest("pattern %q is not a valid glob", pattern))
		return
	}
	var status model.Status
	wantStatus := false
	if v, ok := q["quality"]; ok {
		wantStatus = true
		switch v {
		case "good":
			status = model.StatusGood
		case "uncertain":
			status = model.StatusUncertain
		case "bad":
			status = model.StatusBad
		default:
			writeError(w, badRequest("quality %q must be good, uncertain or bad", v))
			return
		}
	}
	limit, err := intParam(q, "limit", 1000, 1, 100000)
	if err != nil {
		writeError(w, err)
		return
	}
	var out []model.Sample
	err = s.points.do(func(p Points) error {
		out = out[:0]
		p.Range(func(smp model.Sample) bool {
			if model.MatchPoint(pattern, smp.Point) && (!wantStatus || smp.Quality.Status() == status) {
				out = append(out, smp)
			}
			return true
		})
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	slices.SortFunc(out, func(a, b model.Sample) int {
		if a.Point < b.Point {
			return -1
		}
		if a.Point > b.Point {
			return 1
		}
		return 0
	})
	res := pointList{Count: len(out), Points: make([]sampleJSON, 0, min(len(out), limit))}
	if len(out) > limit {
		out, res.Truncated = out[:limit], true
	}
	for _, smp := range out {
		res.Points = append(res.Points, toSampleJSON(smp))
	}
	writeJSON(w, http.StatusOK, res)
}

func intParam(q map[string]string, name string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s %q must be an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// getPoint: GET /points/{id}
func (s *Server) getPoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("point id", id); err != nil {
		writeError(w, err)
		return
	}
	if _, err := queryParams(r); err != nil {
		writeError(w, err)
		return
	}
	var smp model.Sample
	var found bool
	if err := s.points.do(func(p Points) error { smp, found = p.Get(id); return nil }); err != nil {
		writeError(w, err)
		return
	}
	if !found {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "unknown_point", Msg: fmt.Sprintf("point %q has no value (unknown point)", id), Err: model.ErrUnknownPoint})
		return
	}
	writeJSON(w, http.StatusOK, toSampleJSON(smp))
}

type snapshotJSON struct {
	Time    time.Time             `json:"time"`
	Samples map[string]sampleJSON `json:"samples"`
}

// snapshot: GET /snapshot (every point's latest value, keyed by id)
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		writeError(w, err)
		return
	}
	res := snapshotJSON{Time: time.Now().UTC(), Samples: map[string]sampleJSON{}}
	if err := s.points.do(func(p Points) error {
		clear(res.Samples)
		p.Range(func(smp model.Sample) bool {
			sj := toSampleJSON(smp)
			sj.Point = ""
			res.Samples[smp.Point] = sj
			return true
		})
		return nil
	}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type commandRequest struct {
	ID    string   `json:"id"`
	Point string   `json:"point"`
	Value *float64 `json:"value"`
}

type commandResult struct {
	ID     string    `json:"id"`
	Point  string    `json:"point"`
	Value  float64   `json:"value"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Status string    `json:"status"`
}

// command: POST /commands {"point": "...", "value": 1, "id": "optional"}
func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		writeError(w, err)
		return
	}
	var req commandRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := checkID("point", req.Point); err != nil {
		writeError(w, err)
		return
	}
	if req.Value == nil {
		writeError(w, badRequest("field \"value\" is required"))
		return
	}
	if math.IsNaN(*req.Value) || math.IsInf(*req.Value, 0) {
		writeError(w, badRequest("field \"value\" must be finite"))
		return
	}
	if req.ID != "" {
		if err := checkID("command id", req.ID); err != nil {
			writeError(w, err)
			return
		}
	} else {
		req.ID = s.idPrefix + "cmd-" + strconv.FormatUint(s.idSeq.Add(1), 10)
	}
	p := principalOf(r.Context())
	cmd := model.Command{ID: req.ID, Point: req.Point, Value: *req.Value, Source: "api:" + p.name, Time: time.Now().UTC()}
	ctx, cancel := s.callCtx(r.Context())
	defer cancel()
	if err := s.executor.do(func(e Executor) error { return e.Execute(ctx, cmd) }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, commandResult{ID: cmd.ID, Point: cmd.Point, Value: cmd.Value, Source: cmd.Source, Time: cmd.Time, Status: "executed"})
}

// healthz: liveness, always 200 while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type componentStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

type readiness struct {
	Status     string              `json:"status"`
	Components []componentStatus   `json:"components"`
	Breakers   map[string][]string `json:"breakers"`
}

// readyz: every component's Health, plus the breakers of each backend.
// Not ready (503) when a component fails or every instance of a backend
// has its breaker open.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res := readiness{Status: "ready", Components: []componentStatus{}, Breakers: s.breakerStates()}
	for _, c := range s.cfg.checks {
		cs := componentStatus{Name: c.name, Status: "ok"}
		if err := c.c.Health(ctx); err != nil {
			cs.Status, cs.Error = "error", err.Error()
			res.Status = "not_ready"
		}
		res.Components = append(res.Components, cs)
	}
	for name, st := range res.Breakers {
		if len(st) > 0 && !slices.ContainsFunc(st, func(x string) bool { return x != "open" }) {
			res.Status = "not_ready"
			res.Components = append(res.Components, componentStatus{Name: name, Status: "error", Error: "every circuit breaker is open"})
		}
	}
	code := http.StatusOK
	if res.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

func (s *Server) breakerStates() map[string][]string {
	m := map[string][]string{}
	if s.points != nil {
		m["points"] = s.points.states()
	}
	if s.executor != nil {
		m["executor"] = s.executor.states()
	}
	s.ext.breakerStates(m)
	return m
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.gatherer == nil {
		writeError(w, fmt.Errorf("%w: metrics (use WithMetrics with a *prometheus.Registry)", ErrNotConfigured))
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}
