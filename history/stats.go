package history

import (
	"github.com/voltage-ems/ems/history/internal/codec"
	"github.com/voltage-ems/ems/model"
)

func qual(q uint8) model.Quality { return model.Quality(q) }

// Stats is a snapshot of the store's counters.
type Stats struct {
	Series        int
	HeadSamples   int64
	Files         int
	ColdFiles     int
	BlocksDelta   int64 // raw blocks encoded with each codec (since Open)
	BlocksGorilla int64
	BlocksRaw     int64
	Rejected      int64 // out-of-order samples rejected
	Corrupt       int64 // corrupt WAL regions, block files and blocks found
	Compactions   int64 // compactions done since Open
	CacheHits     int64 // queries answered from the query cache
	CacheMisses   int64 // queries computed (coalesced callers count once each)
}

// Stats returns current counters.
func (db *DB) Stats() Stats {
	db.seriesMu.RLock()
	n := len(db.series)
	db.seriesMu.RUnlock()
	db.filesMu.RLock()
	nf, nc := len(db.files), 0
	for _, f := range db.files {
		if f.cold.Load() {
			nc++
		}
	}
	db.filesMu.RUnlock()
	return Stats{
		Series: n, HeadSamples: db.headSamples.Load(), Files: nf, ColdFiles: nc,
		BlocksDelta: db.codecCount[codec.Delta].Load(), BlocksGorilla: db.codecCount[codec.Gorilla].Load(), BlocksRaw: db.codecCount[codec.Raw].Load(),
		Rejected: db.rejected.Load(), Corrupt: db.corrupt.Load(),
		Compactions: db.compacted.Load(), CacheHits: db.cacheHits.Load(), CacheMisses: db.cacheMiss.Load(),
	}
}
