package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/voltage-ems/ems/model"
)

// spoolRecord is one message in a spool file (JSON lines).
type spoolRecord struct {
	Kind    MessageKind       `json:"k"`
	Point   string            `json:"p,omitempty"`
	Value   float64           `json:"v,omitempty"`
	Quality model.Quality     `json:"q,omitempty"`
	Event   model.EventKind   `json:"e,omitempty"`
	Time    time.Time         `json:"t"`
	Key     string            `json:"key,omitempty"`
	Topic   string            `json:"topic,omitempty"`
	Payload []byte            `json:"b"`
	Headers map[string]string `json:"h,omitempty"`
}

// spoolVersion is the first line of a spool file.
const spoolVersion = `{"ems_relay_spool":1}`

func (p *Pipeline) spoolPath() string {
	return filepath.Join(p.cfg.spoolDir, p.cfg.name+".spool")
}

// writeSpool writes the pending batch and the buffer to the spool file
// and removes them from memory (Close).
func (p *Pipeline) writeSpool() error {
	msgs := p.takeAll()
	if err := p.writeSpoolFile(msgs); err != nil {
		p.ring.addDrops(func(d *Drops) { d.Closed += uint64(len(msgs)) })
		return fmt.Errorf("%w (%d messages dropped)", err, len(msgs))
	}
	if len(msgs) > 0 {
		p.log.Info("relay: spooled undelivered messages", "file", p.spoolPath(), "messages", len(msgs))
	}
	return nil
}

// checkpoint writes a copy of the pending batch and the buffer to the spool
// file, keeping them in memory (WithSpoolInterval). After a crash the next
// New loads the last checkpoint: messages delivered since are sent again.
func (p *Pipeline) checkpoint() error {
	p.mu.Lock()
	msgs := append([]Message(nil), p.pending...)
	p.mu.Unlock()
	msgs = p.ring.snapshot(msgs)
	return p.writeSpoolFile(msgs)
}

// writeSpoolFile replaces the spool file with msgs (through a temporary
// file renamed over it, so a crash mid-write leaves the previous file);
// with no messages it removes the file.
func (p *Pipeline) writeSpoolFile(msgs []Message) error {
	path := p.spoolPath()
	if len(msgs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("relay: spool: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(p.cfg.spoolDir, p.cfg.name+".spool-*")
	if err != nil {
		return fmt.Errorf("relay: spool: %w", err)
	}
	w := bufio.NewWriter(tmp)
	w.WriteString(spoolVersion + "\n")
	enc := json.NewEncoder(w)
	for i := range msgs {
		if err = enc.Encode(spoolRecord(msgs[i])); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("relay: spool %s: %w", path, err)
	}
	return nil
}

// loadSpool buffers the messages of a spool file and removes it. A bad
// file is an error naming the file and line; the file is left in place.
func (p *Pipeline) loadSpool() error {
	path := p.spoolPath()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("relay: spool: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), p.cfg.maxBytes*2+1<<20)
	var msgs []Message
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			if sc.Text() != spoolVersion {
				return &model.ConfigError{File: path, Line: 1, Value: truncate(sc.Text(), 64), Msg: "not a relay spool file (bad header)"}
			}
			continue
		}
		var r spoolRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return &model.ConfigError{File: path, Line: line, Value: truncate(sc.Text(), 64), Msg: "corrupt spool record: " + err.Error()}
		}
		if r.Kind != KindSample && r.Kind != KindEvent {
			return &model.ConfigError{File: path, Line: line, Field: "k", Value: fmt.Sprint(r.Kind), Msg: "unknown message kind"}
		}
		msgs = append(msgs, Message(r))
	}
	if err := sc.Err(); err != nil {
		return &model.ConfigError{File: path, Line: line + 1, Msg: "reading spool: " + err.Error()}
	}
	f.Close()
	p.accepted.Add(uint64(len(msgs)))
	// Never block here: what does not fit is counted as overflow.
	policy := p.cfg.overflow
	if policy == Block {
		policy = DropNewest
	}
	if err := p.ring.pushPolicy(context.Background(), msgs, policy); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("relay: spool: %w", err)
	}
	p.log.Info("relay: loaded spool", "file", path, "messages", len(msgs))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
