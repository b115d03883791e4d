package alarm

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Definitions returns the configured definitions (before template
// expansion), sorted by id.
func (e *Engine) Definitions() []Definition {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Definition, len(e.base))
	for i := range e.base {
		out[i] = e.base[i].clone()
	}
	slices.SortFunc(out, func(a, b Definition) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Definition returns one definition by id, or ErrUnknownDefinition.
func (e *Engine) Definition(id string) (Definition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.base {
		if e.base[i].ID == id {
			return e.base[i].clone(), nil
		}
	}
	return Definition{}, fmt.Errorf("%w: %q", ErrUnknownDefinition, id)
}

// AddDefinition adds a definition at run time. The whole new set is
// validated first; on any error (returned as model.ConfigErrors) nothing
// changes and the old definitions keep running. The change is journaled
// with user and time and announced by an alarm.definition Event.
func (e *Engine) AddDefinition(d Definition, user string) error {
	return e.change("add", d.ID, &d, user)
}

// UpdateDefinition replaces the definition with d.ID. Alarms whose ids
// survive the change keep their state.
func (e *Engine) UpdateDefinition(d Definition, user string) error {
	return e.change("update", d.ID, &d, user)
}

// RemoveDefinition removes a definition and its alarms.
func (e *Engine) RemoveDefinition(id, user string) error {
	return e.change("remove", id, nil, user)
}

func (e *Engine) change(op, id string, d *Definition, user string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	i := slices.IndexFunc(e.base, func(x Definition) bool { return x.ID == id })
	next := slices.Clone(e.base)
	src := make([]srcLoc, len(next)) // run-time changes carry no file positions
	switch op {
	case "add":
		if i >= 0 {
			return fmt.Errorf("%w: %q", ErrDuplicateDefinition, id)
		}
		next = append(next, d.clone())
	case "update":
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownDefinition, id)
		}
		next[i] = d.clone()
	case "remove":
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownDefinition, id)
		}
		next = slices.Delete(next, i, i+1)
	}
	src = src[:0]
	t, err := e.compile(next, src)
	if err != nil {
		return err
	}
	removed := e.swap(t)
	e.base = next
	now := time.Now()
	ch := defChange{Op: op, ID: id, User: user, Time: now.UTC()}
	if d != nil {
		c := d.clone()
		ch.Def = &c
	}
	e.defLog = append(e.defLog, ch)
	if e.j != nil {
		e.j.def(&ch)
	}
	e.seq++
	attrs := map[string]string{"op": op, "definition": id, "user": user}
	if len(removed) > 0 {
		attrs["removed_alarms"] = strings.Join(removed, ",")
	}
	e.push(model.Event{ID: fmt.Sprintf("alarm-%d", e.seq), Time: now, Kind: EventAlarmDefinition, Source: Source,
		Severity: model.SeverityInfo, Message: fmt.Sprintf("alarm definition %s %sd by %s", id, strings.TrimSuffix(op, "e"), user), Attrs: attrs})
	e.flushJournal()
	return nil
}

// swap installs t, carrying point values and alarm states over by id. It
// returns the ids of alarms that no longer exist and were not normal.
func (e *Engine) swap(t *tables) []string {
	old := e.t
	for i := range t.points {
		if oi, ok := old.pindex[t.pointIDs[i]]; ok {
			op := &old.points[oi]
			p := &t.points[i]
			p.value, p.t, p.seen, p.quality, p.has = op.value, op.t, op.seen, op.quality, op.has
		}
	}
	var removed []string
	for i := range old.conds {
		oc := &old.conds[i]
		ni, ok := t.cindex[oc.id]
		if !ok {
			if oc.life.State != StateNormal {
				removed = append(removed, oc.id)
			}
			continue
		}
		c := &t.conds[ni]
		c.raw, c.pactive, c.pendSince = oc.raw, oc.pactive, oc.pendSince
		pr := c.life.Priority
		c.life = oc.life
		if c.life.State == StateNormal {
			c.life.Priority = pr
		}
		if len(c.clears) == len(oc.clears) {
			copy(c.clears, oc.clears)
			c.clearN = oc.clearN
		}
	}
	e.t = t
	e.nextStale, e.nextTimer = 0, 0
	e.live = e.live[:0]
	e.pending = e.pending[:0]
	for i := range t.conds {
		c := &t.conds[i]
		if c.pendSince != 0 {
			c.pendQueued = true
			e.pending = append(e.pending, int32(i))
		}
		if l := &c.life; l.State != StateNormal || l.Shelved != ShelveNone || l.OOS || l.Active || l.Design {
			e.touch(t, int32(i))
		}
	}
	slices.Sort(removed)
	return removed
}
