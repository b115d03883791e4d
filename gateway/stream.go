package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/voltage-ems/ems/model"
)

// streamFilter is what a live-stream client asked for.
type streamFilter struct {
	samples  bool
	pattern  string
	events   bool
	prefixes []string
}

// parseStreamFilter reads ?points=glob&events=prefix,prefix&include=samples,events.
func (s *Server) parseStreamFilter(r *http.Request) (streamFilter, error) {
	q, err := queryParams(r, "points", "events", "include", ticketParam)
	if err != nil {
		return streamFilter{}, err
	}
	f := streamFilter{samples: true, events: true, pattern: q["points"]}
	if inc, ok := q["include"]; ok {
		f.samples, f.events = false, false
		for part := range strings.SplitSeq(inc, ",") {
			switch strings.TrimSpace(part) {
			case "samples":
				f.samples = true
			case "events":
				f.events = true
			default:
				return f, badRequest("include %q: each part must be samples or events", inc)
			}
		}
	}
	if !model.ValidPattern(f.pattern) {
		return f, badRequest("points %q is not a valid glob", f.pattern)
	}
	if ev, ok := q["events"]; ok && ev != "" {
		for part := range strings.SplitSeq(ev, ",") {
			part = strings.TrimSpace(part)
			if part == "" || strings.ContainsFunc(part, func(r rune) bool { return r != '.' && r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9') }) {
				return f, badRequest("events %q: each part must be a lower-case event kind prefix like alarm. or rule.fired", ev)
			}
			f.prefixes = append(f.prefixes, part)
		}
	}
	if f.samples && s.cfg.samples == nil {
		if _, explicit := q["include"]; explicit {
			return f, fmt.Errorf("%w: sample stream", ErrNotConfigured)
		}
		f.samples = false
	}
	if f.events && s.cfg.events == nil {
		if _, explicit := q["include"]; explicit {
			return f, fmt.Errorf("%w: event stream", ErrNotConfigured)
		}
		f.events = false
	}
	if !f.samples && !f.events {
		return f, fmt.Errorf("%w: live stream (no sample or event source)", ErrNotConfigured)
	}
	return f, nil
}

func (f *streamFilter) wantEvent(e model.Event) bool {
	if len(f.prefixes) == 0 {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(string(e.Kind), p) {
			return true
		}
	}
	return false
}

// subscription is the pair of channels of one stream client.
type subscription struct {
	samples <-chan model.Sample
	events  <-chan model.Event
	cancel  []func()
}

func (s *Server) subscribe(f streamFilter) *subscription {
	sub := &subscription{}
	if f.samples {
		ch, cancel := s.cfg.samples.SubscribeSamples(f.pattern, s.cfg.stream.Buffer)
		sub.samples, sub.cancel = ch, append(sub.cancel, cancel)
	}
	if f.events {
		ch, cancel := s.cfg.events.SubscribeEvents(s.cfg.stream.Buffer)
		sub.events, sub.cancel = ch, append(sub.cancel, cancel)
	}
	return sub
}

func (sub *subscription) close() {
	for _, c := range sub.cancel {
		c()
	}
}

type streamMsg struct {
	Type   string       `json:"type"` // "sample" or "event"
	Sample *sampleJSON  `json:"sample,omitempty"`
	Event  *model.Event `json:"event,omitempty"`
}

// pump forwards messages in arrival order until ctx ends, the server
// shuts down, a source closes or send fails. ping is called every
// heartbeat.
func (s *Server) pump(ctx context.Context, f streamFilter, sub *subscription, send func(streamMsg) error, ping func() error) {
	tick := time.NewTicker(s.cfg.stream.Heartbeat)
	defer tick.Stop()
	stop := stopping(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
			if ping() != nil {
				return
			}
		case smp, ok := <-sub.samples:
			if !ok {
				return
			}
			sj := toSampleJSON(smp)
			if send(streamMsg{Type: "sample", Sample: &sj}) != nil {
				return
			}
		case ev, ok := <-sub.events:
			if !ok {
				return
			}
			if !f.wantEvent(ev) {
				continue
			}
			if send(streamMsg{Type: "event", Event: &ev}) != nil {
				return
			}
		}
	}
}

const streamWriteTimeout = 10 * time.Second

// streamSSE: GET /stream as text/event-stream. Each message is
// "event: sample|event", "id: n", "data: {json}".
func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseStreamFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	sub := s.subscribe(f)
	defer sub.close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, _ = w.Write([]byte(": stream open\n\n"))
	if rc.Flush() != nil {
		return
	}
	var seq uint64
	var buf []byte
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(m streamMsg) error {
		var data []byte
		var err error
		if m.Sample != nil {
			data, err = json.Marshal(m.Sample)
		} else {
			data, err = json.Marshal(m.Event)
		}
		if err != nil {
			return nil // unencodable message: skip it, keep the stream
		}
		seq++
		buf = append(buf[:0], "event: "...)
		buf = append(buf, m.Type...)
		buf = append(buf, "\nid: "...)
		buf = strconv.AppendUint(buf, seq, 10)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, data...)
		buf = append(buf, "\n\n"...)
		return write(buf)
	}
	s.pump(r.Context(), f, sub, send, func() error { return write([]byte(": ping\n\n")) })
}

// streamWS: GET /stream/ws, a WebSocket carrying one JSON text message
// per item: {"type":"sample","sample":{...}} or {"type":"event","event":{...}}.
// Client messages are ignored; closing the socket ends the stream.
func (s *Server) streamWS(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseStreamFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// net/http documents that a hijacked connection may keep the deadlines
	// the server set for the request; clear them (writes are bounded by the
	// per-message context below).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.originHosts()})
	if err != nil {
		return // Accept has written the error response
	}
	defer c.CloseNow()
	sub := s.subscribe(f)
	defer sub.close()
	ctx := c.CloseRead(r.Context())
	send := func(m streamMsg) error {
		b, err := json.Marshal(m)
		if err != nil {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	ping := func() error {
		pctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
		defer cancel()
		return c.Ping(pctx)
	}
	s.pump(ctx, f, sub, send, ping)
	status := websocket.StatusNormalClosure
	select {
	case <-stopping(r.Context()):
		status = websocket.StatusGoingAway
	default:
	}
	_ = c.Close(status, "")
}

// originHosts converts the CORS origins to coder/websocket host patterns.
func (s *Server) originHosts() []string {
	var out []string
	for _, o := range s.cfg.origins {
		if o == "*" {
			return []string{"*"}
		}
		if u, err := url.Parse(o); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}
