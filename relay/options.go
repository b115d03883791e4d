package relay

import (
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Option configures a Pipeline. Options are validated by New.
type Option func(*config) error

type config struct {
	name         string
	points       globs
	eventKinds   globs
	noSamples    bool
	noEvents     bool
	formatter    Formatter
	maxMsgs      int
	maxBytes     int
	overflow     Overflow
	spoolDir     string
	spoolEvery   time.Duration
	limit        rate.Limit
	burst        int
	breakerFails uint32
	breakerOpen  time.Duration
	retryMin     time.Duration
	retryMax     time.Duration
	batchSize    int
	sendTimeout  time.Duration
	drainTimeout time.Duration
	logger       *slog.Logger
	registerer   prometheus.Registerer
	executor     Executor
}

func defaultConfig() config {
	return config{
		name:         "relay",
		formatter:    JSON{},
		maxMsgs:      10000,
		maxBytes:     16 << 20,
		overflow:     DropOldest,
		limit:        rate.Inf,
		breakerFails: 5,
		breakerOpen:  30 * time.Second,
		retryMin:     100 * time.Millisecond,
		retryMax:     30 * time.Second,
		batchSize:    1000,
		sendTimeout:  30 * time.Second,
		drainTimeout: 5 * time.Second,
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// WithName names the relay in logs, metrics (label "relay") and its spool
// file. Names are 1-64 characters of letters, digits, '_', '-' and '.'.
// Default "relay". Give each relay sharing a registry its own name.
func WithName(name string) Option {
	return func(c *config) error {
		if !nameRE.MatchString(name) {
			return fmt.Errorf("relay: WithName(%q): want 1-64 letters, digits, '_', '-' or '.'", name)
		}
		c.name = name
		return nil
	}
}

// WithPoints forwards only samples whose point matches one of the globs
// (path.Match syntax: "pcs1.*", "ch?.T.*"). Default: every point.
func WithPoints(patterns ...string) Option {
	return func(c *config) error {
		for _, p := range patterns {
			if err := validGlob(p); err != nil {
				return fmt.Errorf("relay: WithPoints: pattern %q: %w", p, err)
			}
		}
		c.points = append(c.points, patterns...)
		return nil
	}
}

// WithEventKinds forwards only events whose kind matches one of the globs
// ("alarm.*", "command.failed"). Default: every event.
func WithEventKinds(patterns ...string) Option {
	return func(c *config) error {
		for _, p := range patterns {
			if err := validGlob(p); err != nil {
				return fmt.Errorf("relay: WithEventKinds: pattern %q: %w", p, err)
			}
		}
		c.eventKinds = append(c.eventKinds, patterns...)
		return nil
	}
}

// WithoutSamples forwards no samples (an event-only relay).
func WithoutSamples() Option { return func(c *config) error { c.noSamples = true; return nil } }

// WithoutEvents forwards no events (a sample-only relay).
func WithoutEvents() Option { return func(c *config) error { c.noEvents = true; return nil } }

// WithFormatter sets the payload formatter. Default JSON{}.
func WithFormatter(f Formatter) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("relay: WithFormatter: nil formatter")
		}
		c.formatter = f
		return nil
	}
}

// WithBuffer bounds the buffer by message count and by bytes (payload,
// point, key, topic and headers). Defaults 10,000 messages and 16 MiB.
// The batch being sent or retried is held outside the buffer, so the
// relay holds at most maxMessages plus one batch.
func WithBuffer(maxMessages, maxBytes int) Option {
	return func(c *config) error {
		if maxMessages < 1 {
			return fmt.Errorf("relay: WithBuffer: max messages %d, want >= 1", maxMessages)
		}
		if maxBytes < 1 {
			return fmt.Errorf("relay: WithBuffer: max bytes %d, want >= 1", maxBytes)
		}
		c.maxMsgs, c.maxBytes = maxMessages, maxBytes
		return nil
	}
}

