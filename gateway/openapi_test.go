package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIValid validates the embedded document with kin-openapi, which
// understands OpenAPI 3.1 (type arrays, JSON Schema 2020-12) since v0.13x.
func TestOpenAPIValid(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestEveryRouteDocumented checks both directions: every route of the
// server is in the document with the same role, and every documented
// operation is served.
func TestEveryRouteDocumented(t *testing.T) {
	doc := loadDoc(t)
	gw := newTestServer(t, newSite())
	served := map[string]bool{}
	for _, rt := range gw.routes {
		key := strings.ToLower(rt.Method) + " " + rt.full
		served[key] = true
		item := doc.Paths.Find(rt.full)
		if item == nil {
			t.Errorf("route %s %s is not documented", rt.Method, rt.full)
			continue
		}
		op := item.GetOperation(rt.Method)
		if op == nil {
			t.Errorf("route %s %s: method not documented", rt.Method, rt.full)
			continue
		}
		if role, _ := op.Extensions["x-role"].(string); role != rt.Role.String() {
			t.Errorf("route %s %s: documented role %q, served with %s", rt.Method, rt.full, role, rt.Role)
		}
		if rt.Role == RolePublic && (op.Security == nil || len(*op.Security) != 0) {
			t.Errorf("public route %s %s must have security: []", rt.Method, rt.full)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[strings.ToLower(method)+" "+path] {
				t.Errorf("documented %s %s is not served", method, path)
			}
		}
	}
}

// TestResponsesMatchDocument sends real requests (good and bad) to a
// gateway over the real engines and validates each request and response
// against the document.
func TestResponsesMatchDocument(t *testing.T) {
	doc := loadDoc(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	fs := newFullSite(t)
	gw := fs.server(t)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	cases := []struct {
		method, target, key, body string
		status                    int
	}{
		{"GET", "/api/v1/points", viewerKey, "", 200},
		{"GET", "/api/v1/points?pattern=pcs1.*&quality=good&limit=5", viewerKey, "", 200},
		{"GET", "/api/v1/points?limit=0", viewerKey, "", 400},
		{"GET", "/api/v1/points/pcs1.active_power", viewerKey, "", 200},
		{"GET", "/api/v1/points/unknown.point", viewerKey, "", 404},
		{"GET", "/api/v1/snapshot", viewerKey, "", 200},
		{"POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":10}`, 200},
		{"POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.power_setpoint","value":1000}`, 422},
		{"POST", "/api/v1/commands", operatorKey, `{"point":"pcs1.active_power","value":1}`, 409},
		{"POST", "/api/v1/commands", viewerKey, `{"point":"pcs1.start","value":1}`, 403},
		{"GET", "/api/v1/points", "", "", 401},
		{"GET", "/api/v1/alarms", viewerKey, "", 200},
		{"GET", "/api/v1/alarms?all=true&state=unacked", viewerKey, "", 200},
		{"GET", "/api/v1/alarms/pcs1.power.h", viewerKey, "", 200},
		{"POST", "/api/v1/alarms/pcs1.power.h/ack", operatorKey, `{"comment":"seen"}`, 200},
		{"POST", "/api/v1/alarms/pcs1.power.h/ack", operatorKey, "", 409},
		{"POST", "/api/v1/alarms/pcs1.power.h/shelve", operatorKey, `{"one_shot":true}`, 200},
		{"POST", "/api/v1/alarms/pcs1.power.h/unshelve", operatorKey, `{"reason":"done"}`, 200},
		{"GET", "/api/v1/alarm-history?limit=10", viewerKey, "", 200},
		{"GET", "/api/v1/alarm-kpis", viewerKey, "", 200},
		{"GET", "/api/v1/alarm-definitions", viewerKey, "", 200},
		{"GET", "/api/v1/alarm-definitions/pcs1.power", viewerKey, "", 200},
		{"POST", "/api/v1/alarm-definitions", adminKey, `{"id":"d2","point":"bms1.soc","limits":{"h":{"value":99}}}`, 201},
		{"PUT", "/api/v1/alarm-definitions/d2", adminKey, `{"id":"d2","point":"bms1.soc","limits":{"h":{"value":98}}}`, 200},
		{"DELETE", "/api/v1/alarm-definitions/d2", adminKey, "", 204},
		{"GET", "/api/v1/rules", viewerKey, "", 200},
		{"GET", "/api/v1/rules/peak_shave", viewerKey, "", 200},
		{"POST", "/api/v1/rules", adminKey, `{"id":"r2","condition":"bms1.soc < 5","actions":[{"type":"log","message":"low"}]}`, 201},
		{"PUT", "/api/v1/rules/r2", adminKey, `{"id":"r2","condition":"bms1.soc < 6","actions":[{"type":"log","message":"low"}]}`, 200},
		{"POST", "/api/v1/rules/r2/disable", adminKey, "", 200},
		{"POST", "/api/v1/rules/r2/enable", adminKey, "", 200},
		{"POST", "/api/v1/rules/peak_shave/dry-run", viewerKey, `{"values":{"pcs1.active_power":50}}`, 200},
		{"GET", "/api/v1/rules/peak_shave/stats", viewerKey, "", 200},
		{"GET", "/api/v1/rule-stats", viewerKey, "", 200},
		{"DELETE", "/api/v1/rules/r2", adminKey, "", 204},
		{"GET", "/api/v1/history?points=pcs1.active_power&from=2026-01-02T03:00:00Z&to=2026-01-02T03:02:00Z&step=1m&agg=avg", viewerKey, "", 200},
		{"GET", "/api/v1/history?points=pcs1.active_power&from=2026-01-02T03:00:00Z&to=2026-01-02T03:00:05Z&format=csv", viewerKey, "", 200},
		{"GET", "/api/v1/history?points=pcs1.active_power&agg=median&step=1m", viewerKey, "", 400},
		{"POST", "/api/v1/stream/tickets", viewerKey, "", 201},
		{"POST", "/api/v1/stream/tickets", "", "", 401},
		{"GET", "/api/v1/stream?ticket=AAAAAAAAAAAAAAAAAAAAAA", "", "", 401},
		{"GET", "/api/v1/stream/ws?ticket=AAAAAAAAAAAAAAAAAAAAAA", "", "", 401},
		{"GET", "/api/v1/openapi.json", "", "", 200},
		{"GET", "/api/v1/docs", "", "", 200},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", viewerKey, "", 501},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req := httptest.NewRequest(c.method, c.target, body)
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.key != "" {
				req.Header.Set("X-API-Key", c.key)
			}
			w := httptest.NewRecorder()
			gw.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			vreq := httptest.NewRequest(c.method, "http://localhost"+c.target, strings.NewReader(c.body))
			if c.body != "" {
				vreq.Header.Set("Content-Type", "application/json")
			}
			route, params, err := router.FindRoute(vreq)
			if err != nil {
				t.Fatalf("document has no route: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
			if c.status < 400 {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Fatalf("request does not match the document: %v", err)
				}
			}
			o := opts
			if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				// kin-openapi has no HTML decoder: check status and content type only.
				o = &openapi3filter.Options{AuthenticationFunc: opts.AuthenticationFunc, IncludeResponseStatus: true, ExcludeResponseBody: true}
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(), Options: o}
			out.SetBodyBytes(bytes.Clone(w.Body.Bytes()))
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("response does not match the document: %v\n%s", err, w.Body)
			}
		})
	}
}

