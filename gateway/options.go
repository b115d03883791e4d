package gateway

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Server. Options are validated by New.
type Option func(*config) error

// RateLimit configures per-client token buckets. The client is the
// authenticated credential's name, else the remote IP.
type RateLimit struct {
	PerSecond  float64 // sustained requests per second per client; 0 disables limiting
	Burst      int     // bucket size; default max(1, ceil(PerSecond))
	MaxClients int     // limiters kept (LRU); default 10000
}

// CacheConfig configures the GET response cache.
type CacheConfig struct {
	TTL        time.Duration // how long an entry is served; 0 disables the cache
	MaxEntries int           // LRU bound; default 1024
}

// Timeouts of the http.Server built by Run and Serve.
type Timeouts struct {
	ReadHeader time.Duration // default 5 s
	Read       time.Duration // whole request; default 30 s
	Write      time.Duration // whole response; default 30 s (live streams clear it)
	Idle       time.Duration // keep-alive idle; default 120 s
	Shutdown   time.Duration // grace period on ctx cancellation; default 10 s
}

type credential struct {
	name string
	role Role
	kind string // "key" or "bearer"
	hash [32]byte
}

type config struct {
	logger    *slog.Logger
	reg       prometheus.Registerer
	points    []Points
	executors []Executor
	samples   SampleSubscriber
	events    EventSubscriber
	alarms    []Alarms
	rules     []Rules
	history   []History
	checks    []namedCheck
	creds     []credential
	anonymous Role
	rate      RateLimit
	cache     CacheConfig
	origins   []string
	bodyLimit int64
	timeouts  Timeouts
	breaker   BreakerConfig
	apis      []api
	deprec    map[string]deprecation
	stream    StreamConfig

	ticketTTL  time.Duration
	maxTickets int
}

type namedCheck struct {
	name string
	c    HealthChecker
}

type api struct {
	version string
	routes  []Route
	builtin bool // the gateway's own v1 table
}

type deprecation struct {
	at, sunset time.Time
	successor  string
}

// StreamConfig tunes the live stream.
type StreamConfig struct {
	Buffer    int           // per-subscriber channel size; default 256
	Heartbeat time.Duration // SSE comment / WebSocket ping interval; default 15 s
}

// WithLogger sets the access and error logger; nil discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithMetrics registers the gateway's metrics on reg and serves /metrics
// from it when reg is also a prometheus.Gatherer (a *prometheus.Registry
// is). Nil means no metrics and /metrics answers 501.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error { c.reg = reg; return nil }
}

// WithPoints sets the latest-value source; several instances are used
// round-robin, each behind its own circuit breaker.
func WithPoints(p Points, more ...Points) Option {
	return func(c *config) error {
		return addBackends(&c.points, "points", p, more)
	}
}

// WithExecutor sets the command executor(s).
func WithExecutor(e Executor, more ...Executor) Option {
	return func(c *config) error {
		return addBackends(&c.executors, "executor", e, more)
	}
}

// WithSamples sets the source of the live sample stream.
func WithSamples(s SampleSubscriber) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: nil sample subscriber", ErrInvalidOption)
		}
		c.samples = s
		return nil
	}
}

// WithEvents sets the source of the live event stream.
func WithEvents(s EventSubscriber) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: nil event subscriber", ErrInvalidOption)
		}
		c.events = s
		return nil
	}
}

// WithStream tunes the live stream.
func WithStream(sc StreamConfig) Option {
	return func(c *config) error {
		if sc.Buffer < 0 || sc.Heartbeat < 0 {
			return fmt.Errorf("%w: stream buffer %d and heartbeat %v must not be negative", ErrInvalidOption, sc.Buffer, sc.Heartbeat)
		}
		c.stream = sc
		return nil
	}
}

// addBackends sets (replaces) the instances of a backend, so a later
// option overrides an earlier one instead of adding replicas to it.
func addBackends[T comparable](dst *[]T, what string, first T, more []T) error {
	var zero T
	list := append([]T{first}, more...)
	for _, b := range list {
		if b == zero {
			return fmt.Errorf("%w: nil %s backend", ErrInvalidOption, what)
		}
	}
	*dst = list
	return nil
}

// WithComponent adds a component to /readyz.
func WithComponent(name string, hc HealthChecker) Option {
	return func(c *config) error {
		if name == "" || hc == nil {
			return fmt.Errorf("%w: component needs a name and a checker", ErrInvalidOption)
		}
		for _, x := range c.checks {
			if x.name == name {
				return fmt.Errorf("%w: duplicate component %q", ErrInvalidOption, name)
			}
		}
		c.checks = append(c.checks, namedCheck{name, hc})
		return nil
	}
}

// WithAPIKey accepts key in the X-API-Key header for a client called name
// with the given role. Keys are stored hashed and never logged.
func WithAPIKey(name, key string, role Role) Option {
	return func(c *config) error { return c.addCred(name, key, role, "key") }
}

