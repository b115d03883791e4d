package alarm

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/voltage-ems/ems/model"
)

// lookup returns the alarm index for id or ErrUnknownAlarm.
func (e *Engine) lookup(id string) (*tables, int32, error) {
	if e.closed {
		return nil, 0, ErrClosed
	}
	ci, ok := e.t.cindex[id]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", ErrUnknownAlarm, id)
	}
	return e.t, ci, nil
}

// operate runs an operator operation on alarm id under the engine lock;
// when op succeeds the alarm's state is journaled and the journal flushed.
func (e *Engine) operate(id string, op func(t *tables, ci int32, c *cond) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ci, err := e.lookup(id)
	if err != nil {
		return err
	}
	if err := op(t, ci, &t.conds[ci]); err != nil {
		return err
	}
	e.touch(t, ci)
	e.flushJournal()
	return nil
}

func invalid(id string, st State, op string) error {
	return fmt.Errorf("%w: cannot %s alarm %q in state %s", ErrInvalidTransition, op, id, st)
}

// Ack acknowledges an alarm: active-unacknowledged becomes
// active-acknowledged, returned-to-normal-unacknowledged becomes normal
// (latched alarms: latched, waiting for Reset). Acknowledging any other
// state returns ErrInvalidTransition.
func (e *Engine) Ack(id, user, comment string) error {
	return e.operate(id, func(t *tables, ci int32, c *cond) error {
		l := &c.life
		now := time.Now().UnixNano()
		switch l.State {
		case StateUnacked:
			l.State = StateAcked
		case StateRTNUnacked:
			if t.defs[c.def].def.Latched {
				l.State = StateLatched
			} else {
				l.State = StateNormal
			}
		default:
			return invalid(id, l.State, "acknowledge")
		}
		l.AckedAt = now
		e.kpi.acks++
		e.emit(t, c, model.EventAlarmAcked, now, "", "user", user, "comment", comment)
		return nil
	})
}

// Reset returns a latched alarm that cleared and was acknowledged to
// normal. Any other state returns ErrInvalidTransition (an unacknowledged
// latched alarm must be acknowledged first; an active one cannot be reset).
func (e *Engine) Reset(id, user, comment string) error {
	return e.operate(id, func(t *tables, ci int32, c *cond) error {
		if c.life.State != StateLatched {
			return invalid(id, c.life.State, "reset")
		}
		now := time.Now().UnixNano()
		c.life.State = StateNormal
		e.emit(t, c, model.EventAlarmReset, now, "", "user", user, "comment", comment)
		return nil
	})
}

// Shelve takes an alarm off the operator's list. With oneShot the alarm is
// shelved until it next clears (it must be active); otherwise for d, which
// must be positive and at most the configured maximum. A shelved alarm is
// still evaluated; when shelving ends an alarm that is active is
// annunciated again.
func (e *Engine) Shelve(id, user string, oneShot bool, d time.Duration, reason string) error {
	return e.operate(id, func(t *tables, ci int32, c *cond) error {
		l := &c.life
		switch {
		case l.OOS:
			return fmt.Errorf("%w: alarm %q is out of service", ErrInvalidTransition, id)
		case l.Shelved != ShelveNone:
			return fmt.Errorf("%w: alarm %q is already shelved", ErrInvalidTransition, id)
		case oneShot && !l.Active:
			return fmt.Errorf("%w: one-shot shelving needs an active alarm; %q is not active", ErrInvalidTransition, id)
		case !oneShot && (d <= 0 || d > e.cfg.maxShelve):
			return fmt.Errorf("%w: shelve duration %v must be within (0, %v]", ErrInvalidTransition, d, e.cfg.maxShelve)
		}
		now := time.Now().UnixNano()
		e.enterSuppression(t, c, now)
		l.ShelvedBy, l.ShelveReason = user, reason
		until := ""
		if oneShot {
			l.Shelved = ShelveOneShot
		} else {
			l.Shelved, l.ShelvedUntil = ShelveTimed, now+int64(d)
			until = time.Unix(0, l.ShelvedUntil).UTC().Format(time.RFC3339Nano)
		}
		e.emit(t, c, model.EventAlarmShelved, now, "", "user", user, "reason", reason, "shelve", string(l.Shelved), "until", until)
		return nil
	})
}

// Unshelve ends shelving; an alarm that is active is annunciated again.
func (e *Engine) Unshelve(id, user, reason string) error {
	return e.operate(id, func(t *tables, ci int32, c *cond) error {
		l := &c.life
		if l.Shelved == ShelveNone {
			return fmt.Errorf("%w: alarm %q is not shelved", ErrInvalidTransition, id)
		}
		now := time.Now().UnixNano()
		l.Shelved, l.ShelvedUntil, l.ShelvedBy, l.ShelveReason = ShelveNone, 0, "", ""
		e.emit(t, c, model.EventAlarmUnshelved, now, "", "user", user, "reason", reason)
		e.leaveSuppression(t, ci, now, "unshelved")
		return nil
	})
}

