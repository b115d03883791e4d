// Package gateway is the HTTP API of the EMS: a versioned REST API under
// /api/v1 on net/http, a live stream of samples and events over
// Server-Sent Events and WebSocket, health and readiness probes, Prometheus
// metrics and an embedded OpenAPI 3.1 document with an offline docs page.
//
// A vendor mounts *Server (an http.Handler) in their own server, or runs it
// with Run / Serve, which stop gracefully when their context is cancelled.
// The EMS wires it through ems.WithGateway.
//
// # Routes
//
//	GET    /api/v1/points                       latest values (pattern, quality, limit)
//	GET    /api/v1/points/{id}                  latest value of one point
//	GET    /api/v1/snapshot                     every latest value keyed by id
//	POST   /api/v1/commands                     write a C or A point
//	GET    /api/v1/alarms, /alarms/{id}         active alarms
//	POST   /api/v1/alarms/{id}/ack|reset|shelve|unshelve
//	GET    /api/v1/alarm-history, /alarm-kpis
//	GET    /api/v1/alarm-definitions[/{id}]     and POST, PUT, DELETE (admin)
//	GET    /api/v1/rules[/{id}]                 and POST, PUT, DELETE, enable, disable (admin)
//	POST   /api/v1/rules/{id}/dry-run           evaluate against given values
//	GET    /api/v1/rules/{id}/stats, /rule-stats
//	GET    /api/v1/history                      points, from, to, step, agg; JSON or CSV
//	GET    /api/v1/stream, /api/v1/stream/ws    live samples and events
//	POST   /api/v1/stream/tickets               single-use ticket to open a stream from a browser
//	GET    /api/v1/openapi.json, /api/v1/docs
//	GET    /healthz, /readyz, /metrics
//
// # Backends
//
// The gateway consumes small interfaces: Points (*model.Snapshot), Executor
// (the EMS downlink), SampleSubscriber and EventSubscriber (the stream),
// Alarms (with the optional AlarmOperator and AlarmDefinitions, all
// implemented by *alarm.Engine), Rules (with RuleEditor, RuleToggler,
// RuleStatser and RuleDryRunner, all implemented by *rule.Runner) and
// History (any history.Store). A route whose backend or capability is
// missing answers 501.
//
// Each backend option takes one or more instances: calls go round-robin
// over them, each behind its own gobreaker circuit breaker. Errors that are
// the caller's fault (4xx) never trip a breaker; five (configurable)
// consecutive backend failures open it, and while every instance is open
// the route answers 503 at once. A failed call is not retried on another
// instance, so a command is never executed twice.
//
// # Middleware
//
// Every request gets an X-Request-ID (a sane incoming one is kept), one
// access-log line through slog at Info (method, path, status, duration,
// client name, remote IP, request ID; never a header, query or key), panic recovery to a
// JSON 500, and CORS for the configured origins. Per route: authentication
// (X-API-Key or Authorization: Bearer; keys are kept as SHA-256 digests
// and compared in constant time; on the two stream routes also a stream
// ticket, see below) with roles viewer < operator < admin;
// per-client token-bucket rate limiting (client = credential name, else
// remote IP, also for failed logins; limiters bounded by an LRU) answering
// 429 with Retry-After; a request body limit (413); a GET response cache
// (LRU + TTL, ETag and If-None-Match, concurrent misses coalesced with
// singleflight) invalidated by tag when a write succeeds; and Deprecation,
// Sunset and Link headers for deprecated routes or versions.
//
// # Caching
//
// The cache (off unless WithCache) tags every cacheable GET route: points,
// alarms, alarm-definitions, rules, history. A successful write through the
// API invalidates the tags it changes (a command invalidates points, an ack
// alarms, a rule change rules). Changes that do not come through the API
// (new samples, alarms raised by the engine) are seen after the TTL, or at
// once when the owner calls Server.Invalidate; keep the TTL short (about a
// second) for dashboards that poll live values.
//
// # Live stream
//
// GET /api/v1/stream (SSE) and /api/v1/stream/ws (WebSocket) take
// points=<glob> for samples, events=<prefix,prefix> for events and
// include=samples,events. Items arrive in the order the sources deliver
// them; a slow client loses what its source drops (the snapshot's
// subscriptions drop the oldest sample and count it). Streams end when the
// client leaves, when Serve shuts down, or when a source closes.
//
// # Stream tickets
//
// Browsers' EventSource and WebSocket cannot send headers, and API keys
// are never accepted in URLs (URLs end up in logs and browser history). A
// dashboard therefore asks for a stream ticket with its usual headers,
// POST /api/v1/stream/tickets (role viewer, rate-limited like any route),
// which answers 201 with {"ticket": ..., "expires": RFC 3339}, and opens
// GET /api/v1/stream?ticket=... or /api/v1/stream/ws?ticket=... with it:
//
//   - A ticket is 128 random bits in base64url. The gateway keeps only its
//     SHA-256 digest, with the creator's credential name and role; the
//     stream request authenticates as that client (access log, rate-limit
//     bucket, role).
//   - It lives 30 s (WithStreamTickets sets up to 5 min; measured by the
//     gateway's clock) and is spent by its first use: an unknown, expired, reused,
//     empty or repeated ticket gives 401 with the usual error body. A
//     request refused afterwards (429, a rejected WebSocket origin) has
//     still spent it.
//   - Only the two stream routes accept it, and only when the request
//     sends no credential header (a header wins and the ticket is left
//     unspent). Every other route ignores the parameter for
//     authentication and leaves the ticket unspent; without headers they
//     answer 401, with headers most reject the unknown parameter with 400.
//   - At most 10000 (WithStreamTickets) unexpired, unused tickets are
//     kept; beyond that POST /stream/tickets answers 429 with Retry-After
//     until the oldest expires. Outstanding tickets are never evicted.
//
// The access log prints the path, never the query, so tickets are not
// logged. Without tickets, browser dashboards need a proxy that adds the
// header, or WithAnonymous(RoleViewer) on a trusted network.
//
// # Errors
//
// Every error response has the body {"error": message, "code": code,
// "time": RFC 3339}. StatusOf is the one mapping from the module's sentinel
// and typed errors to statuses: unknown point, alarm, definition or rule
// 404; not writable, invalid transition, duplicate 409; out of range, bad
// step, overflow, invalid value, invalid rule or configuration, history
// limits 422; malformed input 400; backend unavailable or breaker open 503;
// deadline 504. Internal errors are logged with the request ID and never
// echoed to the client.
//
// # Versioning
//
// The built-in API is v1. WithAPI mounts more routes under /api/{version}
// (for example a v2 beside v1); WithDeprecation marks a whole version
// deprecated with a sunset date and a successor link.
package gateway
