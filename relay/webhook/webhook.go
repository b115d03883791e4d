package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/voltage-ems/ems/relay"
)

// Header names of the signature.
const (
	HeaderSignature = "X-EMS-Signature"
	HeaderTimestamp = "X-EMS-Timestamp"
)

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook: bad signature")
	ErrStale        = errors.New("webhook: timestamp outside the allowed window")
)

// StatusError is returned for a non-2xx answer.
type StatusError struct {
	Code int
	Body string // at most 512 bytes of the answer
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook: HTTP %d: %s", e.Code, e.Body)
}

// Adapter posts batches. It implements relay.Adapter.
type Adapter struct {
	url         string
	client      *http.Client
	secret      []byte
	timeout     time.Duration
	attempts    int
	backoff     time.Duration
	contentType string
	headers     http.Header
	now         func() time.Time
	body        bytes.Buffer
}

var _ relay.Adapter = (*Adapter)(nil)

// Option configures an Adapter.
type Option func(*Adapter) error

// WithSecret signs requests with HMAC-SHA256 under secret.
func WithSecret(secret []byte) Option {
	return func(a *Adapter) error {
		if len(secret) == 0 {
			return errors.New("webhook: WithSecret: empty secret")
		}
		a.secret = append([]byte(nil), secret...)
		return nil
	}
}

// WithTimeout bounds one request (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(a *Adapter) error {
		if d <= 0 {
			return fmt.Errorf("webhook: WithTimeout(%v): want > 0", d)
		}
		a.timeout = d
		return nil
	}
}

// WithRetry sets the attempts per Send (default 3) and the first wait
// between them (default 200ms, doubling).
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(a *Adapter) error {
		if attempts < 1 || backoff < 0 {
			return fmt.Errorf("webhook: WithRetry(%d, %v): want attempts >= 1, backoff >= 0", attempts, backoff)
		}
		a.attempts, a.backoff = attempts, backoff
		return nil
	}
}

// WithContentType sets the Content-Type (default "application/x-ndjson").
func WithContentType(ct string) Option {
	return func(a *Adapter) error { a.contentType = ct; return nil }
}

// WithHeader adds a header to every request (an API key, for instance).
func WithHeader(key, value string) Option {
	return func(a *Adapter) error { a.headers.Add(key, value); return nil }
}

// WithHTTPClient uses c (for TLS settings or a proxy). Default: a client
// without redirects to other hosts.
func WithHTTPClient(c *http.Client) Option {
	return func(a *Adapter) error {
		if c == nil {
			return errors.New("webhook: WithHTTPClient: nil client")
		}
		a.client = c
		return nil
	}
}

// New returns an adapter posting to rawURL (http or https).
func New(rawURL string, opts ...Option) (*Adapter, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: New: URL %q: want http(s)://host/path", rawURL)
	}
	a := &Adapter{url: rawURL, client: &http.Client{}, timeout: 10 * time.Second, attempts: 3, backoff: 200 * time.Millisecond,
		contentType: "application/x-ndjson", headers: http.Header{}, now: time.Now}
	var errs []error
	for _, o := range opts {
		if err := o(a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Sign returns the signature header value for body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature (in constant time) and that its
// timestamp is within maxAge of now. It returns ErrBadSignature or ErrStale.
func Verify(secret []byte, timestamp, signature string, body []byte, maxAge time.Duration, now time.Time) error {
	want := Sign(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return ErrStale
	}
	return nil
}

// Send posts the batch, retrying transient failures.
func (a *Adapter) Send(ctx context.Context, msgs []relay.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	a.body.Reset()
	for i := range msgs {
		a.body.Write(msgs[i].Payload)
		a.body.WriteByte('\n')
	}
	body := a.body.Bytes()
	wait := a.backoff
	var err error
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = a.post(ctx, body)
		if err == nil {
			return nil
		}
		if !retry {
			return relay.Permanent(err)
		}
		if attempt >= a.attempts || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait *= 2
	}
}

func (a *Adapter) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	for k, v := range a.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", a.contentType)
	if a.secret != nil {
		ts := strconv.FormatInt(a.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(a.secret, ts, body))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook: post: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, se
	}
	return false, se
}