// SetOutOfService takes an alarm out of service (oos true) for maintenance
// or returns it to service. Out of service alarms are evaluated but never
// annunciated; on return to service an active alarm is annunciated.
func (e *Engine) SetOutOfService(id, user string, oos bool, reason string) error {
	return e.operate(id, func(t *tables, ci int32, c *cond) error {
		l := &c.life
		if l.OOS == oos {
			if oos {
				return fmt.Errorf("%w: alarm %q is already out of service", ErrInvalidTransition, id)
			}
			return fmt.Errorf("%w: alarm %q is in service", ErrInvalidTransition, id)
		}
		now := time.Now().UnixNano()
		if oos {
			e.enterSuppression(t, c, now)
			// shelving ends with out of service
			l.Shelved, l.ShelvedUntil, l.ShelvedBy, l.ShelveReason = ShelveNone, 0, "", ""
			l.OOS, l.OOSBy = true, user
			e.emit(t, c, EventAlarmOutOfService, now, "", "user", user, "reason", reason)
		} else {
			l.OOS, l.OOSBy = false, ""
			e.emit(t, c, EventAlarmInService, now, "", "user", user, "reason", reason)
			e.leaveSuppression(t, ci, now, "returned to service")
		}
		return nil
	})
}

func (e *Engine) flushJournal() {
	if e.j != nil {
		e.j.flush()
	}
}

// Filter selects alarms for Active. Zero fields match everything.
type Filter struct {
	Point       string            `json:"point,omitempty"`        // exact point id
	Prefix      string            `json:"prefix,omitempty"`       // alarm id prefix
	MinPriority Priority          `json:"min_priority,omitempty"` // priority >= MinPriority
	State       State             `json:"state,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"` // every tag must match
	// All includes normal, shelved, suppressed and out-of-service alarms.
	All bool `json:"all,omitempty"`
}

// Active returns the alarms an operator should see (not normal, not
// shelved, suppressed or out of service) that match f, highest priority
// first, then oldest first. With f.All every alarm matching f is returned.
func (e *Engine) Active(f Filter) []Alarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.t
	var out []Alarm
	consider := func(ci int32) {
		c := &t.conds[ci]
		l := &c.life
		if !f.All && (l.State == StateNormal || l.suppressed()) {
			return
		}
		d := &t.defs[c.def].def
		if (f.Point != "" && d.Point != f.Point) || (f.Prefix != "" && !strings.HasPrefix(c.id, f.Prefix)) ||
			l.Priority < f.MinPriority || (f.State != "" && l.State != f.State) {
			return
		}
		for k, v := range f.Tags {
			if d.Tags[k] != v {
				return
			}
		}
		out = append(out, e.view(t, ci))
	}
	if f.All {
		for i := range t.conds {
			consider(int32(i))
		}
	} else {
		for _, ci := range e.live {
			consider(ci)
		}
	}
	slices.SortFunc(out, func(a, b Alarm) int {
		if a.Priority != b.Priority {
			return int(b.Priority - a.Priority)
		}
		if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Get returns one alarm by id.
func (e *Engine) Get(id string) (Alarm, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ci, err := e.lookup(id)
	if err != nil {
		return Alarm{}, err
	}
	return e.view(t, ci), nil
}

// HistoryFilter selects events for History. Zero fields match everything;
// From is inclusive, To exclusive.
type HistoryFilter struct {
	From        time.Time       `json:"from,omitzero"`
	To          time.Time       `json:"to,omitzero"`
	Point       string          `json:"point,omitempty"`
	AlarmID     string          `json:"alarm_id,omitempty"`
	MinPriority Priority        `json:"min_priority,omitempty"`
	State       State           `json:"state,omitempty"` // the alarm's state after the event
	Kind        model.EventKind `json:"kind,omitempty"`
	Limit       int             `json:"limit,omitempty"` // newest Limit events; 0 = all
}

// History returns the recorded alarm events matching f, oldest first. The
// history keeps the newest WithHistorySize events (and survives restarts
// with WithDataDir).
func (e *Engine) History(f HistoryFilter) []model.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.history)
	var out []model.Event
	for i := 0; i < n; i++ {
		ev := e.history[(e.histPos+i)%n]
		if (!f.From.IsZero() && ev.Time.Before(f.From)) || (!f.To.IsZero() && !ev.Time.Before(f.To)) ||
			(f.Point != "" && ev.Point != f.Point) || (f.AlarmID != "" && ev.Attrs["alarm_id"] != f.AlarmID) ||
			(f.State != "" && ev.Attrs["state"] != string(f.State)) || (f.Kind != "" && ev.Kind != f.Kind) {
			continue
		}
		if f.MinPriority > 0 {
			p, err := ParsePriority(ev.Attrs["priority"])
			if err != nil || p < f.MinPriority {
				continue
			}
		}
		out = append(out, ev)
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out
}
