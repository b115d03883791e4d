package gateway

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Stream ticket defaults and bounds.
const (
	DefaultTicketTTL  = 30 * time.Second // lifetime of a stream ticket
	DefaultMaxTickets = 10000            // unexpired tickets kept at most
	MaxTicketTTL      = 5 * time.Minute  // longest lifetime WithStreamTickets accepts

	ticketParam = "ticket" // query parameter of the stream routes
	ticketBytes = 16       // 128 random bits
)

// ticketRoutes are the built-in routes ("METHOD /path" relative to /api/v1)
// that accept a stream ticket in place of credential headers.
var ticketRoutes = map[string]bool{"GET /stream": true, "GET /stream/ws": true}

// WithStreamTickets sets the lifetime of the single-use stream tickets
// issued by POST /api/v1/stream/tickets (default 30 s, at most 5 min) and
// how many unexpired, unused tickets are kept (default 10000). When that
// many are outstanding, new tickets are refused with 429 and a Retry-After
// until the oldest expires; existing tickets are never evicted. Zero keeps
// a default.
func WithStreamTickets(ttl time.Duration, max int) Option {
	return func(c *config) error {
		if ttl < 0 || ttl > MaxTicketTTL || max < 0 {
			return fmt.Errorf("%w: stream tickets: lifetime %v must be between 0 and %v and the bound %d must not be negative", ErrInvalidOption, ttl, MaxTicketTTL, max)
		}
		c.ticketTTL, c.maxTickets = ttl, max
		return nil
	}
}

// ticketEntry is one outstanding ticket: the SHA-256 digest of its value
// (the value itself is never kept), who created it and when it expires.
type ticketEntry struct {
	hash    [32]byte
	name    string
	role    Role
	expires time.Time
}

// ticketStore holds the outstanding tickets, oldest first. The lifetime is
// fixed, so the oldest ticket is also the first to expire and expired ones
// are purged from the front.
type ticketStore struct {
	ttl time.Duration
	max int

	mu     sync.Mutex
	byHash map[[32]byte]*list.Element // of *ticketEntry
	order  list.List                  // *ticketEntry, oldest first
}

func newTicketStore(ttl time.Duration, max int) *ticketStore {
	if ttl == 0 {
		ttl = DefaultTicketTTL
	}
	if max == 0 {
		max = DefaultMaxTickets
	}
	return &ticketStore{ttl: ttl, max: max, byHash: map[[32]byte]*list.Element{}}
}

// purge drops expired tickets; mu is held.
func (ts *ticketStore) purge(now time.Time) {
	for e := ts.order.Front(); e != nil; e = ts.order.Front() {
		t := e.Value.(*ticketEntry)
		if now.Before(t.expires) {
			return
		}
		ts.order.Remove(e)
		delete(ts.byHash, t.hash)
	}
}

// issue makes a ticket for the named client. When the store is full it
// returns ok false and how long until the oldest ticket expires.
func (ts *ticketStore) issue(name string, role Role, now time.Time) (ticket string, expires time.Time, retry time.Duration, ok bool) {
	var raw [ticketBytes]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	ticket = base64.RawURLEncoding.EncodeToString(raw[:])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.purge(now)
	if len(ts.byHash) >= ts.max {
		return "", time.Time{}, ts.order.Front().Value.(*ticketEntry).expires.Sub(now), false
	}
	t := &ticketEntry{hash: hashSecret(ticket), name: name, role: role, expires: now.Add(ts.ttl)}
	ts.byHash[t.hash] = ts.order.PushBack(t)
	return ticket, t.expires, 0, true
}

// consume redeems a ticket: it succeeds once for a ticket issued less than
// the lifetime ago. The ticket is gone afterwards, whatever the outcome.
func (ts *ticketStore) consume(ticket string, now time.Time) (ticketEntry, bool) {
	h := hashSecret(ticket)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.purge(now)
	e, ok := ts.byHash[h]
	if !ok {
		return ticketEntry{}, false
	}
	ts.order.Remove(e)
	delete(ts.byHash, h)
	return *e.Value.(*ticketEntry), true
}

// outstanding returns the number of unexpired, unused tickets.
func (ts *ticketStore) outstanding(now time.Time) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.purge(now)
	return len(ts.byHash)
}

// ticketOf returns the ticket query parameter: present is false when the
// query has none; a parameter given more than once yields "", true (never
// a valid ticket). In a malformed query the pairs that parse still count.
func ticketOf(r *http.Request) (ticket string, present bool) {
	if r.URL.RawQuery == "" {
		return "", false
	}
	q, _ := url.ParseQuery(r.URL.RawQuery)
	vs, ok := q[ticketParam]
	if !ok {
		return "", false
	}
	if len(vs) != 1 {
		return "", true
	}
	return vs[0], true
}

type ticketJSON struct {
	Ticket  string `json:"ticket"`
	Expires string `json:"expires"` // RFC 3339, UTC, truncated to the second
}

// createTicket: POST /stream/tickets. Any request body is ignored.
func (s *Server) createTicket(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		writeError(w, err)
		return
	}
	p := principalOf(r.Context())
	ticket, expires, retry, ok := s.tickets.issue(p.name, p.role, time.Now())
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(retry)))
		writeErrorStatus(w, http.StatusTooManyRequests, "too_many_tickets", fmt.Sprintf("%d stream tickets are outstanding; retry in %d s", s.tickets.max, retryAfter(retry)))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, ticketJSON{Ticket: ticket, Expires: expires.UTC().Format(time.RFC3339)})
}
