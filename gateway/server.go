package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/model"
)

// Route is one operation of a versioned API. Paths are relative to the
// version prefix ("/points/{id}" under "/api/v1") and use net/http
// wildcards.
type Route struct {
	Method  string       // GET, POST, PUT, PATCH or DELETE
	Path    string       // relative path with {wildcards}
	Role    Role         // least role allowed; RolePublic for no credentials
	Handler http.Handler // the operation

	// CacheTag, on GET routes, caches responses under this tag (when the
	// cache is enabled). Invalidates lists the tags a successful (status
	// < 400) request of this route invalidates.
	CacheTag    string
	Invalidates []string

	// Deprecated, when set, adds "Deprecation: @unix" (RFC 9745) to every
	// response of the route, Sunset adds "Sunset: HTTP-date" (RFC 8594).
	Deprecated time.Time
	Sunset     time.Time
}

// Server is the HTTP gateway. It implements http.Handler, so a vendor can
// mount it in their own mux; Run and Serve run it on its own http.Server.
type Server struct {
	cfg      config
	log      *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	// metricsHandler serves /metrics from gatherer.
	metricsHandler http.Handler
	limits         *limiters
	cache          *respCache
	handler        http.Handler
	routes         []mounted

	tickets  *ticketStore
	points   *pool[Points]
	executor *pool[Executor]
	ext      extBackends

	idPrefix string
	idSeq    atomic.Uint64
}

// mounted is a registered route with its full pattern.
type mounted struct {
	Route
	version string
	full    string // "/api/v1/points/{id}"
	// tickets: a stream ticket (?ticket=) is accepted in place of
	// credential headers (the built-in stream routes only).
	tickets bool
}

const (
	defaultBodyLimit = 1 << 20
	apiPrefix        = "/api/"
)

