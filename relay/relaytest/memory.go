package relaytest

import (
	"context"
	"slices"
	"sync"

	"github.com/voltage-ems/ems/relay"
)

// Memory is an in-memory relay.Adapter that records what it was sent. Set
// a failure function with FailWith to make Send fail. It implements
// relay.Connector and relay.Closer. The zero value is ready to use.
type Memory struct {
	mu        sync.Mutex
	msgs      []relay.Message
	batches   int
	calls     int
	connects  int
	closed    bool
	fail      func(call int, msgs []relay.Message) error
	connectFn func(call int) error
	notify    chan struct{}
}

// FailWith makes Send call f with the 1-based call number and the batch;
// a non-nil result fails that call and nothing of it is recorded. nil
// removes the hook.
func (m *Memory) FailWith(f func(call int, msgs []relay.Message) error) {
	m.mu.Lock()
	m.fail = f
	m.mu.Unlock()
}

// ConnectWith makes Connect return f(call) (1-based call number).
func (m *Memory) ConnectWith(f func(call int) error) {
	m.mu.Lock()
	m.connectFn = f
	m.mu.Unlock()
}

// Connect implements relay.Connector.
func (m *Memory) Connect(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connects++
	if m.connectFn != nil {
		return m.connectFn(m.connects)
	}
	return ctx.Err()
}

// Send implements relay.Adapter. It copies the messages (and payloads).
func (m *Memory) Send(ctx context.Context, msgs []relay.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.closed {
		return relay.ErrClosed
	}
	if m.fail != nil {
		if err := m.fail(m.calls, msgs); err != nil {
			return err
		}
	}
	for _, msg := range msgs {
		msg.Payload = slices.Clone(msg.Payload)
		m.msgs = append(m.msgs, msg)
	}
	m.batches++
	if m.notify != nil {
		select {
		case m.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close implements relay.Closer.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// Messages returns a copy of the messages received so far, in order.
func (m *Memory) Messages() []relay.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

// Payloads returns the payloads received so far, in order.
func (m *Memory) Payloads() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(m.msgs))
	for i := range m.msgs {
		out[i] = m.msgs[i].Payload
	}
	return out
}

// Len returns how many messages were received.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// Calls returns how many times Send was called (failed calls included),
// how many batches were recorded and how many times Connect was called.
func (m *Memory) Calls() (sends, batches, connects int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, m.batches, m.connects
}
