package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voltage-ems/ems/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	viewerKey   = "viewer-key-0123456789"
	operatorKey = "operator-key-0123456789"
	adminKey    = "admin-key-0123456789abc"
	adminToken  = "admin-bearer-token-0123456789"
)

// site is a small real data set: a model.Snapshot with a point table whose
// C/A points validate commands with model.Point.Validate, the same check the
// EMS downlink runs.
type site struct {
	snap   *model.Snapshot
	table  map[string]*model.Point
	execs  atomic.Int64
	events *eventBus
}

func newSite() *site {
	s := &site{snap: model.NewSnapshot(), events: &eventBus{}}
	s.table = map[string]*model.Point{
		"pcs1.active_power":   {Kind: model.Telemetry, Unit: "kW"},
		"pcs1.power_setpoint": {Kind: model.Adjustment, Unit: "kW", Min: -100, Max: 100, Step: 0.5, HasMin: true, HasMax: true},
		"pcs1.start":          {Kind: model.Control},
		"bms1.soc":            {Kind: model.Telemetry, Unit: "%"},
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.snap.Update([]model.Sample{
		{Point: "pcs1.active_power", Value: 42.5, Time: t0},
		{Point: "pcs1.power_setpoint", Value: 0, Time: t0},
		{Point: "bms1.soc", Value: 87, Time: t0, Quality: model.Uncertain(model.ReasonStale)},
	})
	return s
}

// Execute validates cmd like the EMS downlink and applies it to the snapshot.
func (s *site) Execute(ctx context.Context, cmd model.Command) error {
	p, ok := s.table[cmd.Point]
	if !ok {
		return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: model.ErrUnknownPoint}
	}
	if err := p.Validate(cmd.Point, cmd.Value); err != nil {
		return err
	}
	s.execs.Add(1)
	s.snap.Update([]model.Sample{{Point: cmd.Point, Value: cmd.Value, Time: cmd.Time}})
	s.events.publish(model.Event{ID: cmd.ID, Time: cmd.Time, Kind: model.EventCommandExecuted, Source: cmd.Source, Point: cmd.Point, Message: cmd.String()})
	return nil
}

// SubscribeSamples uses the real model.Snapshot subscriptions.
func (s *site) SubscribeSamples(pattern string, buffer int) (<-chan model.Sample, func()) {
	return SnapshotSamples(s.snap).SubscribeSamples(pattern, buffer)
}

func (s *site) SubscribeEvents(buffer int) (<-chan model.Event, func()) {
	return s.events.subscribe(buffer)
}

// eventBus is a minimal fan-out of events for the stream tests.
type eventBus struct {
	mu   sync.Mutex
	subs map[chan model.Event]struct{}
}

func (b *eventBus) subscribe(n int) (<-chan model.Event, func()) {
	ch := make(chan model.Event, n)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan model.Event]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			close(ch)
			b.mu.Unlock()
		})
	}
}

func (b *eventBus) publish(e model.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		ch <- e // tests size buffers so this never blocks
	}
}

func (b *eventBus) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func authOpts() []Option {
	return []Option{
		WithAPIKey("vic", viewerKey, RoleViewer),
		WithAPIKey("olga", operatorKey, RoleOperator),
		WithAPIKey("ada", adminKey, RoleAdmin),
		WithBearerToken("root", adminToken, RoleAdmin),
	}
}

func newTestServer(t testing.TB, s *site, extra ...Option) *Server {
	t.Helper()
	opts := append(authOpts(), WithPoints(s.snap), WithExecutor(s), WithSamples(s), WithEvents(s))
	gw, err := New(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// call runs one request through the handler in memory.
func call(t testing.TB, h http.Handler, method, target, key string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, target, rd)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// errBody decodes and checks an error response body.
func errBody(t testing.TB, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("status %d: error body is not {error,code,time}: %v", w.Code, err)
	}
	if e.Error == "" || e.Code == "" {
		t.Fatalf("error body incomplete: %+v", e)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		t.Fatalf("error time %q: %v", e.Time, err)
	}
	return e
}

var errLinkDown = errors.New("link to device lost")