// New builds a gateway from options. It fails when an option is invalid,
// when two routes collide, or when no credential is configured and
// WithAnonymous is not given.
func New(opts ...Option) (*Server, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if len(c.creds) == 0 && c.anonymous == 0 {
		return nil, fmt.Errorf("%w: no API key or bearer token configured; add one or allow WithAnonymous explicitly", ErrInvalidOption)
	}
	if c.bodyLimit == 0 {
		c.bodyLimit = defaultBodyLimit
	}
	c.breaker = c.breaker.withDefaults()
	if c.stream.Buffer == 0 {
		c.stream.Buffer = 256
	}
	if c.stream.Heartbeat == 0 {
		c.stream.Heartbeat = 15 * time.Second
	}
	s := &Server{cfg: c, log: c.logger, tickets: newTicketStore(c.ticketTTL, c.maxTickets)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.metrics, err = newMetrics(c.reg); err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	if g, ok := c.reg.(prometheus.Gatherer); ok {
		s.gatherer = g
		s.metricsHandler = promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
	}
	if s.limits, err = newLimiters(c.rate); err != nil {
		return nil, fmt.Errorf("%w: rate limit: %v", ErrInvalidOption, err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.idPrefix = hex.EncodeToString(b[:]) + "-"

	bv := s.metrics.breakerVec()
	if len(c.points) > 0 {
		s.points = newPool("points", c.breaker, bv, c.points)
	}
	if len(c.executors) > 0 {
		s.executor = newPool("executor", c.breaker, bv, c.executors)
	}
	s.ext = newExtBackends(&c, bv)

	apis := append([]api{{version: "v1", routes: s.v1Routes(), builtin: true}}, c.apis...)
	var tags []string
	for _, a := range apis {
		for _, rt := range a.routes {
			if rt.CacheTag != "" {
				tags = append(tags, rt.CacheTag)
			}
			tags = append(tags, rt.Invalidates...)
		}
	}
	if s.cache, err = newRespCache(c.cache, tags); err != nil {
		return nil, fmt.Errorf("%w: cache: %v", ErrInvalidOption, err)
	}
	mux := http.NewServeMux()
	if err := s.register(mux, apis); err != nil {
		return nil, err
	}
	s.handler = s.entry(s.recoverer(s.cors(mux)))
	if err := s.metrics.register(c.reg); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Invalidate drops cached responses of the given tags ("points", "alarms",
// "alarm-definitions", "rules", "history"); the EMS calls it when state
// changes outside the API.
func (s *Server) Invalidate(tags ...string) { s.cache.invalidate(tags...) }

// InvalidateEvent drops the cached responses an event makes stale: alarm
// events invalidate alarms (and alarm.definition events the definitions),
// rule events rules, command events points. The EMS calls it for every
// event of its data path so cached alarm lists follow the engine at once.
func (s *Server) InvalidateEvent(e model.Event) {
	if s.cache == nil {
		return
	}
	switch e.Kind.Family() {
	case "alarm":
		if e.Kind == alarm.EventAlarmDefinition {
			s.cache.invalidate(TagAlarmDefinitions)
		}
		s.cache.invalidate(TagAlarms)
	case "rule":
		s.cache.invalidate(TagRules)
	case "command":
		s.cache.invalidate(TagPoints)
	}
}

// Routes returns "METHOD /full/pattern" for every route, sorted.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for _, m := range s.routes {
		out = append(out, m.Method+" "+m.full)
	}
	slices.Sort(out)
	return out
}

var validMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func (s *Server) register(mux *http.ServeMux, apis []api) error {
	seen := map[string]bool{}
	byPath := map[string][]string{}
	for _, a := range apis {
		if seen["version "+a.version] {
			return fmt.Errorf("%w: API version %s mounted twice", ErrInvalidOption, a.version)
		}
		seen["version "+a.version] = true
		dep, isDep := s.cfg.deprec[a.version]
		for _, rt := range a.routes {
			if !slices.Contains(validMethods, rt.Method) || rt.Handler == nil || !strings.HasPrefix(rt.Path, "/") {
				return fmt.Errorf("%w: route %s %s in %s needs a method, a handler and a path starting with /", ErrInvalidOption, rt.Method, rt.Path, a.version)
			}
			if rt.Role < RolePublic || rt.Role > RoleAdmin {
				return fmt.Errorf("%w: route %s %s in %s has no valid role", ErrInvalidOption, rt.Method, rt.Path, a.version)
			}
			if rt.CacheTag != "" && rt.Method != http.MethodGet {
				return fmt.Errorf("%w: route %s %s: only GET routes can be cached", ErrInvalidOption, rt.Method, rt.Path)
			}
			if isDep && rt.Deprecated.IsZero() {
				rt.Deprecated, rt.Sunset = dep.at, dep.sunset
			}
			full := apiPrefix + a.version + rt.Path
			if strings.HasPrefix(rt.Path, "/_root/") { // health, metrics: outside the version prefix
				full = strings.TrimPrefix(rt.Path, "/_root")
			}
			key := rt.Method + " " + full
			if seen[key] {
				return fmt.Errorf("%w: route %s registered twice", ErrInvalidOption, key)
			}
			seen[key] = true
			m := mounted{Route: rt, version: a.version, full: full, tickets: a.builtin && ticketRoutes[rt.Method+" "+rt.Path]}
			s.routes = append(s.routes, m)
			var link string
			if isDep && dep.successor != "" {
				link = "<" + dep.successor + ">; rel=\"successor-version\""
			}
			if err := registerSafe(mux, key, s.routeHandler(m, link)); err != nil {
				return err
			}
			byPath[full] = append(byPath[full], rt.Method)
		}
	}
	for p, methods := range byPath {
		allow := strings.Join(append(methods, methodsImplied(methods)...), ", ")
		if err := registerSafe(mux, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeErrorStatus(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		})); err != nil {
			return err
		}
	}
	return registerSafe(mux, "/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErrorStatus(w, http.StatusNotFound, "not_found", "no route for "+strconv.Quote(r.URL.Path))
	}))
}

