package gateway

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// fullSite wires the real default engines: alarm.Engine, rule.Runner and
// history.DB (in a temporary directory).
type fullSite struct {
	*site
	alarms *alarm.Engine
	rules  *rule.Runner
	hist   *history.DB
	t0     time.Time
}

func newFullSite(t testing.TB) *fullSite {
	t.Helper()
	fs := &fullSite{site: newSite(), t0: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	var err error
	fs.alarms, err = alarm.New(alarm.WithDefinitions(
		alarm.Definition{ID: "pcs1.power", Point: "pcs1.active_power", Message: "PCS power high",
			Limits: &alarm.Limits{H: &alarm.Limit{Value: 40, Priority: alarm.PriorityHigh}}},
		alarm.Definition{ID: "bms1.soc_low", Point: "bms1.soc", Latched: true,
			Limits: &alarm.Limits{L: &alarm.Limit{Value: 10}}},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.alarms.Close() })
	fs.rules, err = rule.New(rule.WithRules(rule.Spec{
		ID: "peak_shave", Priority: 1, Condition: "pcs1.active_power > 40",
		Actions: []rule.ActionSpec{{Type: rule.ActionSet, Point: "pcs1.power_setpoint", Value: "pcs1.active_power - 10"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.rules.Close() })
	fs.hist, err = history.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.hist.Close() })
	var batch []model.Sample
	for i := range 120 {
		batch = append(batch, model.Sample{Point: "pcs1.active_power", Value: float64(i), Time: fs.t0.Add(time.Duration(i) * time.Second)})
	}
	if err := fs.hist.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Raise the power alarm with the value in the snapshot.
	if _, err := fs.alarms.Process(context.Background(), []model.Sample{{Point: "pcs1.active_power", Value: 42.5, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	return fs
}

func (fs *fullSite) server(t testing.TB, extra ...Option) *Server {
	return newTestServer(t, fs.site, append([]Option{WithAlarms(fs.alarms), WithRules(fs.rules), WithHistory(fs.hist)}, extra...)...)
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("status %d: %v: %s", w.Code, err, w.Body)
	}
	return v
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	if code != "" {
		if e := errBody(t, w); e.Code != code {
			t.Fatalf("code %q, want %q: %s", e.Code, code, e.Error)
		}
	}
}

func TestAlarmOperations(t *testing.T) {
	fs := newFullSite(t)
	gw := fs.server(t, WithCache(CacheConfig{TTL: time.Hour}))

	l := decode[alarmList](t, call(t, gw, "GET", "/api/v1/alarms", viewerKey, nil))
	if l.Count != 1 || l.Alarms[0].ID != "pcs1.power.h" || l.Alarms[0].State != alarm.StateUnacked {
		t.Fatalf("active = %+v", l)
	}
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/ack", viewerKey, nil), 403, "forbidden")
	w := call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/ack", operatorKey, `{"comment":"on it"}`)
	expect(t, w, 200, "")
	if r := decode[alarmOpResult](t, w); r.User != "olga" || r.Op != "ack" {
		t.Fatalf("%+v", r)
	}
	// The cached list was invalidated by the ack.
	l = decode[alarmList](t, call(t, gw, "GET", "/api/v1/alarms", viewerKey, nil))
	if l.Alarms[0].State != alarm.StateAcked {
		t.Fatalf("after ack (cache not invalidated?): %+v", l.Alarms[0])
	}
	a := decode[alarm.Alarm](t, call(t, gw, "GET", "/api/v1/alarms/pcs1.power.h", viewerKey, nil))
	if a.State != alarm.StateAcked {
		t.Fatalf("get: %+v", a)
	}
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/ack", operatorKey, nil), 409, "invalid_transition")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/nope/ack", operatorKey, nil), 404, "unknown_alarm")
	expect(t, call(t, gw, "GET", "/api/v1/alarms/nope", viewerKey, nil), 404, "unknown_alarm")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/shelve", operatorKey, `{}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/shelve", operatorKey, `{"duration":"-5m"}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/shelve", operatorKey, `{"one_shot":true,"duration":"5m"}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/ack", operatorKey, `{"duration":"5m"}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/shelve", operatorKey, `{"duration":"30m","reason":"maintenance"}`), 200, "")
	a = decode[alarm.Alarm](t, call(t, gw, "GET", "/api/v1/alarms/pcs1.power.h", viewerKey, nil))
	if a.Shelved != alarm.ShelveTimed || a.ShelvedBy != "olga" {
		t.Fatalf("shelved: %+v", a)
	}
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/unshelve", operatorKey, nil), 200, "")
	expect(t, call(t, gw, "POST", "/api/v1/alarms/pcs1.power.h/reset", operatorKey, nil), 409, "invalid_transition")

	k := decode[alarm.KPIs](t, call(t, gw, "GET", "/api/v1/alarm-kpis", viewerKey, nil))
	if k.Annunciations < 1 {
		t.Fatalf("kpis %+v", k)
	}
	h := decode[eventList](t, call(t, gw, "GET", "/api/v1/alarm-history?alarm_id=pcs1.power.h", viewerKey, nil))
	kinds := []string{}
	for _, e := range h.Events {
		kinds = append(kinds, string(e.Kind))
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "alarm.raised") || !strings.Contains(got, "alarm.acked") || !strings.Contains(got, "alarm.shelved") {
		t.Fatalf("history kinds %s", got)
	}
	if e := h.Events[len(h.Events)-1]; e.Kind == model.EventAlarmAcked && e.Attrs["user"] != "olga" {
		t.Fatalf("ack event without user: %+v", e)
	}
	expect(t, call(t, gw, "GET", "/api/v1/alarm-history?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", viewerKey, nil), 400, "bad_request")
	expect(t, call(t, gw, "GET", "/api/v1/alarm-history?from=yesterday", viewerKey, nil), 400, "bad_request")
	expect(t, call(t, gw, "GET", "/api/v1/alarms?state=weird", viewerKey, nil), 400, "bad_request")
	expect(t, call(t, gw, "GET", "/api/v1/alarms?min_priority=banana", viewerKey, nil), 400, "bad_request")
}

