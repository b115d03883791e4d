// Package history stores time series of samples: the EMS's embedded,
// durable, compressed history.
//
// Store is the interface the EMS writes to and the gateway queries. DB,
// from Open, is the default implementation: in a data directory, or in
// memory when the directory is "".
//
// # Write path
//
// Write appends the accepted samples of a batch as one record to a
// write-ahead log (segmented files, CRC-32C per record) and then to an
// in-memory head per series. The fsync policy (WithSync) decides what a
// crash can lose: every Write reaches the operating system before it
// returns, so a process crash (kill -9) loses nothing under any policy;
// on power loss SyncAlways loses nothing acknowledged, SyncInterval (the
// default, 1 s) up to one interval, SyncNever whatever the OS had not
// written back. On Open the WAL is replayed; a torn record at the end of
// the last segment is truncated with a log line; a corrupt record elsewhere
// is skipped with a warning and counted in Stats.Corrupt.
//
// Timestamps are stored in milliseconds. A sample may arrive up to the
// out-of-order window (WithOutOfOrderWindow, default 10 min) behind its
// series' newest sample; older ones are rejected with *OutOfOrderError
// (ErrOutOfOrder), counted, while the rest of the batch is stored. A
// duplicate timestamp replaces the earlier value (last write wins). Quality
// is stored with every sample; bad samples are skipped by aggregations.
//
// # Blocks and codecs
//
// A background goroutine (every WithFlushInterval, default 5 min, or
// early when the head grows by WithMaxHeadSamples) cuts each series' samples
// older than the window into immutable blocks, written together in one
// block file. Each block is encoded with the smaller of two codecs and
// tagged in a versioned, checksummed header: Delta (the values' decimal
// resolution is detected, values become scaled integers coded by delta or
// delta-of-delta, millisecond timestamps by delta-of-delta, all bit-packed
// in groups of 64) and Gorilla (github.com/dgryski/go-tsz, for whole-second
// timestamps; always decoded from a private copy because its decoder
// consumes its input). Values Delta cannot hold exactly (NaN, ±Inf, long
// fractions) fall back to Gorilla, or to a raw float64 codec when the
// timestamps are not whole seconds. The payload is then deflated when that
// makes it smaller. Stats reports how many blocks each codec won.
//
// A block that fails its checksum makes a query that needs it fail with
// *CorruptError (ErrCorrupt) naming the file and series; other series are
// unaffected. A block file whose index is unreadable is skipped at Open
// with a warning and counted; samples still in the WAL are recovered.
//
// # Tiers, compaction, retention, archive
//
// When a head is cut, the store also writes rollups per tier (default 1 min
// and 1 h; WithTiers): count, sum, min, max, first and last per bucket, so
// every aggregation stays exact. A query with a step that is a multiple of
// a tier's resolution reads that tier (the coarsest that fits) for whole
// buckets and raw samples for the ragged edges and the head. Compaction
// merges block files (4 per level, 5 levels) in the background; retention
// drops raw blocks and tier rollups past their age (WithRetention, Tier.
// Retention) and deletes files nothing refers to. WithColdArchive moves
// block files older than an age to an Archive (DirArchive is a file system
// one; an object store can implement the interface); they stay queryable.
//
// # Queries
//
// Query takes point IDs or path.Match globs, a half-open range [From, To),
// a step and an aggregation. Results are ordered by point and time; points
// and buckets without data are omitted; a glob that matches nothing gives
// an empty result. Invalid queries return *QueryError (ErrInvalidQuery);
// queries matching too many points or returning too many samples return
// *LimitError (ErrLimit) (WithLimits). Results are cached (golang-lru,
// WithCacheSize) and invalidated when a write can touch their range;
// identical concurrent queries are computed once (singleflight).
//
// Named aggregate series (WithAggregateSeries), such as the site's total
// power as the sum of inverter powers, are computed on every Write that
// touches a member and stored like any series.
//
// Background goroutines start in Open and stop in Close, which also
// flushes the head into blocks. Maintain runs one round of background work
// synchronously.
package history
