package history

import (
	"fmt"
	"log/slog"
	"path"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sync is the WAL fsync policy.
type Sync uint8

// The fsync policies. Every Write is handed to the operating system (one
// write(2) per Write call) before Write returns, so a crash of the process
// alone loses nothing under any policy; they differ on power loss or kernel
// crash.
const (
	// SyncInterval (default) fsyncs the WAL in the background every
	// interval: a power loss loses at most the last interval of writes.
	SyncInterval Sync = iota
	// SyncAlways fsyncs before Write returns: an acknowledged write
	// survives power loss. Slowest.
	SyncAlways
	// SyncNever leaves flushing to the operating system (typically up to
	// 30 s of writes lost on power loss).
	SyncNever
)

// String returns the policy name: "interval", "always" or "never".
func (s Sync) String() string {
	switch s {
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("sync(%d)", uint8(s))
}

// Tier is one downsampled rollup tier: per bucket of Resolution it keeps
// count, sum, min, max, first and last, so every aggregation stays exact.
type Tier struct {
	Resolution time.Duration
	Retention  time.Duration // 0 keeps forever
}

// AggregateSeries defines a named series maintained on write, e.g. the site
// total power as the sum of inverter powers. After each Write touching a
// member, the store writes one sample to Name at the latest member time of
// that Write, computed over the latest good value of every member.
type AggregateSeries struct {
	Name    string
	Members []string // point IDs or globs
	Agg     Aggregation
}

type config struct {
	sync          Sync
	syncInterval  time.Duration
	segmentSize   int64
	rawRetention  time.Duration
	tiers         []Tier
	oooWindow     time.Duration
	flushInterval time.Duration
	maxHead       int
	maxPoints     int
	maxSamples    int
	cacheSize     int
	archive       Archive
	coldAfter     time.Duration
	aggregates    []AggregateSeries
	logger        *slog.Logger
	reg           prometheus.Registerer
	maxChunk      int
	compactFanIn  int
	maxLevel      int
	noDeflate     bool
	errs          []error
}

func defaultConfig() config {
	return config{
		sync:          SyncInterval,
		syncInterval:  time.Second,
		segmentSize:   64 << 20,
		rawRetention:  90 * 24 * time.Hour,
		tiers:         []Tier{{Resolution: time.Minute, Retention: 2 * 365 * 24 * time.Hour}, {Resolution: time.Hour}},
		oooWindow:     10 * time.Minute,
		flushInterval: 5 * time.Minute,
		maxHead:       4 << 20,
		maxPoints:     10_000,
		maxSamples:    10_000_000,
		cacheSize:     256,
		maxChunk:      8192,
		compactFanIn:  4,
		maxLevel:      5,
	}
}

// Option configures Open.
type Option func(*config)

func (c *config) bad(format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, a...)...))
}

// WithSync sets the WAL fsync policy; interval is used by SyncInterval
// (default 1 s) and must be > 0 then.
func WithSync(s Sync, interval time.Duration) Option {
	return func(c *config) {
		if s > SyncNever {
			c.bad("unknown sync policy %d", s)
		}
		if s == SyncInterval && interval <= 0 {
			c.bad("sync interval %s must be > 0", interval)
		}
		c.sync, c.syncInterval = s, interval
	}
}

// WithWALSegmentSize sets the size after which a WAL segment is closed and a
// new one started (default 64 MiB, at least 64 KiB).
func WithWALSegmentSize(n int64) Option {
	return func(c *config) {
		if n < 64<<10 {
			c.bad("WAL segment size %d below 64 KiB", n)
		}
		c.segmentSize = n
	}
}

// WithRetention sets how long raw samples are kept (default 90 days, 0 forever).
func WithRetention(raw time.Duration) Option {
	return func(c *config) {
		if raw < 0 {
			c.bad("retention %s must be >= 0", raw)
		}
		c.rawRetention = raw
	}
}

