package ems_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/model"
)

// TestGatewayThroughEMS serves the API of a running EMS on a free loopback
// port: reads see the snapshot, commands go through Execute (validated,
// routed, written to the simulator), alarms and history answer from the
// default components, roles are enforced, and /metrics shows the EMS's own
// metrics.
func TestGatewayThroughEMS(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, sim := newSite(t, ems.WithMetrics(reg), ems.WithGateway("127.0.0.1:0",
		gateway.WithAPIKey("viewer", "view-secret-0123456789", gateway.RoleViewer),
		gateway.WithAPIKey("operator", "op-secret-0123456789", gateway.RoleOperator)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + e.GatewayAddr()
	if err := e.Publish(ctx, []model.Sample{{Point: "ext.T.2", Value: 42.5}}); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, key, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := do("GET", "/api/v1/points/ext.T.2", "view-secret-0123456789", "")
	var smp model.Sample
	if code != 200 || json.Unmarshal([]byte(body), &smp) != nil || smp.Value != 42.5 {
		t.Fatalf("GET point: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/v1/points/bat1.soc", "", ""); code != 401 {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := do("POST", "/api/v1/commands", "view-secret-0123456789", `{"point":"bat1.power_setpoint","value":100}`); code != 403 {
		t.Errorf("viewer command: %d, want 403", code)
	}
	if code, body := do("POST", "/api/v1/commands", "op-secret-0123456789", `{"point":"bat1.power_setpoint","value":100}`); code != 200 {
		t.Fatalf("operator command: %d %s", code, body)
	}
	if v, _ := sim.Value("bess.A.1"); v != 100 {
		t.Fatalf("device setpoint = %g, want 100", v)
	}
	code, body = do("POST", "/api/v1/commands", "op-secret-0123456789", `{"point":"bat1.power_setpoint","value":9999}`)
	if code < 400 || code >= 500 || !strings.Contains(body, "out of range") {
		t.Errorf("out-of-range command: %d %s, want 4xx naming the range", code, body)
	}
	if v, _ := sim.Value("bess.A.1"); v != 100 {
		t.Fatalf("rejected command reached the device: %g", v)
	}
	if code, body := do("GET", "/api/v1/alarms", "view-secret-0123456789", ""); code != 200 {
		t.Errorf("alarms: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/rules", "view-secret-0123456789", ""); code != 200 {
		t.Errorf("rules: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/history?points=bat1.soc&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&step=1h&agg=avg", "view-secret-0123456789", ""); code != 200 {
		t.Errorf("history: %d %s", code, body)
	}
	if code, body := do("GET", "/readyz", "", ""); code != 200 {
		t.Errorf("readyz: %d %s", code, body)
	}
	if code, body := do("GET", "/metrics", "view-secret-0123456789", ""); code != 200 || !strings.Contains(body, "ems_samples_in_total") || !strings.Contains(body, `ems_commands_total{result="executed"} 1`) {
		t.Errorf("metrics: %d, ems metrics missing", code)
	}
}
