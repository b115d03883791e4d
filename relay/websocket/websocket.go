package websocket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	ws "github.com/coder/websocket"

	"github.com/voltage-ems/ems/relay"
)

// Adapter pushes relay messages over a WebSocket connection. It implements
// relay.Adapter, relay.Connector and relay.Closer.
type Adapter struct {
	url     string
	header  http.Header
	binary  bool
	timeout time.Duration

	mu     sync.Mutex
	conn   *ws.Conn
	alive  context.Context // done when conn was seen closing
	closed bool
	dials  int
}

var (
	_ relay.Adapter   = (*Adapter)(nil)
	_ relay.Connector = (*Adapter)(nil)
	_ relay.Closer    = (*Adapter)(nil)
)

// Option configures an Adapter.
type Option func(*Adapter) error

// WithHeader adds a header to the opening handshake (Authorization, ...).
func WithHeader(key, value string) Option {
	return func(a *Adapter) error { a.header.Add(key, value); return nil }
}

// WithBinary sends binary frames instead of text frames.
func WithBinary() Option { return func(a *Adapter) error { a.binary = true; return nil } }

// WithDialTimeout bounds the opening handshake (default 10s).
func WithDialTimeout(d time.Duration) Option {
	return func(a *Adapter) error {
		if d <= 0 {
			return fmt.Errorf("websocket: WithDialTimeout(%v): want > 0", d)
		}
		a.timeout = d
		return nil
	}
}

// New returns an adapter for a ws:// or wss:// URL. It does not connect.
func New(rawURL string, opts ...Option) (*Adapter, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("websocket: New: URL %q: want ws(s)://host/path", rawURL)
	}
	a := &Adapter{url: rawURL, header: http.Header{}, timeout: 10 * time.Second}
	var errs []error
	for _, o := range opts {
		if err := o(a); err != nil {
			errs = append(errs, err)
		}
	}
	return a, errors.Join(errs...)
}

// Connect dials the server (when not connected).
func (a *Adapter) Connect(ctx context.Context) error {
	_, _, err := a.connection(ctx)
	return err
}

// Dials returns how many connections were opened (1 + reconnections).
func (a *Adapter) Dials() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dials
}

func (a *Adapter) connection(ctx context.Context) (*ws.Conn, context.Context, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, relay.ErrClosed
	}
	if a.conn != nil && a.alive.Err() == nil {
		return a.conn, a.alive, nil
	}
	if a.conn != nil {
		a.conn.CloseNow()
		a.conn = nil
	}
	dctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	c, resp, err := ws.Dial(dctx, a.url, &ws.DialOptions{HTTPHeader: a.header})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial %s: %w", a.url, err)
	}
	// Nothing is read from the server; CloseRead handles pings and the
	// close handshake and cancels alive when the connection ends.
	a.alive = c.CloseRead(context.Background())
	a.conn = c
	a.dials++
	return c, a.alive, nil
}

// Send writes one frame per message, reconnecting first when the
// connection was lost. A failed write closes the connection and fails the
// batch.
func (a *Adapter) Send(ctx context.Context, msgs []relay.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c, alive, err := a.connection(ctx)
	if err != nil {
		return err
	}
	typ := ws.MessageText
	if a.binary {
		typ = ws.MessageBinary
	}
	for i := range msgs {
		if alive.Err() != nil {
			return errors.New("websocket: connection closed by the server")
		}
		if err := c.Write(ctx, typ, msgs[i].Payload); err != nil {
			c.CloseNow()
			return fmt.Errorf("websocket: write: %w", err)
		}
	}
	return nil
}

// Close closes the connection with a normal closure. It is idempotent.
func (a *Adapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.conn != nil {
		err := a.conn.Close(ws.StatusNormalClosure, "relay closed")
		a.conn = nil
		if err != nil && !errors.Is(err, context.Canceled) {
			var ce ws.CloseError
			if !errors.As(err, &ce) {
				return nil // the peer went away first: nothing to report
			}
		}
	}
	return nil
}
