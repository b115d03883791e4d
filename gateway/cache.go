package gateway

import (
	"bytes"
	"context"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// respCache caches successful GET responses for a TTL, keyed by path and
// query. Each cacheable route belongs to a tag ("points", "alarms", ...);
// a successful write bumps the generation of the tags it changes, which
// invalidates every entry of those tags at once. Concurrent misses of one
// key are coalesced with singleflight.
type respCache struct {
	ttl   time.Duration
	lru   *lru.Cache[string, *cached]
	gens  map[string]*atomic.Uint64 // fixed after New
	group singleflight.Group
}

type cached struct {
	status  int
	ctype   string
	body    []byte
	etag    string
	gen     uint64
	expires time.Time
	// Header values prepared once, shared read-only by every response.
	hCtype, hEtag, hLen []string
}

var cacheControl = []string{"private, no-cache"}

func newRespCache(cc CacheConfig, tags []string) (*respCache, error) {
	if cc.TTL == 0 {
		return nil, nil
	}
	if cc.MaxEntries == 0 {
		cc.MaxEntries = 1024
	}
	l, err := lru.New[string, *cached](cc.MaxEntries)
	if err != nil {
		return nil, err
	}
	c := &respCache{ttl: cc.TTL, lru: l, gens: map[string]*atomic.Uint64{}}
	for _, t := range tags {
		if c.gens[t] == nil {
			c.gens[t] = new(atomic.Uint64)
		}
	}
	return c, nil
}

func (c *respCache) invalidate(tags ...string) {
	if c == nil {
		return
	}
	for _, t := range tags {
		if g := c.gens[t]; g != nil {
			g.Add(1)
		}
	}
}

// recorder captures a response produced for the cache.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}

// serve answers r from the cache or by running next (once for concurrent
// misses of the same key).
func (c *respCache) serve(w http.ResponseWriter, r *http.Request, tag string, next http.Handler, m *metrics) {
	gen := c.gens[tag]
	g := gen.Load()
	key := r.URL.Path + "?" + r.URL.RawQuery
	if acc := headerValue(r.Header, "Accept"); acc != "" {
		key += "\x00" + acc // content negotiation (history: JSON or CSV)
	}
	now := time.Now()
	if e, ok := c.lru.Get(key); ok && e.gen == g && now.Before(e.expires) {
		m.cacheHit()
		c.write(w, r, e)
		return
	}
	m.cacheMiss()
	v, _, _ := c.group.Do(key+"#"+strconv.FormatUint(g, 10), func() (any, error) {
		rec := &recorder{h: http.Header{}}
		// The shared fill must not die with the first caller's connection.
		next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		e := &cached{status: rec.status, ctype: rec.h.Get("Content-Type"), body: rec.buf.Bytes(), gen: g, expires: time.Now().Add(c.ttl)}
		if e.ctype != "" {
			e.hCtype = []string{e.ctype}
		}
		e.hLen = []string{strconv.Itoa(len(e.body))}
		if e.status == http.StatusOK {
			e.etag = etagOf(e.body)
			e.hEtag = []string{e.etag}
			if gen.Load() == g {
				c.lru.Add(key, e)
			}
		}
		return e, nil
	})
	c.write(w, r, v.(*cached))
}

func (c *respCache) write(w http.ResponseWriter, r *http.Request, e *cached) {
	h := w.Header() // canonical keys set directly: this is the hot path
	if e.hCtype != nil {
		h["Content-Type"] = e.hCtype
	}
	if e.etag != "" {
		h["Etag"] = e.hEtag
		h["Cache-Control"] = cacheControl
		if etagMatch(headerValue(r.Header, "If-None-Match"), e.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h["Content-Length"] = e.hLen
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

func etagOf(b []byte) string {
	f := fnv.New64a()
	_, _ = f.Write(b)
	var buf [18]byte
	buf[0] = '"'
	s := strconv.AppendUint(buf[:1], f.Sum64(), 16)
	return string(append(s, '"'))
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