// WithBearerToken accepts "Authorization: Bearer token" for a client
// called name with the given role.
func WithBearerToken(name, token string, role Role) Option {
	return func(c *config) error { return c.addCred(name, token, role, "bearer") }
}

func (c *config) addCred(name, secret string, role Role, kind string) error {
	if name == "" {
		return fmt.Errorf("%w: credential without a name", ErrInvalidOption)
	}
	if len(secret) < 16 {
		return fmt.Errorf("%w: secret of credential %q is shorter than 16 characters", ErrInvalidOption, name)
	}
	if role < RoleViewer || role > RoleAdmin {
		return fmt.Errorf("%w: credential %q has invalid role %v", ErrInvalidOption, name, role)
	}
	h := hashSecret(secret)
	for _, x := range c.creds {
		if x.hash == h && x.kind == kind {
			return fmt.Errorf("%w: credential %q reuses the secret of %q", ErrInvalidOption, name, x.name)
		}
	}
	c.creds = append(c.creds, credential{name: name, role: role, kind: kind, hash: h})
	return nil
}

// WithAnonymous grants role to requests without credentials (for a local
// dashboard, or RoleAdmin in development). Without this option and without
// any credential New fails, so a gateway is never open by accident.
func WithAnonymous(role Role) Option {
	return func(c *config) error {
		if role < RoleViewer || role > RoleAdmin {
			return fmt.Errorf("%w: anonymous role %v", ErrInvalidOption, role)
		}
		c.anonymous = role
		return nil
	}
}

// WithRateLimit enables per-client token-bucket rate limiting.
func WithRateLimit(rl RateLimit) Option {
	return func(c *config) error {
		if rl.PerSecond < 0 || rl.Burst < 0 || rl.MaxClients < 0 {
			return fmt.Errorf("%w: rate limit %+v has a negative field", ErrInvalidOption, rl)
		}
		c.rate = rl
		return nil
	}
}

// WithCache enables the GET response cache.
func WithCache(cc CacheConfig) Option {
	return func(c *config) error {
		if cc.TTL < 0 || cc.MaxEntries < 0 {
			return fmt.Errorf("%w: cache %+v has a negative field", ErrInvalidOption, cc)
		}
		c.cache = cc
		return nil
	}
}

// WithCORS allows cross-origin requests from the given origins
// ("https://scada.example.com"), or from anywhere with "*".
func WithCORS(origins ...string) Option {
	return func(c *config) error {
		for _, o := range origins {
			if o == "*" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || strings.ContainsAny(o, " \t") {
				return fmt.Errorf("%w: CORS origin %q is not scheme://host[:port]", ErrInvalidOption, o)
			}
		}
		c.origins = append(c.origins, origins...)
		return nil
	}
}

// WithBodyLimit bounds request bodies (default 1 MiB).
func WithBodyLimit(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: body limit %d must be positive", ErrInvalidOption, n)
		}
		c.bodyLimit = n
		return nil
	}
}

// WithTimeouts sets the server timeouts used by Run and Serve; zero fields
// keep their defaults.
func WithTimeouts(t Timeouts) Option {
	return func(c *config) error {
		if t.ReadHeader < 0 || t.Read < 0 || t.Write < 0 || t.Idle < 0 || t.Shutdown < 0 {
			return fmt.Errorf("%w: negative timeout in %+v", ErrInvalidOption, t)
		}
		c.timeouts = t
		return nil
	}
}

// WithBreaker configures the circuit breakers in front of the backends.
func WithBreaker(b BreakerConfig) Option {
	return func(c *config) error {
		if err := b.validate(); err != nil {
			return err
		}
		c.breaker = b
		return nil
	}
}

// WithAPI mounts extra routes under /api/{version} (for example "v2" next to
// the built-in v1). Route paths are relative to the version prefix.
func WithAPI(version string, routes ...Route) Option {
	return func(c *config) error {
		if !validVersion(version) {
			return fmt.Errorf("%w: API version %q must look like v2", ErrInvalidOption, version)
		}
		c.apis = append(c.apis, api{version: version, routes: routes})
		return nil
	}
}

// WithDeprecation marks every route of an API version deprecated since at,
// to be removed at sunset (zero: unknown), pointing clients to successor
// (e.g. "/api/v2"). Responses carry Deprecation, Sunset and Link headers.
func WithDeprecation(version string, at, sunset time.Time, successor string) Option {
	return func(c *config) error {
		if !validVersion(version) || at.IsZero() {
			return fmt.Errorf("%w: deprecation of %q needs a version and a time", ErrInvalidOption, version)
		}
		if !sunset.IsZero() && sunset.Before(at) {
			return fmt.Errorf("%w: sunset %v before deprecation %v", ErrInvalidOption, sunset, at)
		}
		if c.deprec == nil {
			c.deprec = map[string]deprecation{}
		}
		c.deprec[version] = deprecation{at, sunset, successor}
		return nil
	}
}

func validVersion(v string) bool {
	if len(v) < 2 || v[0] != 'v' {
		return false
	}
	for _, r := range v[1:] {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}