// WithTiers replaces the rollup tiers (default 1 minute kept 2 years, 1 hour
// kept forever). Resolutions must be whole seconds, strictly increasing, each
// a multiple of the previous. No tiers disables rollups.
func WithTiers(tiers ...Tier) Option {
	return func(c *config) {
		for i, t := range tiers {
			if t.Resolution < time.Second || t.Resolution%time.Second != 0 {
				c.bad("tier %d resolution %s must be a whole number of seconds", i, t.Resolution)
			}
			if t.Retention < 0 {
				c.bad("tier %d retention %s must be >= 0", i, t.Retention)
			}
			if i > 0 && (t.Resolution <= tiers[i-1].Resolution || t.Resolution%tiers[i-1].Resolution != 0) {
				c.bad("tier %d resolution %s must be a multiple of the previous tier's %s", i, t.Resolution, tiers[i-1].Resolution)
			}
		}
		c.tiers = slices.Clone(tiers)
	}
}

// WithOutOfOrderWindow sets how far behind a series' newest sample a sample
// may arrive and still be accepted (default 10 minutes). Older samples are
// rejected with *OutOfOrderError. The window is also how much recent data
// each series keeps in memory.
func WithOutOfOrderWindow(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.bad("out-of-order window %s must be >= 0", d)
		}
		c.oooWindow = d
	}
}

// WithFlushInterval sets how often the head is cut into blocks (default 5 min).
func WithFlushInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.bad("flush interval %s must be > 0", d)
		}
		c.flushInterval = d
	}
}

// WithMaxHeadSamples sets the number of in-memory samples (all series) that
// triggers an early flush (default 4Mi).
func WithMaxHeadSamples(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.bad("max head samples %d must be > 0", n)
		}
		c.maxHead = n
	}
}

// WithLimits sets the most points (series) one query may match and the most
// samples or buckets it may return (defaults 10,000 and 10,000,000).
func WithLimits(points, samples int) Option {
	return func(c *config) {
		if points <= 0 || samples <= 0 {
			c.bad("limits points=%d samples=%d must be > 0", points, samples)
		}
		c.maxPoints, c.maxSamples = points, samples
	}
}

// WithCacheSize sets the number of query results cached (default 256, 0 off).
func WithCacheSize(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.bad("cache size %d must be >= 0", n)
		}
		c.cacheSize = n
	}
}

// WithColdArchive moves block files whose newest sample is older than after
// into the archive (at each maintenance round); they stay queryable through
// it, with the last few archived files cached in memory. Ignored by
// in-memory stores.
func WithColdArchive(a Archive, after time.Duration) Option {
	return func(c *config) {
		if a == nil || after <= 0 {
			c.bad("cold archive needs an Archive and a positive age, got %v, %s", a, after)
		}
		c.archive, c.coldAfter = a, after
	}
}

// WithAggregateSeries adds named aggregate series maintained on write. Agg
// must be sum, avg, min, max or count.
func WithAggregateSeries(defs ...AggregateSeries) Option {
	return func(c *config) {
		for _, d := range defs {
			if d.Name == "" || isGlob(d.Name) {
				c.bad("aggregate series name %q must be a plain point ID", d.Name)
			}
			if len(d.Members) == 0 {
				c.bad("aggregate series %q has no members", d.Name)
			}
			for _, m := range d.Members {
				if _, err := path.Match(m, ""); err != nil || m == d.Name {
					c.bad("aggregate series %q: bad member %q", d.Name, m)
				}
			}
			switch d.Agg {
			case AggSum, AggAvg, AggMin, AggMax, AggCount:
			default:
				c.bad("aggregate series %q: aggregation %s not supported (sum, avg, min, max, count)", d.Name, d.Agg)
			}
			c.aggregates = append(c.aggregates, AggregateSeries{Name: d.Name, Members: slices.Clone(d.Members), Agg: d.Agg})
		}
	}
}

// WithLogger sets the logger (nil discards).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMetrics registers the store's metrics on r (nil: no metrics).
func WithMetrics(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// WithMaxChunkSamples sets the most samples per compressed block (default 8192).
func WithMaxChunkSamples(n int) Option {
	return func(c *config) {
		if n < 16 || n > 1<<20 {
			c.bad("max chunk samples %d must be in [16, 1Mi]", n)
		}
		c.maxChunk = n
	}
}
