package rule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"encoding/json"
)

// ErrWebhookQueueFull is the error of a webhook action that found the queue full.
var ErrWebhookQueueFull = errors.New("rule: webhook queue full")

type hookJob struct {
	spec  ActionSpec
	body  string
	rule  string
	stats *ruleStats
}

// hookPool calls webhooks from one background goroutine, so that Process never
// waits for an HTTP server. It stops on close.
type hookPool struct {
	client  *http.Client
	log     *slog.Logger
	jobs    chan hookJob
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
	dropped atomic.Uint64
}

func newHookPool(c *http.Client, n int, log *slog.Logger) *hookPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &hookPool{client: c, log: log, jobs: make(chan hookJob, n), ctx: ctx, cancel: cancel}
	p.wg.Go(p.run)
	return p
}

func (p *hookPool) enqueue(j hookJob) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return ErrClosed
	}
	select {
	case p.jobs <- j:
		return nil
	default:
		p.dropped.Add(1)
		return ErrWebhookQueueFull
	}
}

func (p *hookPool) close() {
	p.mu.Lock()
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

func (p *hookPool) run() {
	for j := range p.jobs {
		if p.ctx.Err() != nil {
			p.dropped.Add(1)
			continue
		}
		if err := p.call(j); err != nil {
			j.stats.actFail.Add(1)
			p.log.Warn("rule webhook failed", "rule", j.rule, "url", j.spec.URL, "err", err)
		} else {
			j.stats.actOK.Add(1)
		}
	}
}

func (p *hookPool) call(j hookJob) error {
	timeout := j.spec.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	retries := j.spec.Retries
	if retries == 0 {
		retries = 2
	}
	method := j.spec.Method
	if method == "" {
		method = http.MethodPost
	}
	backoff := 200 * time.Millisecond
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return p.ctx.Err()
			case <-t.C:
			}
			backoff *= 2
		}
		err = p.once(method, j, timeout)
		if err == nil || errors.Is(err, errPermanent) {
			return err
		}
	}
	return err
}

var errPermanent = errors.New("permanent")

func (p *hookPool) once(method string, j hookJob, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, j.spec.URL, strings.NewReader(j.body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook %s: status %d", j.spec.URL, resp.StatusCode)
	}
	return fmt.Errorf("%w: webhook %s: status %d", errPermanent, j.spec.URL, resp.StatusCode)
}

// defaultBody is the JSON document a webhook sends when it has no body template:
// the rule, the time, the partition key and the values the rule's condition reads.
func defaultBody(rule, key string, now time.Time, cr *crule, st *store) string {
	vals := map[string]float64{}
	var refs []int32
	if cr.cond != nil {
		refs = cr.cond.rw.refs
	}
	for k, sl := range refs {
		if int(sl) < len(st.meta) && st.valid(sl) {
			vals[cr.cond.rw.names[varName(k)]] = st.val[sl]
		}
	}
	b, _ := json.Marshal(struct {
		Rule   string             `json:"rule"`
		Key    string             `json:"key,omitempty"`
		Time   time.Time          `json:"time"`
		Values map[string]float64 `json:"values,omitempty"`
	}{rule, key, now, vals})
	return string(b)
}
