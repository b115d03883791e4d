package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/voltage-ems/ems/relay"
)

// Node maps a point to an OPC UA variable.
type Node struct {
	NodeID string // "ns=2;s=PCS1.P", "i=1234", ...
	// Type is the variant type written: "double" (default), "float",
	// "int16", "int32", "int64", "uint16", "uint32", "bool" (value != 0).
	Type string
}

// Adapter writes sample values to an OPC UA server. It implements
// relay.Adapter, relay.Connector and relay.Closer.
type Adapter struct {
	endpoint string
	nodes    map[string]node
	extra    []opcua.Option
	timeout  time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	client *opcua.Client
	closed bool

	written, skipped, refused atomic.Uint64
}

type node struct {
	id   *ua.NodeID
	conv func(float64) (any, error)
}

var (
	_ relay.Adapter   = (*Adapter)(nil)
	_ relay.Connector = (*Adapter)(nil)
	_ relay.Closer    = (*Adapter)(nil)
)

// Option configures an Adapter.
type Option func(*Adapter) error

// WithClientOptions passes gopcua client options (security policy and
// mode, certificates, authentication). Default: security None, anonymous.
func WithClientOptions(opts ...opcua.Option) Option {
	return func(a *Adapter) error { a.extra = append(a.extra, opts...); return nil }
}

// WithLogger logs refused nodes. nil discards.
func WithLogger(l *slog.Logger) Option { return func(a *Adapter) error { a.log = l; return nil } }

// New validates the node map and returns an adapter. It does not connect.
func New(endpoint string, nodes map[string]Node, opts ...Option) (*Adapter, error) {
	if endpoint == "" {
		return nil, errors.New("opcua: New: empty endpoint")
	}
	if len(nodes) == 0 {
		return nil, errors.New("opcua: New: empty node map")
	}
	a := &Adapter{endpoint: endpoint, nodes: make(map[string]node, len(nodes)), timeout: 10 * time.Second}
	var errs []error
	for point, n := range nodes {
		id, err := ua.ParseNodeID(n.NodeID)
		if err != nil {
			errs = append(errs, fmt.Errorf("opcua: point %q: node id %q: %w", point, n.NodeID, err))
			continue
		}
		conv, err := converter(n.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("opcua: point %q: %w", point, err))
			continue
		}
		a.nodes[point] = node{id: id, conv: conv}
	}
	for _, o := range opts {
		if err := o(a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

func converter(typ string) (func(float64) (any, error), error) {
	ranged := func(lo, hi float64, f func(float64) any) func(float64) (any, error) {
		return func(v float64) (any, error) {
			if v != math.Trunc(v) || v < lo || v > hi {
				return nil, fmt.Errorf("value %v does not fit the node type %s", v, typ)
			}
			return f(v), nil
		}
	}
	switch typ {
	case "", "double":
		return func(v float64) (any, error) { return v, nil }, nil
	case "float":
		return func(v float64) (any, error) {
			if math.Abs(v) > math.MaxFloat32 {
				return nil, fmt.Errorf("value %v does not fit float", v)
			}
			return float32(v), nil
		}, nil
	case "bool":
		return func(v float64) (any, error) { return v != 0, nil }, nil
	case "int16":
		return ranged(math.MinInt16, math.MaxInt16, func(v float64) any { return int16(v) }), nil
	case "int32":
		return ranged(math.MinInt32, math.MaxInt32, func(v float64) any { return int32(v) }), nil
	case "int64":
		return ranged(-(1 << 53), 1<<53, func(v float64) any { return int64(v) }), nil
	case "uint16":
		return ranged(0, math.MaxUint16, func(v float64) any { return uint16(v) }), nil
	case "uint32":
		return ranged(0, math.MaxUint32, func(v float64) any { return uint32(v) }), nil
	}
	return nil, fmt.Errorf("unknown node type %q (want double, float, int16, int32, int64, uint16, uint32 or bool)", typ)
}

// Connect opens a session (security None and anonymous unless configured).
func (a *Adapter) Connect(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return relay.ErrClosed
	}
	if a.client != nil && a.client.State() == opcua.Connected {
		return nil
	}
	if a.client != nil {
		_ = a.client.Close(ctx)
		a.client = nil
	}
	opts := append([]opcua.Option{opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous(),
		opcua.RequestTimeout(a.timeout), opcua.DialTimeout(a.timeout)}, a.extra...)
	c, err := opcua.NewClient(a.endpoint, opts...)
	if err != nil {
		return fmt.Errorf("opcua: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		_ = c.Close(context.Background())
		return fmt.Errorf("opcua: connect %s: %w", a.endpoint, err)
	}
	a.client = c
	return nil
}

// Stats counts values written, messages skipped (events and unmapped
// points) and values the server refused for good.
type Stats struct {
	Written, Skipped, Refused uint64
}

// Stats returns the adapter's counters.
func (a *Adapter) Stats() Stats {
	return Stats{Written: a.written.Load(), Skipped: a.skipped.Load(), Refused: a.refused.Load()}
}

// permanentStatus reports whether a write status will not change on retry.
func permanentStatus(s ua.StatusCode) bool {
	switch s {
	case ua.StatusBadNodeIDUnknown, ua.StatusBadNodeIDInvalid, ua.StatusBadTypeMismatch, ua.StatusBadNotWritable,
		ua.StatusBadUserAccessDenied, ua.StatusBadAttributeIDInvalid, ua.StatusBadOutOfRange, ua.StatusBadWriteNotSupported:
		return true
	}
	return false
}

// Send writes the batch's mapped samples in one Write request.
func (a *Adapter) Send(ctx context.Context, msgs []relay.Message) error {
	a.mu.Lock()
	c := a.client
	a.mu.Unlock()
	if c == nil {
		return relay.ErrNotConnected
	}
	req := &ua.WriteRequest{}
	var points []string
	for i := range msgs {
		m := &msgs[i]
		n, ok := a.nodes[m.Point]
		if m.Kind != relay.KindSample || !ok {
			a.skipped.Add(1)
			continue
		}
		v, err := n.conv(m.Value)
		if err != nil {
			a.refused.Add(1)
			a.log.Warn("opcua: value not written", "point", m.Point, "err", err)
			continue
		}
		variant, err := ua.NewVariant(v)
		if err != nil {
			a.refused.Add(1)
			continue
		}
		dv := &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant}
		if !m.Time.IsZero() {
			dv.EncodingMask |= ua.DataValueSourceTimestamp
			dv.SourceTimestamp = m.Time
		}
		req.NodesToWrite = append(req.NodesToWrite, &ua.WriteValue{NodeID: n.id, AttributeID: ua.AttributeIDValue, Value: dv})
		points = append(points, m.Point)
	}
	if len(req.NodesToWrite) == 0 {
		return nil
	}
	resp, err := c.Write(ctx, req)
	if err != nil {
		return fmt.Errorf("opcua: write: %w", err)
	}
	if len(resp.Results) != len(req.NodesToWrite) {
		return fmt.Errorf("opcua: write: %d results for %d values", len(resp.Results), len(req.NodesToWrite))
	}
	var transient error
	for i, st := range resp.Results {
		switch {
		case st == ua.StatusOK:
			a.written.Add(1)
		case permanentStatus(st):
			a.refused.Add(1)
			a.log.Warn("opcua: server refused value", "point", points[i], "status", st)
		default:
			transient = fmt.Errorf("opcua: write %s: %w", points[i], st)
		}
	}
	return transient
}

// Close closes the session. It is idempotent.
func (a *Adapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := a.client.Close(ctx)
		a.client = nil
		return err
	}
	return nil
}
