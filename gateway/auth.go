package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Role is what a client may do. Roles are ordered: an admin may do what an
// operator may, an operator what a viewer may.
type Role int8

// Roles. RolePublic marks routes that need no credentials (health probes,
// the OpenAPI document); it is never granted to a client. The zero Role is
// invalid so a route without a role is rejected by New.
const (
	RolePublic   Role = iota + 1
	RoleViewer        // reads
	RoleOperator      // commands, alarm ack/shelve/reset
	RoleAdmin         // rule and alarm-definition changes
)

// String returns the role name.
func (r Role) String() string {
	switch r {
	case RolePublic:
		return "public"
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int8(r))
}

func hashSecret(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// principal is who made a request.
type principal struct {
	name string // credential name, "anonymous", or "" when none
	role Role   // 0 when unauthenticated
	key  string // rate-limit key
	// ticket is true when a stream ticket was presented.
	ticket bool
}

// authenticate resolves the credentials of r. bad is true when credentials
// were presented and none matched. Comparison is constant-time over every
// configured credential of the presented kind (SHA-256 digests, so secret
// lengths leak nothing either), and nothing of the secret is kept.
//
// When tickets is true (the stream routes) and r carries no credential
// header, a ?ticket= parameter is redeemed: a valid one authenticates r as
// the ticket's creator and is spent; an unknown, expired, reused or
// repeated one is bad credentials. Elsewhere the parameter is ignored and
// never spent.
func (s *Server) authenticate(r *http.Request, tickets bool) (p principal, bad bool) {
	var secret, kind string
	if k := headerValue(r.Header, "X-Api-Key"); k != "" {
		secret, kind = k, "key"
	} else if a := headerValue(r.Header, "Authorization"); a != "" {
		const pfx = "bearer "
		if len(a) <= len(pfx) || !strings.EqualFold(a[:len(pfx)], pfx) {
			return principal{key: "ip:" + clientIP(r)}, true
		}
		secret, kind = strings.TrimSpace(a[len(pfx):]), "bearer"
	}
	if kind == "" && tickets {
		if t, present := ticketOf(r); present {
			e, ok := s.tickets.consume(t, time.Now())
			if !ok {
				return principal{key: "ip:" + clientIP(r), ticket: true}, true
			}
			return principal{name: e.name, role: e.role, key: "cred:" + e.name, ticket: true}, false
		}
	}
	if kind == "" {
		if s.cfg.anonymous != 0 {
			return principal{name: "anonymous", role: s.cfg.anonymous, key: "ip:" + clientIP(r)}, false
		}
		return principal{key: "ip:" + clientIP(r)}, false
	}
	h := hashSecret(secret)
	match := -1
	for i := range s.cfg.creds {
		c := &s.cfg.creds[i]
		eq := subtle.ConstantTimeCompare(h[:], c.hash[:])
		kindOK := subtle.ConstantTimeEq(int32(len(c.kind)), int32(len(kind))) & boolInt(c.kind == kind)
		if eq&kindOK == 1 {
			match = i
		}
	}
	if match < 0 {
		return principal{key: "ip:" + clientIP(r)}, true
	}
	c := &s.cfg.creds[match]
	return principal{name: c.name, role: c.role, key: "cred:" + c.name}, false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clientIP returns the remote IP without the port. X-Forwarded-For is not
// trusted: a gateway behind a proxy should be mounted by the vendor with
// their own real-IP handling.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// headerValue is Header.Get for a key already in canonical form.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}