func TestAlarmDefinitions(t *testing.T) {
	fs := newFullSite(t)
	gw := fs.server(t, WithCache(CacheConfig{TTL: time.Hour}))
	l := decode[alarmDefList](t, call(t, gw, "GET", "/api/v1/alarm-definitions", viewerKey, nil))
	if l.Count != 2 {
		t.Fatalf("%+v", l)
	}
	def := `{"id":"pcs1.setpoint_high","point":"pcs1.power_setpoint","limits":{"hh":{"value":90}}}`
	expect(t, call(t, gw, "POST", "/api/v1/alarm-definitions", operatorKey, def), 403, "forbidden")
	w := call(t, gw, "POST", "/api/v1/alarm-definitions", adminKey, def)
	expect(t, w, 201, "")
	if w.Header().Get("Location") != "/api/v1/alarm-definitions/pcs1.setpoint_high" {
		t.Fatalf("location %q", w.Header().Get("Location"))
	}
	expect(t, call(t, gw, "POST", "/api/v1/alarm-definitions", adminKey, def), 409, "duplicate_definition")
	if l := decode[alarmDefList](t, call(t, gw, "GET", "/api/v1/alarm-definitions", viewerKey, nil)); l.Count != 3 {
		t.Fatalf("cache not invalidated by create: %d", l.Count)
	}
	// A definition without a kind is rejected whole with a located message.
	w = call(t, gw, "POST", "/api/v1/alarm-definitions", adminKey, `{"id":"bad","point":"pcs1.start"}`)
	expect(t, w, 422, "")
	expect(t, call(t, gw, "POST", "/api/v1/alarm-definitions", adminKey, `{"id":"x","point":"p","limits":{"h":{"value":"high"}}}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/alarm-definitions", adminKey, `{"id":"x","point":"p","colour":"red"}`), 400, "bad_request")
	expect(t, call(t, gw, "PUT", "/api/v1/alarm-definitions/pcs1.setpoint_high", adminKey, `{"id":"other","point":"p","limits":{"h":{"value":1}}}`), 400, "bad_request")
	expect(t, call(t, gw, "PUT", "/api/v1/alarm-definitions/pcs1.setpoint_high", adminKey, `{"point":"pcs1.power_setpoint","limits":{"hh":{"value":95}}}`), 200, "")
	d := decode[alarm.Definition](t, call(t, gw, "GET", "/api/v1/alarm-definitions/pcs1.setpoint_high", viewerKey, nil))
	if d.Limits == nil || d.Limits.HH == nil || d.Limits.HH.Value != 95 {
		t.Fatalf("after update: %+v", d)
	}
	expect(t, call(t, gw, "PUT", "/api/v1/alarm-definitions/ghost", adminKey, `{"point":"p","limits":{"h":{"value":1}}}`), 404, "unknown_definition")
	expect(t, call(t, gw, "DELETE", "/api/v1/alarm-definitions/pcs1.setpoint_high", adminKey, nil), 204, "")
	expect(t, call(t, gw, "GET", "/api/v1/alarm-definitions/pcs1.setpoint_high", viewerKey, nil), 404, "unknown_definition")
	expect(t, call(t, gw, "DELETE", "/api/v1/alarm-definitions/pcs1.setpoint_high", adminKey, nil), 404, "unknown_definition")
}

func TestRules(t *testing.T) {
	fs := newFullSite(t)
	gw := fs.server(t, WithCache(CacheConfig{TTL: time.Hour}))
	l := decode[ruleList](t, call(t, gw, "GET", "/api/v1/rules", viewerKey, nil))
	if l.Count != 1 || l.Rules[0].ID != "peak_shave" {
		t.Fatalf("%+v", l)
	}
	spec := `{"id":"soc_guard","condition":"bms1.soc < 10","actions":[{"type":"set","point":"pcs1.start","value":"0"}]}`
	expect(t, call(t, gw, "POST", "/api/v1/rules", operatorKey, spec), 403, "forbidden")
	expect(t, call(t, gw, "POST", "/api/v1/rules", adminKey, spec), 201, "")
	expect(t, call(t, gw, "POST", "/api/v1/rules", adminKey, spec), 409, "duplicate_rule")
	if l := decode[ruleList](t, call(t, gw, "GET", "/api/v1/rules", viewerKey, nil)); l.Count != 2 {
		t.Fatalf("cache not invalidated: %d", l.Count)
	}
	expect(t, call(t, gw, "POST", "/api/v1/rules", adminKey, `{"id":"broken","condition":"bms1.soc <"}`), 422, "invalid_rule")
	expect(t, call(t, gw, "POST", "/api/v1/rules", adminKey, `{"id":"typed","hold":"5s"}`), 400, "bad_request")

	dr := decode[rule.DryRunResult](t, call(t, gw, "POST", "/api/v1/rules/peak_shave/dry-run", viewerKey, `{"values":{"pcs1.active_power":55}}`))
	if !dr.Matched || len(dr.Actions) != 1 || dr.Actions[0].Command == nil || dr.Actions[0].Command.Value != 45 {
		t.Fatalf("dry run %+v", dr)
	}
	dr = decode[rule.DryRunResult](t, call(t, gw, "POST", "/api/v1/rules/peak_shave/dry-run", viewerKey, `{"values":{"pcs1.active_power":5}}`))
	if dr.Matched {
		t.Fatalf("dry run matched at 5: %+v", dr)
	}
	expect(t, call(t, gw, "POST", "/api/v1/rules/peak_shave/dry-run", viewerKey, `{"values":{}}`), 422, "missing_value")
	expect(t, call(t, gw, "POST", "/api/v1/rules/peak_shave/dry-run", viewerKey, `{"values":{"pcs1.active_power":"high"}}`), 400, "bad_request")
	expect(t, call(t, gw, "POST", "/api/v1/rules/ghost/dry-run", viewerKey, `{"values":{}}`), 404, "unknown_rule")

	expect(t, call(t, gw, "POST", "/api/v1/rules/peak_shave/disable", adminKey, nil), 200, "")
	if r := decode[rule.Spec](t, call(t, gw, "GET", "/api/v1/rules/peak_shave", viewerKey, nil)); !r.Disabled {
		t.Fatalf("not disabled: %+v", r)
	}
	expect(t, call(t, gw, "POST", "/api/v1/rules/peak_shave/enable", adminKey, nil), 200, "")
	expect(t, call(t, gw, "POST", "/api/v1/rules/ghost/enable", adminKey, nil), 404, "unknown_rule")
	expect(t, call(t, gw, "PUT", "/api/v1/rules/soc_guard", adminKey, `{"condition":"bms1.soc < 5","actions":[{"type":"log","message":"low"}]}`), 200, "")
	if r := decode[rule.Spec](t, call(t, gw, "GET", "/api/v1/rules/soc_guard", viewerKey, nil)); r.Condition != "bms1.soc < 5" {
		t.Fatalf("update: %+v", r)
	}
	if _, err := fs.rules.Process(context.Background(), []model.Sample{{Point: "pcs1.active_power", Value: 50, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	gw.Invalidate(TagRules)
	st := decode[rule.Stats](t, call(t, gw, "GET", "/api/v1/rules/peak_shave/stats", viewerKey, nil))
	if st.Evaluations != 1 || st.Matches != 1 {
		t.Fatalf("stats %+v", st)
	}
	if all := decode[statsList](t, call(t, gw, "GET", "/api/v1/rule-stats", viewerKey, nil)); all.Count != 2 {
		t.Fatalf("all stats %+v", all)
	}
	expect(t, call(t, gw, "DELETE", "/api/v1/rules/soc_guard", adminKey, nil), 204, "")
	expect(t, call(t, gw, "GET", "/api/v1/rules/soc_guard", viewerKey, nil), 404, "unknown_rule")
}

func TestHistory(t *testing.T) {
	fs := newFullSite(t)
	gw := fs.server(t, WithCache(CacheConfig{TTL: time.Hour}))
	base := "/api/v1/history?points=pcs1.active_power&from=2026-01-02T03:00:00Z&to=2026-01-02T03:02:00Z"
	res := decode[historyResult](t, call(t, gw, "GET", base+"&step=1m&agg=avg", viewerKey, nil))
	if len(res.Series) != 1 || len(res.Series[0].Points) != 2 || res.Series[0].Points[0].Value != 29.5 || res.Series[0].Points[1].Value != 89.5 {
		t.Fatalf("avg: %+v", res)
	}
	raw := decode[historyResult](t, call(t, gw, "GET", base+"&to=2026-01-02T03:00:03Z", viewerKey, nil))
	_ = raw
	w := call(t, gw, "GET", "/api/v1/history?points=pcs1.active_power&from=1767322800&to=1767322803&format=csv", viewerKey, nil)
	want := "point,time,value,quality\npcs1.active_power,2026-01-02T03:00:00Z,0,good\npcs1.active_power,2026-01-02T03:00:01Z,1,good\npcs1.active_power,2026-01-02T03:00:02Z,2,good\n"
	if w.Code != 200 || w.Body.String() != want || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("csv %d %q", w.Code, w.Body)
	}
	call(t, gw, "GET", base+"&step=1m&agg=max", viewerKey, nil) // cached as JSON
	req := httptest.NewRequest("GET", base+"&step=1m&agg=max", nil)
	req.Header.Set("X-API-Key", viewerKey)
	req.Header.Set("Accept", "text/csv")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "pcs1.active_power,2026-01-02T03:01:00Z,119,good") {
		t.Fatalf("Accept csv: %s", rec.Body)
	}
	// Nothing matches: empty result, not an error.
	if r := decode[historyResult](t, call(t, gw, "GET", "/api/v1/history?points=nothing.*", viewerKey, nil)); len(r.Series) != 0 {
		t.Fatalf("%+v", r)
	}
	for _, q := range []string{
		"?points=pcs1.active_power&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
		"?points=pcs1.active_power&agg=median&step=1m",
		"?points=pcs1.active_power&agg=avg",
		"?points=pcs1.active_power&step=0s&agg=avg",
		"?points=pcs1.active_power&step=1x",
		"?points=pcs1.active_power&format=xml",
		"?points=",
		"?points=../x",
		"?points=a[",
		"?points=pcs1.active_power&from=tomorrow",
	} {
		w := call(t, gw, "GET", "/api/v1/history"+q, viewerKey, nil)
		if w.Code != 400 {
			t.Errorf("%s: %d %s", q, w.Code, w.Body)
			continue
		}
		errBody(t, w)
	}
	w = call(t, gw, "GET", "/api/v1/history?points=pcs1.active_power&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", viewerKey, nil)
	if e := errBody(t, w); !strings.Contains(e.Error, "from 2026-02-01T00:00:00Z is after to 2026-01-01T00:00:00Z") {
		t.Fatalf("message %q", e.Error)
	}
	w = call(t, gw, "GET", "/api/v1/history?points=pcs1.active_power&agg=median&step=1m", viewerKey, nil)
	if e := errBody(t, w); !strings.Contains(e.Error, `agg "median" is unknown`) {
		t.Fatalf("message %q", e.Error)
	}
}

// slowHistory blocks until its context ends, like a remote store that
// stopped answering.
type slowHistory struct{}

func (slowHistory) Query(ctx context.Context, q history.Query) ([]history.Series, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestHistoryCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newTestServer(t, newSite(), WithHistory(slowHistory{}), WithBreaker(BreakerConfig{Failures: 2, CallTimeout: 3 * time.Second, Open: time.Minute}))
		for range 2 {
			expect(t, call(t, gw, "GET", "/api/v1/history?points=x", viewerKey, nil), 504, "timeout")
		}
		start := time.Now()
		expect(t, call(t, gw, "GET", "/api/v1/history?points=x", viewerKey, nil), 503, "unavailable")
		if time.Since(start) != 0 {
			t.Fatal("open breaker did not fail fast")
		}
	})
}

// downHistory fails like a remote store whose link is down.
type downHistory struct{ calls int }

func (d *downHistory) Query(ctx context.Context, q history.Query) ([]history.Series, error) {
	d.calls++
	return nil, context.DeadlineExceeded
}

func TestHistoryBreakerFailsFast(t *testing.T) {
	fs := newFullSite(t)
	down := &downHistory{}
	gw := newTestServer(t, fs.site, WithHistory(down, fs.hist), WithBreaker(BreakerConfig{Failures: 1, Open: time.Hour}))
	codes := []int{}
	for range 4 {
		codes = append(codes, call(t, gw, "GET", "/api/v1/history?points=pcs1.active_power", viewerKey, nil).Code)
	}
	// First the down replica times out (504) and its breaker opens; every
	// later query goes to the healthy replica.
	if codes[0] != 504 || codes[1] != 200 || codes[2] != 200 || codes[3] != 200 || down.calls != 1 {
		t.Fatalf("codes %v, calls to the down replica %d", codes, down.calls)
	}
}

// readOnly hides every optional capability of the real engines.
type readOnlyAlarms struct{ Alarms }
type readOnlyRules struct{ r *rule.Runner }

func (r readOnlyRules) Rules() []rule.Spec                { return r.r.Rules() }
func (r readOnlyRules) Rule(id string) (rule.Spec, error) { return r.r.Rule(id) }

func TestMissingCapabilitiesAre501(t *testing.T) {
	fs := newFullSite(t)
	gw := newTestServer(t, fs.site, WithAlarms(readOnlyAlarms{fs.alarms}), WithRules(readOnlyRules{fs.rules}))
	expect(t, call(t, gw, "GET", "/api/v1/alarms", viewerKey, nil), 200, "")
	expect(t, call(t, gw, "GET", "/api/v1/rules", viewerKey, nil), 200, "")
	for _, c := range []struct{ method, target, body string }{
		{"POST", "/api/v1/alarms/pcs1.power.h/ack", ""},
		{"GET", "/api/v1/alarm-definitions", ""},
		{"POST", "/api/v1/rules", `{"id":"x","condition":"true"}`},
		{"POST", "/api/v1/rules/peak_shave/enable", ""},
		{"POST", "/api/v1/rules/peak_shave/dry-run", `{"values":{}}`},
		{"GET", "/api/v1/rule-stats", ""},
		{"GET", "/api/v1/history?points=x", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		w := call(t, gw, c.method, c.target, adminKey, body)
		if w.Code != 501 || errBody(t, w).Code != "not_configured" {
			t.Errorf("%s %s: %d %s", c.method, c.target, w.Code, w.Body)
		}
	}
}

func TestInvalidateEvent(t *testing.T) {
	fs := newFullSite(t)
	gw := fs.server(t, WithCache(CacheConfig{TTL: time.Hour}))
	count := func() int {
		return decode[alarmList](t, call(t, gw, "GET", "/api/v1/alarms", viewerKey, nil)).Count
	}
	if n := count(); n != 1 {
		t.Fatal(n)
	}
	evs, err := fs.alarms.Process(context.Background(), []model.Sample{{Point: "bms1.soc", Value: 5, Time: time.Now()}})
	if err != nil || len(evs) == 0 {
		t.Fatal(evs, err)
	}
	if n := count(); n != 1 {
		t.Fatalf("cache not used: %d", n)
	}
	gw.InvalidateEvent(model.Event{Kind: model.EventRuleFired})
	if n := count(); n != 1 {
		t.Fatalf("rule event invalidated alarms: %d", n)
	}
	for _, e := range evs {
		gw.InvalidateEvent(e)
	}
	if n := count(); n != 2 {
		t.Fatalf("after the alarm events: %d alarms", n)
	}
}
