package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// checkResponse asserts what every response to hostile input must satisfy:
// never a 5xx, and a 4xx always carries the {error, code, time} body.
func checkResponse(t *testing.T, w *httptest.ResponseRecorder, what string) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, w.Code, w.Body)
	}
	if w.Code >= 400 {
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" || e.Time == "" {
			t.Fatalf("%s: status %d with a bad error body %q", what, w.Code, w.Body)
		}
	}
}

// FuzzCommandBody posts arbitrary bytes as a command: a 4xx with a clear
// body, or exactly one executed command, never a 500.
func FuzzCommandBody(f *testing.F) {
	for _, s := range []string{
		`{"point":"pcs1.power_setpoint","value":10}`,
		`{"point":"pcs1.start","value":1,"id":"c-1"}`,
		`{"point":"pcs1.power_setpoint","value":1e308}`,
		`{"point":"","value":1}`, `{"value":null}`, `null`, `[]`, `"x"`, `{"point":"a","value":1}{}`,
	} {
		f.Add([]byte(s))
	}
	s := newSite()
	gw := newTestServer(f, s, WithBodyLimit(4096))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := s.execs.Load()
		w := call(t, gw, "POST", "/api/v1/commands", operatorKey, body)
		checkResponse(t, w, "POST /commands "+string(body))
		after := s.execs.Load()
		if w.Code == 200 && after != before+1 || w.Code != 200 && after != before {
			t.Fatalf("status %d but %d commands executed", w.Code, after-before)
		}
	})
}

// FuzzRuleAndAlarmBodies posts arbitrary bytes to the rule and alarm
// definition endpoints of the real engines.
func FuzzRuleAndAlarmBodies(f *testing.F) {
	for _, s := range []string{
		`{"id":"r9","condition":"bms1.soc < 10","actions":[{"type":"log","message":"x"}]}`,
		`{"id":"r9","trigger":{"kind":"interval","every":1000000000},"condition":"true"}`,
		`{"id":"d9","point":"bms1.soc","limits":{"h":{"value":1}}}`,
		`{"id":"d9","point":"bms1.soc","discrete":{"value":1}}`,
		`{"values":{"pcs1.active_power":1}}`,
		`{"id":"../..","condition":"1"}`,
	} {
		f.Add([]byte(s))
	}
	fs := newFullSite(f)
	gw := fs.server(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range []string{"/api/v1/rules", "/api/v1/alarm-definitions", "/api/v1/rules/peak_shave/dry-run"} {
			w := call(t, gw, "POST", target, adminKey, body)
			checkResponse(t, w, "POST "+target+" "+string(body))
			if w.Code == 201 {
				var v struct{ ID string }
				_ = json.Unmarshal(w.Body.Bytes(), &v)
				call(t, gw, "DELETE", target+"/"+v.ID, adminKey, nil)
			}
		}
	})
}

// FuzzQueryParams sends arbitrary raw query strings and path ids.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{
		"pattern=pcs1.*&quality=good&limit=10",
		"points=pcs1.active_power&from=2026-01-02T03:00:00Z&to=2026-01-02T03:02:00Z&step=1m&agg=avg",
		"points=a,b*&from=100&to=50", "from=%zz", "limit=99999999999999999999",
		"state=acked&min_priority=high&all=true", "events=alarm.&include=events",
		"points=pcs1.active_power&agg=avg&step=1ns",
		"include=events&ticket=AAAAAAAAAAAAAAAAAAAAAA", "ticket=a&ticket=b",
	} {
		f.Add(s, "pcs1.active_power")
	}
	f.Add("", "..%2f..%2fetc")
	f.Add("x=\x00", "a\x7fb")
	fs := newFullSite(f)
	gw := fs.server(f, WithCache(CacheConfig{TTL: 1}))
	f.Fuzz(func(t *testing.T, rawQuery, id string) {
		if strings.Contains(id, "/") {
			return // another route
		}
		for _, path := range []string{"/api/v1/points", "/api/v1/history", "/api/v1/alarm-history", "/api/v1/alarms", "/api/v1/snapshot", "/api/v1/points/" + id, "/api/v1/alarms/" + id, "/api/v1/rules/" + id + "/stats"} {
			// Set the URL fields directly: more hostile than what net/http's
			// request parser would let through.
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, rawQuery
			req.RequestURI = req.URL.RequestURI()
			req.Header.Set("X-API-Key", viewerKey)
			w := httptest.NewRecorder()
			gw.ServeHTTP(w, req)
			checkResponse(t, w, path+"?"+rawQuery)
		}
		// The stream filter (the stream itself runs until the client leaves).
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.RawQuery = rawQuery
		if _, err := gw.parseStreamFilter(req); err != nil {
			if st, _ := StatusOf(err); st != 400 && st != 501 {
				t.Fatalf("stream filter %q: status %d: %v", rawQuery, st, err)
			}
		}
	})
}