func methodsImplied(ms []string) []string {
	if slices.Contains(ms, http.MethodGet) {
		return []string{http.MethodHead}
	}
	return nil
}

// registerSafe turns ServeMux's registration panics (conflicting
// patterns) into errors.
func registerSafe(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: route %q: %v", ErrInvalidOption, pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// routeHandler builds the per-route chain: deprecation headers, auth and
// rate limit, body limit, metrics, cache or invalidation, handler.
func (s *Server) routeHandler(m mounted, link string) http.Handler {
	h := m.Handler
	if len(m.Invalidates) > 0 && s.cache != nil {
		h = s.invalidating(h, m.Invalidates)
	}
	if m.CacheTag != "" && s.cache != nil {
		next, tag := h, m.CacheTag
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.cache.serve(w, r, tag, next, s.metrics) })
	}
	if m.Method != http.MethodGet {
		next, limit := h, s.cfg.bodyLimit
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				writeErrorStatus(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
	h = s.authorize(h, m.Role, m.tickets)
	var depVal, sunVal string
	if !m.Deprecated.IsZero() {
		depVal = "@" + strconv.FormatInt(m.Deprecated.Unix(), 10)
	}
	if !m.Sunset.IsZero() {
		sunVal = m.Sunset.UTC().Format(http.TimeFormat)
	}
	if depVal != "" || sunVal != "" || link != "" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			if depVal != "" {
				hd.Set("Deprecation", depVal)
			}
			if sunVal != "" {
				hd.Set("Sunset", sunVal)
			}
			if link != "" {
				hd.Add("Link", link)
			}
			next.ServeHTTP(w, r)
		})
	}
	if s.metrics != nil {
		next := h
		route := m.Method + " " + m.full
		obs := s.metrics.duration.WithLabelValues(route)
		ok200 := s.metrics.requests.WithLabelValues(route, "200")
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := stateOf(r.Context())
			next.ServeHTTP(w, r)
			if st == nil {
				return
			}
			obs.Observe(time.Since(st.start).Seconds())
			if c := st.code(); c == http.StatusOK {
				ok200.Inc()
			} else {
				s.metrics.requests.WithLabelValues(route, strconv.Itoa(c)).Inc()
			}
		})
	}
	return h
}

// authorize authenticates, rate-limits and checks the role. Clients are
// rate-limited before their role is checked, and failed authentication
// counts against the remote IP, so guessing keys is throttled too.
func (s *Server) authorize(next http.Handler, need Role, tickets bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, bad := s.authenticate(r, tickets)
		st := stateOf(r.Context())
		if st != nil {
			st.principal = p
		}
		if s.limits != nil {
			if ok, d := s.limits.allow(p.key, time.Now()); !ok {
				s.metrics.rateLimited()
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter(d)))
				writeErrorStatus(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("rate limit exceeded; retry in %d s", retryAfter(d)))
				return
			}
		}
		if need != RolePublic {
			if bad || p.role == 0 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ems"`)
				msg := "missing credentials: send X-API-Key or Authorization: Bearer"
				switch {
				case bad && p.ticket:
					msg = "invalid stream ticket: unknown, expired or already used"
				case bad:
					msg = "invalid credentials"
				case tickets:
					msg += ", or a stream ticket as ?ticket="
				default:
					if _, present := ticketOf(r); present {
						msg += " (stream tickets are accepted only by GET /api/v1/stream and /api/v1/stream/ws)"
					}
				}
				writeErrorStatus(w, http.StatusUnauthorized, "unauthorized", msg)
				return
			}
			if p.role < need {
				writeErrorStatus(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not do this; %s required", p.role, need))
				return
			}
		}
		if st == nil { // not entered through ServeHTTP (cannot happen via the mux)
			r = r.WithContext(context.WithValue(r.Context(), stateKey{}, &reqState{principal: p, start: time.Now()}))
		}
		next.ServeHTTP(w, r)
	})
}

func principalOf(ctx context.Context) principal {
	if st := stateOf(ctx); st != nil {
		return st.principal
	}
	return principal{}
}

