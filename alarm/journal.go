package alarm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/voltage-ems/ems/model"
)

// journalName is the file of the append-only journal in the data directory.
const journalName = "alarm.journal"

// journal is an append-only file of JSON lines: alarm states (the last one
// per alarm wins), events (the history) and definition changes. It is
// compacted when the engine opens it.
type journal struct {
	path string
	f    *os.File
	w    *bufio.Writer
	log  *slog.Logger
	err  error
	n    int // records written since the last compaction

	dirty    bool      // written since the last fsync
	lastSync time.Time // when the file was last fsynced
}

// syncEvery bounds how much journal an OS crash can lose: a flush fsyncs
// the file when it has unsynced records and the last fsync is older than
// this, and Tick does the same, so a record is on disk within about
// syncEvery plus one tick of being written.
const syncEvery = time.Second

// compactAfter is the number of appended records after which the engine
// rewrites the journal.
const compactAfter = 200_000

type detState struct {
	Raw       bool  `json:"raw,omitempty"`
	PActive   bool  `json:"pactive,omitempty"`
	PendSince int64 `json:"pend_since,omitempty"`
}

type jrec struct {
	T   string       `json:"t"` // "s" state, "e" event, "d" definition change
	ID  string       `json:"id,omitempty"`
	L   *life        `json:"l,omitempty"`
	Det *detState    `json:"det,omitempty"`
	Ev  *model.Event `json:"ev,omitempty"`
	Def *defChange   `json:"def,omitempty"`
}

// defChange is one journaled run-time definition change.
type defChange struct {
	Op   string      `json:"op"` // add, update, remove
	ID   string      `json:"id"`
	User string      `json:"user,omitempty"`
	Time time.Time   `json:"time"`
	Def  *Definition `json:"def,omitempty"`
}

// recovered is what openJournal read back.
type recovered struct {
	states map[string]jrec
	order  []string
	events []model.Event
	defs   []defChange
	seq    uint64
}

// applyDefs replays the journaled definition changes on top of base.
func (r *recovered) applyDefs(base []Definition) []Definition {
	out := append([]Definition(nil), base...)
	for _, ch := range r.defs {
		i := -1
		for k := range out {
			if out[k].ID == ch.ID {
				i = k
				break
			}
		}
		switch {
		case ch.Op == "remove" && i >= 0:
			out = append(out[:i], out[i+1:]...)
		case ch.Op != "remove" && ch.Def != nil && i >= 0:
			out[i] = ch.Def.clone()
		case ch.Op != "remove" && ch.Def != nil:
			out = append(out, ch.Def.clone())
		}
	}
	return out
}

