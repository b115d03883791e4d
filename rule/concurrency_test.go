package rule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// manyRules builds n change-triggered rules; rule i reads p<i%points> and p<(i*7)%points>
// and sets c<i> to an expression of them, with priorities that collide on purpose.
func manyRules(n, points int) []rule.Spec {
	specs := make([]rule.Spec, n)
	for i := range specs {
		a, b := fmt.Sprintf("p%d.v", i%points), fmt.Sprintf("p%d.v", (i*7)%points)
		specs[i] = rule.Spec{
			ID:        fmt.Sprintf("r%05d", i),
			Priority:  i % 5,
			Condition: fmt.Sprintf("%s + %s > %d", a, b, i%50),
			Actions:   []rule.ActionSpec{{Type: rule.ActionSet, Point: fmt.Sprintf("c%d.v", i), Value: a + " - " + b}},
			Else:      []rule.ActionSpec{{Type: rule.ActionLog, Message: "clear"}},
		}
	}
	return specs
}

func batches(rounds, size, points int) [][]model.Sample {
	out := make([][]model.Sample, rounds)
	x := uint32(1)
	for r := range out {
		b := make([]model.Sample, size)
		for i := range b {
			x = x*1664525 + 1013904223
			b[i] = model.Sample{Point: fmt.Sprintf("p%d.v", int(x>>8)%points), Value: float64(x>>20) / 100}
		}
		out[r] = b
	}
	return out
}

func trace(t *testing.T, workers int, specs []rule.Spec, bs [][]model.Sample) []string {
	r, err := rule.New(rule.WithRules(specs...), rule.WithWorkers(workers), rule.WithBudget(time.Minute)) // wall-clock budgets are not deterministic on a loaded machine
	require.NoError(t, err)
	defer r.Close()
	var out []string
	for _, b := range bs {
		acts, err := r.Process(context.Background(), b)
		require.NoError(t, err)
		for _, a := range acts {
			s := a.Rule + ":" + string(a.Type)
			if a.Command != nil {
				s += fmt.Sprintf(" %s=%g %s", a.Command.Point, a.Command.Value, a.Command.ID)
			}
			out = append(out, s)
		}
	}
	return out
}

func TestParallelWorkersAreDeterministic(t *testing.T) {
	specs := manyRules(3000, 500)
	bs := batches(20, 400, 500)
	one := trace(t, 1, specs, bs)
	require.Greater(t, len(one), 1000, "the workload must fire rules")
	four := trace(t, 4, specs, bs)
	assert.Equal(t, one, four)
	// outcomes are in priority order within a batch: the first actions of the first batch
	// come from priority-4 rules
	var first int
	_, err := fmt.Sscanf(one[0], "r%05d:", &first)
	require.NoError(t, err)
	assert.Equal(t, 4, first%5, one[0])
}

func TestHotReloadUnderLoad(t *testing.T) {
	specs := manyRules(500, 200)
	r, err := rule.New(rule.WithRules(specs...), rule.WithWorkers(2))
	require.NoError(t, err)
	defer r.Close()
	bs := batches(50, 300, 200)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if i == 10 {
				close(started)
			}
			if _, err := r.Process(ctx, bs[i%len(bs)]); err != nil {
				t.Error(err)
				return
			}
			if _, err := r.Tick(ctx, time.Now()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range 40 {
		id := fmt.Sprintf("new%d", i)
		require.NoError(t, r.Add(rule.Spec{ID: id, Condition: "p1.v > 3", Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "x"}}}))
		up := specs[i]
		up.Condition = "p1.v > 1000"
		require.NoError(t, r.Update(up))
		bad := specs[i+1]
		bad.Condition = "p1.v > > 1"
		require.ErrorIs(t, r.Update(bad), rule.ErrInvalidRule)
		require.ErrorIs(t, r.Add(rule.Spec{ID: "bad", Condition: "nope(", Actions: up.Actions}), rule.ErrInvalidRule)
		require.NoError(t, r.Remove(id))
		_ = r.Stats()
		_, _ = r.DryRun(specs[i+2].ID, map[string]float64{"p1.v": 1, "p2.v": 2})
	}
	<-started
	cancel()
	wg.Wait()
	got := r.Rules()
	require.Len(t, got, 500)
	s, err := r.Rule(specs[1].ID)
	require.NoError(t, err)
	assert.Equal(t, "p1.v > 1000", s.Condition, "updated and not replaced by the rejected update")
	s, err = r.Rule(specs[45].ID)
	require.NoError(t, err)
	assert.Equal(t, specs[45].Condition, s.Condition, "the rejected update left the old rule")
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := harness(t, `rules:
  - {id: r, condition: a.x > 1, actions: [{set: {point: a.c, value: "1"}}]}
`, rule.WithMetrics(reg), rule.WithExecutor(&executor{fail: map[string]bool{"a.c": true}}))
	h.Set("a.x", 0)
	h.Set("a.x", 2)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					name += "/" + l.GetValue()
				}
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, 2.0, got["ems_rule_evaluations_total"])
	assert.Equal(t, 1.0, got["ems_rule_matches_total"])
	assert.Equal(t, 1.0, got["ems_rule_actions_total/failure"])
	assert.Equal(t, 0.0, got["ems_rule_actions_total/success"])
	st := h.R.Stats()
	require.Len(t, st, 1)
	assert.Equal(t, uint64(2), st[0].Evaluations)
	assert.False(t, st[0].LastFired.IsZero())
	// a second engine on the same registry is refused
	_, err = rule.New(rule.WithMetrics(reg))
	assert.Error(t, err)
}

func TestWebhookRetriesAndStops(t *testing.T) {
	var calls atomic.Int32
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + string(b)
	}))
	defer srv.Close()
	h := harness(t, fmt.Sprintf(`rules:
  - id: hook
    condition: a.x > 1
    actions: [{webhook: {url: "%s/x", retries: 2, timeout: 2s}}]
  - id: templated
    condition: a.x > 5
    actions: [{webhook: {url: "%s/y", method: PUT, body: "x={{ a.x }}"}}]
`, srv.URL, srv.URL))
	acts := h.Set("a.x", 2)
	require.Len(t, acts, 1)
	assert.Equal(t, rule.ActionWebhook, acts[0].Type)
	select {
	case body := <-got:
		assert.True(t, strings.HasPrefix(body, `POST {"rule":"hook",`), body)
		assert.Contains(t, body, `"values":{"a.x":2}`)
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not called")
	}
	h.Set("a.x", 6)
	select {
	case body := <-got:
		assert.Equal(t, "PUT x=6", body)
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not called")
	}
	assert.Equal(t, int32(3), calls.Load(), "one retry after the 503")
	require.NoError(t, h.R.Close())
	// after Close no goroutine is left (checked by goleak in TestMain)
}

func TestWebhookQueueFull(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	h := harness(t, fmt.Sprintf(`rules:
  - id: hook
    condition: a.x > 1
    actions: [{webhook: {url: "%s", timeout: 30s}}]
`, srv.URL), rule.WithWebhookQueue(1))
	var failed int
	for i := range 6 {
		h.Set("a.x", 0)
		for _, a := range h.Set("a.x", float64(2+i)) {
			if a.Err != nil {
				assert.ErrorIs(t, a.Err, rule.ErrWebhookQueueFull)
				failed++
			}
		}
	}
	assert.GreaterOrEqual(t, failed, 4, "one call in flight, one queued, the rest refused")
	st, _ := h.R.RuleStats("hook")
	assert.Equal(t, uint64(failed), st.ActionFailures)
	require.NoError(t, h.R.Close()) // cancels the call in flight
}