// invalidating bumps the cache tags after a successful write.
func (s *Server) invalidating(next http.Handler, tags []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if st := stateOf(r.Context()); st == nil || st.code() < 400 {
			s.cache.invalidate(tags...)
		}
	})
}

// reqState is the per-request state shared by the middleware: one
// allocation and one context value per request. It is the ResponseWriter
// passed down, recording the status; it unwraps for
// http.ResponseController (flush, deadlines, hijack).
type reqState struct {
	http.ResponseWriter
	status    int
	id        string
	start     time.Time
	principal principal
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

func (w *reqState) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *reqState) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *reqState) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *reqState) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// entry sets up the request state: the request ID (a sane incoming
// X-Request-ID is kept, else one is made) and, when the request is done,
// one access-log line: method, path (never the query or any header, so
// keys cannot leak), status, duration, client name, remote IP, request ID.
// Seven attributes on purpose: the line costs about 150 ns per attribute
// with slog's JSON handler, the largest cost of the middleware chain.
func (s *Server) entry(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{ResponseWriter: w, start: time.Now()}
		// Canonical header keys are used directly: this runs on every request.
		if v := r.Header["X-Request-Id"]; len(v) > 0 && saneRequestID(v[0]) {
			st.id = v[0]
		} else {
			st.id = s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 10)
		}
		w.Header()["X-Request-Id"] = []string{st.id}
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		next.ServeHTTP(st, r)
		if !s.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", st.code()),
			slog.Duration("duration", time.Since(st.start)),
			slog.String("client", st.principal.name),
			slog.String("remote", clientIP(r)),
			slog.String("request_id", st.id),
		)
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// recoverer turns a handler panic into a JSON 500 (when nothing was
// written yet) and a log line with the request ID.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.metrics.panicked()
			var id string
			st := stateOf(r.Context())
			if st != nil {
				id = st.id
			}
			s.log.Error("handler panic", "panic", fmt.Sprint(v), "path", r.URL.Path, "request_id", id)
			if st != nil && st.status != 0 {
				return // headers are out; the client sees a truncated body
			}
			writeErrorStatus(w, http.StatusInternalServerError, "internal", "internal error (request "+id+")")
		}()
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and adds CORS headers for allowed origins.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.origins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(s.cfg.origins, "*")
	allowed := map[string]bool{}
	for _, o := range s.cfg.origins {
		allowed[strings.ToLower(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var origin string
		if v := r.Header["Origin"]; len(v) > 0 {
			origin = v[0]
		}
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		ok := anyOrigin || allowed[strings.ToLower(origin)]
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !ok {
			if preflight {
				writeErrorStatus(w, http.StatusForbidden, "cors_origin", "origin "+strconv.Quote(origin)+" is not allowed")
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser blocks the response
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "ETag, X-Request-ID, Retry-After, Deprecation, Sunset, Link")
		if preflight {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, X-API-Key, Content-Type, If-None-Match, X-Request-ID, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type stopKey struct{}

// Serve serves the gateway on ln until ctx is cancelled, then shuts down
// gracefully (live streams are told to end) within the shutdown timeout.
// It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	t := s.cfg.timeouts
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	stop := make(chan struct{})
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: def(t.ReadHeader, 5*time.Second),
		ReadTimeout:       def(t.Read, 30*time.Second),
		WriteTimeout:      def(t.Write, 30*time.Second),
		IdleTimeout:       def(t.Idle, 120*time.Second),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), stopKey{}, (<-chan struct{})(stop))
		},
	}
	srv.RegisterOnShutdown(func() { close(stop) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), def(t.Shutdown, 10*time.Second))
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}

// Run listens on addr and calls Serve. It returns once ctx is cancelled
// and the server has shut down, or when listening fails.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return s.Serve(ctx, ln)
}

// stopping returns the channel closed when the server running this request
// shuts down (nil, never closed, when mounted in a foreign server).
func stopping(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return c
}