// WithOverflow sets what a full buffer does. Default DropOldest.
func WithOverflow(o Overflow) Option {
	return func(c *config) error {
		if o > Block {
			return fmt.Errorf("relay: WithOverflow: unknown policy %d", o)
		}
		c.overflow = o
		return nil
	}
}

// WithSpool keeps the buffer across restarts: Close writes the buffered
// messages (and a batch still being retried) to dir/<name>.spool, and New
// loads and removes that file. The directory must exist. Without
// WithSpoolInterval, data buffered when the process crashes (no Close) is
// lost.
func WithSpool(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return fmt.Errorf("relay: WithSpool: empty directory")
		}
		c.spoolDir = dir
		return nil
	}
}

// WithSpoolInterval also writes the spool every d while Run runs (a
// checkpoint of the pending batch and the buffer; the write replaces the
// file atomically), so a crash loses at most what arrived in the last d.
// Messages delivered after a checkpoint are sent again after a crash
// (at-least-once). It costs one write of the whole buffer per interval, and
// needs WithSpool.
func WithSpoolInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("relay: WithSpoolInterval: %v, want > 0", d)
		}
		c.spoolEvery = d
		return nil
	}
}

// WithRateLimit limits delivery to perSecond messages per second with the
// given burst (a token bucket; batches are cut to at most burst messages).
// Default: no limit.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) error {
		if !(perSecond > 0) || math.IsInf(perSecond, 0) {
			return fmt.Errorf("relay: WithRateLimit: rate %v, want a finite number > 0", perSecond)
		}
		if burst < 1 {
			return fmt.Errorf("relay: WithRateLimit: burst %d, want >= 1", burst)
		}
		c.limit, c.burst = rate.Limit(perSecond), burst
		return nil
	}
}

// WithBreaker opens the circuit after failures consecutive failed batches;
// it stays open for openFor, then lets one batch try. Defaults 5 and 30s.
func WithBreaker(failures uint32, openFor time.Duration) Option {
	return func(c *config) error {
		if failures < 1 {
			return fmt.Errorf("relay: WithBreaker: failures %d, want >= 1", failures)
		}
		if openFor <= 0 {
			return fmt.Errorf("relay: WithBreaker: open duration %v, want > 0", openFor)
		}
		c.breakerFails, c.breakerOpen = failures, openFor
		return nil
	}
}

// WithRetry sets the exponential backoff between attempts of a failed
// batch: min doubles per attempt up to max, with jitter (a uniformly random
// part of up to half of each wait). Defaults 100ms and 30s.
func WithRetry(minWait, maxWait time.Duration) Option {
	return func(c *config) error {
		if minWait <= 0 || maxWait < minWait {
			return fmt.Errorf("relay: WithRetry(%v, %v): want 0 < min <= max", minWait, maxWait)
		}
		c.retryMin, c.retryMax = minWait, maxWait
		return nil
	}
}

// WithBatchSize sets the most messages handed to the adapter in one Send.
// Default 1000.
func WithBatchSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("relay: WithBatchSize: %d, want >= 1", n)
		}
		c.batchSize = n
		return nil
	}
}

// WithSendTimeout bounds one adapter Send (and Connect). Default 30s.
func WithSendTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("relay: WithSendTimeout: %v, want > 0", d)
		}
		c.sendTimeout = d
		return nil
	}
}

// WithDrainTimeout bounds how long Close keeps sending the buffer when
// there is no spool. Default 5s; what is left is counted as "closed".
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("relay: WithDrainTimeout: %v, want >= 0", d)
		}
		c.drainTimeout = d
		return nil
	}
}

// WithLogger logs connection changes, retries and drops. nil discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithMetrics registers the relay's metrics (ems_relay_*, with a constant
// label relay=<name>) on reg. nil registers nothing.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error { c.registerer = reg; return nil }
}

// WithExecutor sets the Executor handed to an adapter that implements
// Receiver (see also Pipeline.SetExecutor).
func WithExecutor(e Executor) Option { return func(c *config) error { c.executor = e; return nil } }