func TestDocsPageOffline(t *testing.T) {
	gw := newTestServer(t, newSite())
	w := call(t, gw, "GET", "/api/v1/docs", "", nil)
	page := w.Body.String()
	if w.Code != 200 || !strings.Contains(page, `fetch("openapi.json")`) {
		t.Fatalf("%d", w.Code)
	}
	for _, ext := range []string{"http://", "https://", "//cdn", "<link", "src="} {
		if strings.Contains(page, ext) {
			t.Errorf("docs page references %q: it must work offline", ext)
		}
	}
	if !slices.Contains(gw.Routes(), "GET /api/v1/docs") {
		t.Fatal(gw.Routes())
	}
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	req.Header.Set("If-None-Match", etagOf(openAPIDoc))
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("openapi.json revalidation: %d", rec.Code)
	}
}

// TestResponseValidationCatchesMismatch makes sure the check above can fail.
func TestResponseValidationCatchesMismatch(t *testing.T) {
	doc := loadDoc(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://localhost/api/v1/points/x", nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	for status, body := range map[int]string{
		200: `{"point":1,"value":2,"time":"2026-01-01T00:00:00Z","quality":"good"}`,
		404: `{"error":"x","code":"y"}`,
		418: `{"error":"x","code":"y","time":"2026-01-01T00:00:00Z"}`,
	} {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Options: opts}
		out.SetBodyBytes([]byte(body))
		if openapi3filter.ValidateResponse(context.Background(), out) == nil {
			t.Errorf("status %d body %s passed validation", status, body)
		}
	}
}

// TestOpenAPIValidatorRejectsBrokenDoc shows that the validation above
// checks 3.1 documents for real: broken copies of ours fail.
func TestOpenAPIValidatorRejectsBrokenDoc(t *testing.T) {
	for name, breakIt := range map[string]func(doc map[string]any){
		"bad type in a type array": func(doc map[string]any) {
			schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
			schemas["Sample"].(map[string]any)["properties"].(map[string]any)["value"] = map[string]any{"type": []any{"number", "nonsense"}}
		},
		"dangling $ref": func(doc map[string]any) {
			delete(doc["components"].(map[string]any)["schemas"].(map[string]any), "Sample")
		},
		"path parameter not declared": func(doc map[string]any) {
			op := doc["paths"].(map[string]any)["/api/v1/points/{id}"].(map[string]any)["get"].(map[string]any)
			delete(op, "parameters")
		},
	} {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
				t.Fatal(err)
			}
			breakIt(doc)
			raw, _ := json.Marshal(doc)
			d, err := openapi3.NewLoader().LoadFromData(raw)
			if err == nil {
				err = d.Validate(context.Background())
			}
			if err == nil {
				t.Fatal("broken document accepted")
			}
		})
	}
}
