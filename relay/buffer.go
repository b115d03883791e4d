package relay

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Overflow is what a full buffer does with a new message.
type Overflow uint8

// Overflow policies.
const (
	// DropOldest evicts the oldest buffered messages to make room (the
	// default, as Telegraf does). Evictions are counted as "overflow".
	DropOldest Overflow = iota
	// DropNewest refuses the new message and counts it as "overflow".
	DropNewest
	// Block makes Send wait for room until its context is done; messages
	// still not buffered then are counted as "canceled".
	Block
)

// String returns "drop_oldest", "drop_newest" or "block".
func (o Overflow) String() string {
	switch o {
	case DropOldest:
		return "drop_oldest"
	case DropNewest:
		return "drop_newest"
	case Block:
		return "block"
	}
	return fmt.Sprintf("overflow(%d)", uint8(o))
}

// ParseOverflow parses what Overflow.String returns (also "oldest",
// "newest"), case-insensitively.
func ParseOverflow(s string) (Overflow, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "drop_oldest", "oldest", "":
		return DropOldest, nil
	case "drop_newest", "newest":
		return DropNewest, nil
	case "block":
		return Block, nil
	}
	return 0, fmt.Errorf("relay: unknown overflow policy %q (want drop_oldest, drop_newest or block)", s)
}

// Drops counts messages the relay dropped, by reason. Every message that
// entered Send and was not delivered is in exactly one of these counters,
// or still buffered.
type Drops struct {
	Overflow uint64 // evicted or refused by a full buffer
	Oversize uint64 // one message larger than the whole byte bound
	Format   uint64 // the formatter failed on the sample or event
	Rejected uint64 // the adapter refused the batch with a Permanent error
	Canceled uint64 // Send's context ended while blocked (Block policy)
	Closed   uint64 // sent after Close, or still buffered at Close without a spool
}

// Total returns the sum of all reasons.
func (d Drops) Total() uint64 {
	return d.Overflow + d.Oversize + d.Format + d.Rejected + d.Canceled + d.Closed
}

// ring is the bounded FIFO of the pipeline: a growable ring of messages
// bounded by a message count and a byte total. All counters are exact:
// they change under the same lock as the queue.
type ring struct {
	mu       sync.Mutex
	buf      []Message
	head, n  int
	bytes    int
	maxMsgs  int
	maxBytes int
	policy   Overflow
	closed   bool
	drops    Drops

	ready   chan struct{} // has a value while the ring is not empty (cap 1)
	room    chan struct{} // closed and replaced when room is made and someone waits
	waiters int           // pushes blocked on room
}

func newRing(maxMsgs, maxBytes int, policy Overflow) *ring {
	initial := min(maxMsgs, 1024)
	return &ring{
		buf:      make([]Message, initial),
		maxMsgs:  maxMsgs,
		maxBytes: maxBytes,
		policy:   policy,
		ready:    make(chan struct{}, 1),
		room:     make(chan struct{}),
	}
}

// push appends msgs, applying the overflow policy. It returns ctx.Err()
// when the Block policy gave up, ErrClosed after close. The messages it
// could not keep are counted.
func (r *ring) push(ctx context.Context, msgs []Message) error {
	return r.pushPolicy(ctx, msgs, r.policy)
}

func (r *ring) pushPolicy(ctx context.Context, msgs []Message, policy Overflow) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range msgs {
		m := &msgs[i]
		sz := m.size()
		if r.closed {
			r.drops.Closed += uint64(len(msgs) - i)
			return ErrClosed
		}
		if sz > r.maxBytes {
			r.drops.Oversize++
			continue
		}
		for r.n >= r.maxMsgs || r.bytes+sz > r.maxBytes {
			switch policy {
			case DropOldest:
				r.evictLocked()
				r.drops.Overflow++
				continue
			case DropNewest:
				r.drops.Overflow++
			case Block:
				room := r.room
				r.waiters++
				r.mu.Unlock()
				var err error
				select {
				case <-room:
				case <-ctx.Done():
					err = ctx.Err()
				}
				r.mu.Lock()
				r.waiters--
				if err != nil {
					r.drops.Canceled += uint64(len(msgs) - i)
					return err
				}
				if r.closed {
					r.drops.Closed += uint64(len(msgs) - i)
					return ErrClosed
				}
				continue
			}
			break
		}
		if r.n >= r.maxMsgs || r.bytes+sz > r.maxBytes {
			continue // DropNewest refused it
		}
		r.appendLocked(*m, sz)
	}
	return nil
}

func (r *ring) appendLocked(m Message, sz int) {
	if r.n == len(r.buf) {
		nb := make([]Message, min(max(2*len(r.buf), 16), r.maxMsgs))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.n++
	r.bytes += sz
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *ring) evictLocked() {
	m := &r.buf[r.head]
	r.bytes -= m.size()
	*m = Message{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.roomLocked()
}

func (r *ring) roomLocked() {
	if r.waiters == 0 {
		return
	}
	close(r.room)
	r.room = make(chan struct{})
}

// pop moves up to max messages into dst (appending) and returns it.
func (r *ring) pop(dst []Message, max int) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(max, r.n)
	for i := 0; i < k; i++ {
		m := &r.buf[r.head]
		r.bytes -= m.size()
		dst = append(dst, *m)
		*m = Message{}
		r.head = (r.head + 1) % len(r.buf)
	}
	r.n -= k
	if k > 0 {
		r.roomLocked()
	}
	if r.n > 0 {
		select {
		case r.ready <- struct{}{}:
		default:
		}
	}
	return dst
}

// wait returns when the ring may have messages or ctx is done.
func (r *ring) wait(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close refuses further pushes and wakes blocked ones.
func (r *ring) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.room)
		r.room = make(chan struct{})
	}
}

// len returns the buffered message count and bytes.
func (r *ring) len() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.bytes
}

// addDrops adds to the counters under the lock.
func (r *ring) addDrops(f func(d *Drops)) {
	r.mu.Lock()
	f(&r.drops)
	r.mu.Unlock()
}

func (r *ring) dropCounts() Drops {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drops
}

// snapshot appends copies of the buffered messages (oldest first) to dst
// without removing them.
func (r *ring) snapshot(dst []Message) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < r.n; i++ {
		dst = append(dst, r.buf[(r.head+i)%len(r.buf)])
	}
	return dst
}