func openJournal(dir string, log *slog.Logger) (*journal, *recovered, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("alarm: data dir: %w", err)
	}
	path := filepath.Join(dir, journalName)
	rec := &recovered{states: map[string]jrec{}}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("alarm: read journal: %w", err)
	}
	line := 0
	for len(data) > 0 {
		line++
		i := bytes.IndexByte(data, '\n')
		var b []byte
		if i < 0 {
			b, data = data, nil
		} else {
			b, data = data[:i], data[i+1:]
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var r jrec
		if err := json.Unmarshal(b, &r); err != nil {
			// a torn last line after a crash is expected; anything else is logged
			log.Warn("alarm: skipping unreadable journal line", "file", path, "line", line, "err", err)
			continue
		}
		switch r.T {
		case "s":
			if _, ok := rec.states[r.ID]; !ok {
				rec.order = append(rec.order, r.ID)
			}
			rec.states[r.ID] = r
		case "e":
			if r.Ev != nil {
				rec.events = append(rec.events, *r.Ev)
				var n uint64
				if _, err := fmt.Sscanf(r.Ev.ID, "alarm-%d", &n); err == nil && n > rec.seq {
					rec.seq = n
				}
			}
		case "d":
			if r.Def != nil {
				rec.defs = append(rec.defs, *r.Def)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("alarm: open journal: %w", err)
	}
	return &journal{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10), log: log}, rec, nil
}

func (j *journal) write(r *jrec) {
	if j == nil || j.err != nil {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		j.log.Error("alarm: journal encode", "err", err)
		return
	}
	b = append(b, '\n')
	j.n++
	j.dirty = true
	if _, err := j.w.Write(b); err != nil {
		j.err = err
		j.log.Error("alarm: journal write failed; alarm state is no longer persisted", "file", j.path, "err", err)
	}
}

func (j *journal) state(c *cond) {
	l := c.life
	j.write(&jrec{T: "s", ID: c.id, L: &l, Det: &detState{Raw: c.raw, PActive: c.pactive, PendSince: c.pendSince}})
}

func (j *journal) event(ev *model.Event) { j.write(&jrec{T: "e", Ev: ev}) }

func (j *journal) def(ch *defChange) { j.write(&jrec{T: "d", Def: ch}) }

func (j *journal) flush() {
	if j == nil || j.err != nil {
		return
	}
	if err := j.w.Flush(); err != nil {
		j.err = err
		j.log.Error("alarm: journal flush failed", "file", j.path, "err", err)
		return
	}
	j.syncIfDue()
}

// syncIfDue fsyncs flushed records when the last fsync is older than
// syncEvery. Records still in the write buffer are flushed first.
func (j *journal) syncIfDue() {
	if j == nil || j.err != nil || !j.dirty || time.Since(j.lastSync) < syncEvery {
		return
	}
	if err := j.w.Flush(); err != nil {
		j.err = err
		j.log.Error("alarm: journal flush failed", "file", j.path, "err", err)
		return
	}
	if err := j.f.Sync(); err != nil {
		j.err = err
		j.log.Error("alarm: journal fsync failed; alarm state is no longer persisted", "file", j.path, "err", err)
		return
	}
	j.dirty, j.lastSync = false, time.Now()
}

func (j *journal) close() error {
	if j == nil {
		return nil
	}
	j.flush()
	err := j.err
	if e := j.f.Sync(); err == nil {
		err = e
	}
	if e := j.f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("alarm: journal: %w", err)
	}
	return nil
}

// restore puts the recovered states, timers and history into the engine.
func (e *Engine) restore(rec *recovered) {
	j := e.j
	e.j = nil // no journal writes while restoring; compact rewrites it
	defer func() { e.j = j }()
	t := e.t
	e.seq = rec.seq
	for _, id := range rec.order {
		ci, ok := t.cindex[id]
		if !ok {
			continue
		}
		r := rec.states[id]
		c := &t.conds[ci]
		if r.L != nil {
			c.life = *r.L
		}
		if r.Det != nil {
			c.raw, c.pactive, c.pendSince = r.Det.Raw, r.Det.PActive, r.Det.PendSince
			if c.pendSince != 0 && !c.pendQueued {
				c.pendQueued = true
				e.pending = append(e.pending, ci)
			}
		}
		e.touch(t, ci)
	}
	evs := rec.events
	if len(evs) > e.cfg.historyN {
		evs = evs[len(evs)-e.cfg.historyN:]
	}
	e.history = append(e.history[:0], evs...)
	e.defLog = rec.defs
}

// compact rewrites the journal with the current definitions changes, states
// and history.
func (e *Engine) compact() error {
	if e.j == nil {
		return nil
	}
	tmp := e.j.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("alarm: compact journal: %w", err)
	}
	nj := &journal{path: e.j.path, f: f, w: bufio.NewWriterSize(f, 64<<10), log: e.log}
	for i := range e.defLog {
		nj.def(&e.defLog[i])
	}
	for i := range e.t.conds {
		c := &e.t.conds[i]
		if c.livePos >= 0 || c.pendSince != 0 || c.raw || c.pactive || c.life.Count > 0 {
			nj.state(c)
		}
	}
	n := len(e.history)
	for i := 0; i < n; i++ {
		nj.event(&e.history[(e.histPos+i)%n])
	}
	nj.flush()
	if nj.err == nil {
		nj.err = f.Sync()
	}
	if err := f.Close(); nj.err == nil {
		nj.err = err
	}
	if nj.err != nil {
		os.Remove(tmp)
		return fmt.Errorf("alarm: compact journal: %w", nj.err)
	}
	if err := os.Rename(tmp, e.j.path); err != nil {
		return fmt.Errorf("alarm: compact journal: %w", err)
	}
	_ = e.j.f.Close()
	nf, err := os.OpenFile(e.j.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("alarm: reopen journal: %w", err)
	}
	e.j.f, e.j.w, e.j.n = nf, bufio.NewWriterSize(nf, 64<<10), 0
	return nil
}
