package alarm

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/voltage-ems/ems/model"
)

// State is the ISA-18.2 lifecycle state of an alarm.
type State string

// Lifecycle states. Shelved, suppressed-by-design and out-of-service are
// shown by the flags of Alarm; while one of them applies the alarm is not
// annunciated and its lifecycle state stays normal.
const (
	StateNormal     State = "normal"      // condition clear, nothing to do
	StateUnacked    State = "unacked"     // active, unacknowledged
	StateAcked      State = "acked"       // active, acknowledged
	StateRTNUnacked State = "rtn_unacked" // returned to normal, unacknowledged
	StateLatched    State = "latched"     // latched alarm cleared and acknowledged, waits for reset
)

// ShelveKind says how an alarm is shelved.
type ShelveKind string

// Shelve kinds.
const (
	ShelveNone    ShelveKind = ""
	ShelveOneShot ShelveKind = "one_shot" // until the alarm clears
	ShelveTimed   ShelveKind = "timed"    // until a time
	ShelveChatter ShelveKind = "chatter"  // timed, by chatter detection
)

// life is the lifecycle state of one alarm; it is what the journal stores.
type life struct {
	State        State      `json:"state"`
	Active       bool       `json:"active,omitempty"`
	Priority     Priority   `json:"priority"`
	Value        float64    `json:"value"`
	RaisedAt     int64      `json:"raised_at,omitempty"`
	AckedAt      int64      `json:"acked_at,omitempty"`
	ClearedAt    int64      `json:"cleared_at,omitempty"`
	EscStep      int        `json:"esc_step,omitempty"`
	Shelved      ShelveKind `json:"shelved,omitempty"`
	ShelvedUntil int64      `json:"shelved_until,omitempty"`
	ShelvedBy    string     `json:"shelved_by,omitempty"`
	ShelveReason string     `json:"shelve_reason,omitempty"`
	OOS          bool       `json:"oos,omitempty"`
	OOSBy        string     `json:"oos_by,omitempty"`
	Design       bool       `json:"design,omitempty"`
	DepSupp      bool       `json:"dep_suppressed,omitempty"`
	Group        string     `json:"group,omitempty"`
	FirstOut     bool       `json:"first_out,omitempty"`
	Count        int        `json:"count,omitempty"`
	Chatters     int        `json:"chatters,omitempty"`
}

func (l *life) suppressed() bool { return l.Shelved != ShelveNone || l.OOS || l.Design }

// Alarm is the view of one alarm returned by Active and Get.
type Alarm struct {
	ID           string            `json:"id"`
	Definition   string            `json:"definition"`
	Point        string            `json:"point"`
	Level        string            `json:"level,omitempty"`
	State        State             `json:"state"`
	Active       bool              `json:"active"`
	Priority     Priority          `json:"priority"`
	Severity     model.Severity    `json:"severity"`
	Value        float64           `json:"value"`
	Message      string            `json:"message"`
	Tags         map[string]string `json:"tags,omitempty"`
	RaisedAt     time.Time         `json:"raised_at,omitzero"`
	AckedAt      time.Time         `json:"acked_at,omitzero"`
	ClearedAt    time.Time         `json:"cleared_at,omitzero"`
	Shelved      ShelveKind        `json:"shelved,omitempty"`
	ShelvedUntil time.Time         `json:"shelved_until,omitzero"`
	ShelvedBy    string            `json:"shelved_by,omitempty"`
	OutOfService bool              `json:"out_of_service,omitempty"`
	Suppressed   bool              `json:"suppressed,omitempty"` // by design
	Group        string            `json:"group,omitempty"`
	FirstOut     bool              `json:"first_out,omitempty"`
	Latched      bool              `json:"latched,omitempty"`
}

func tm(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (e *Engine) view(t *tables, ci int32) Alarm {
	c := &t.conds[ci]
	d := &t.defs[c.def].def
	l := &c.life
	return Alarm{
		ID: c.id, Definition: d.ID, Point: d.Point, Level: c.level, State: l.State, Active: l.Active,
		Priority: l.Priority, Severity: l.Priority.Severity(), Value: l.Value,
		Message: e.message(t, c, l.Value), Tags: d.Tags,
		RaisedAt: tm(l.RaisedAt), AckedAt: tm(l.AckedAt), ClearedAt: tm(l.ClearedAt),
		Shelved: l.Shelved, ShelvedUntil: tm(l.ShelvedUntil), ShelvedBy: l.ShelvedBy,
		OutOfService: l.OOS, Suppressed: l.Design, Group: l.Group, FirstOut: l.FirstOut, Latched: d.Latched,
	}
}

// msgData is what a message template sees.
type msgData struct {
	ID, Point, Level string
	Value, Limit     float64
	Priority         Priority
	Tags             map[string]string
}

func (e *Engine) message(t *tables, c *cond, v float64) string {
	cd := t.defs[c.def]
	if cd.tmpl != nil {
		var b bytes.Buffer
		err := cd.tmpl.Execute(&b, msgData{ID: c.id, Point: cd.def.Point, Level: c.level, Value: v, Limit: c.limit, Priority: c.life.Priority, Tags: cd.def.Tags})
		if err == nil {
			return b.String()
		}
	}
	switch c.kind {
	case kHigh, kLow:
		return fmt.Sprintf("%s %s: %g (limit %g)", cd.def.Point, map[condKind]string{kHigh: "high", kLow: "low"}[c.kind]+" "+c.level, v, c.limit)
	case kStale:
		return fmt.Sprintf("%s: no update for %v", cd.def.Point, time.Duration(c.after))
	case kQuality:
		return fmt.Sprintf("%s: bad quality", cd.def.Point)
	case kRate:
		return fmt.Sprintf("%s: rate of change above %g", cd.def.Point, c.limit)
	case kDeviation:
		return fmt.Sprintf("%s: deviation above %g", cd.def.Point, c.limit)
	}
	return fmt.Sprintf("%s: %g", cd.def.Point, v)
}

// emit queues an event about alarm c.
func (e *Engine) emit(t *tables, c *cond, kind model.EventKind, now int64, msg string, attrs ...string) {
	e.seq++
	a := make(map[string]string, 6+len(attrs)/2)
	a["alarm_id"] = c.id
	a["state"] = string(c.life.State)
	a["priority"] = c.life.Priority.String()
	a["value"] = strconv.FormatFloat(c.life.Value, 'g', -1, 64)
	if c.life.Group != "" {
		a["group"] = c.life.Group
	}
	cd := t.defs[c.def]
	a["definition"] = cd.def.ID
	if c.level != "" {
		a["level"] = c.level
		a["limit"] = strconv.FormatFloat(c.limit, 'g', -1, 64)
	}
	for k, v := range cd.def.Tags {
		a["tag."+k] = v
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			a[attrs[i]] = attrs[i+1]
		}
	}
	if msg == "" {
		msg = e.message(t, c, c.life.Value)
	}
	ev := model.Event{
		ID: "alarm-" + strconv.FormatUint(e.seq, 10), Time: time.Unix(0, now), Kind: kind, Source: Source,
		Point: t.defs[c.def].def.Point, Severity: c.life.Priority.Severity(), Message: msg, Attrs: a,
	}
	e.push(ev)
}

// push queues ev, records it in the history and the journal.
func (e *Engine) push(ev model.Event) {
	e.out = append(e.out, ev)
	if len(e.history) < e.cfg.historyN {
		e.history = append(e.history, ev)
	} else {
		e.history[e.histPos] = ev
		e.histPos = (e.histPos + 1) % e.cfg.historyN
	}
	if e.j != nil {
		e.j.event(&ev)
	}
	if e.met != nil {
		e.met.events.WithLabelValues(string(ev.Kind)).Inc()
	}
}

// touch keeps the live list and the journal in step with c's state.
func (e *Engine) touch(t *tables, ci int32) {
	c := &t.conds[ci]
	e.nextTimer = 0
	live := c.life.State != StateNormal || c.life.Shelved != ShelveNone || c.life.OOS || c.life.Active
	switch {
	case live && c.livePos < 0:
		c.livePos = int32(len(e.live))
		e.live = append(e.live, ci)
	case !live && c.livePos >= 0:
		last := e.live[len(e.live)-1]
		e.live[c.livePos] = last
		t.conds[last].livePos = c.livePos
		e.live = e.live[:len(e.live)-1]
		c.livePos = -1
	}
	e.persist(c)
}

func (e *Engine) persist(c *cond) {
	if e.j != nil {
		e.j.state(c)
	}
}

// apply runs one detected transition through the lifecycle.
func (e *Engine) apply(t *tables, ci int32, active bool, v float64, now int64) {
	c := &t.conds[ci]
	l := &c.life
	if l.Active == active {
		return
	}
	l.Active = active
	l.Value = v
	defer e.touch(t, ci)
	if active {
		c.activation(now)
		if l.suppressed() {
			e.countSuppressed(supReason(l))
			return
		}
		if dep := t.defs[c.def].dep; dep >= 0 && t.conds[dep].life.Active {
			l.DepSupp = true
			e.countSuppressed("dependency")
			e.emit(t, c, model.EventAlarmSuppressed, now, "", "reason", "dependency", "depends_on", t.conds[dep].id)
			return
		}
		e.annunciate(t, c, now, "")
		return
	}
	l.ClearedAt = now
	chatter := e.chatter(c, now)
	switch {
	case l.Shelved == ShelveOneShot:
		l.Shelved, l.ShelvedBy, l.ShelveReason = ShelveNone, "", ""
		l.State = StateNormal
		e.emit(t, c, model.EventAlarmUnshelved, now, "", "reason", "one-shot shelve ended: alarm cleared")
	case l.suppressed():
	case l.DepSupp:
		l.DepSupp = false
	default:
		switch l.State {
		case StateUnacked:
			l.State = StateRTNUnacked
		case StateAcked:
			if t.defs[c.def].def.Latched {
				l.State = StateLatched
			} else {
				l.State = StateNormal
			}
		}
		e.emit(t, c, model.EventAlarmCleared, now, "")
	}
	if chatter && l.Shelved == ShelveNone && !l.OOS {
		l.Chatters++
		e.kpi.chatter++
		if e.met != nil {
			e.met.chatter.Inc()
		}
		e.enterSuppression(t, c, now)
		l.Shelved, l.ShelvedUntil, l.ShelvedBy = ShelveChatter, now+int64(e.cfg.chatterShlv), "system"
		l.ShelveReason = fmt.Sprintf("chattering: %d cycles within %v", e.cfg.chatterN, e.cfg.chatterWin)
		e.emit(t, c, EventAlarmChatter, now, "", "reason", l.ShelveReason, "user", "system")
		e.emit(t, c, model.EventAlarmShelved, now, "", "reason", l.ShelveReason, "user", "system",
			"until", time.Unix(0, l.ShelvedUntil).UTC().Format(time.RFC3339Nano))
	}
	// a dependency cleared: dependents held back by it are created now
	for _, di := range c.dependents {
		dc := &t.conds[di]
		if dc.life.DepSupp {
			dc.life.DepSupp = false
			if dc.life.Active && !dc.life.suppressed() {
				e.annunciate(t, dc, now, "dependency cleared")
			}
			e.touch(t, di)
		}
	}
}

func supReason(l *life) string {
	switch {
	case l.OOS:
		return "out_of_service"
	case l.Shelved != ShelveNone:
		return "shelved"
	}
	return "design"
}

// chatter reports, on a clear, whether the last n active→clear cycles all
// happened within the chatter window (from the oldest cycle's activation
// to now).
func (e *Engine) chatter(c *cond, now int64) bool {
	n := len(c.clears)
	if n == 0 || c.clearN < n {
		return false
	}
	oldest := c.clears[c.clearN%n]
	return now-oldest <= int64(e.cfg.chatterWin)
}

// activation records the activation time for chatter detection.
func (c *cond) activation(now int64) {
	if n := len(c.clears); n > 0 {
		c.clears[c.clearN%n] = now
		c.clearN++
	}
}

// annunciate raises c (it is active and not suppressed).
func (e *Engine) annunciate(t *tables, c *cond, now int64, reason string) {
	l := &c.life
	l.State = StateUnacked
	l.RaisedAt = now
	l.AckedAt = 0
	l.Priority = c.prio
	l.EscStep = 0
	l.Count++
	e.kpi.annunciation(now, l.Priority)
	hidden := ""
	if e.sup != nil {
		if w, ok := e.sup.Get(c.id); ok && now-w.start < int64(e.cfg.supWindow) {
			w.count++
			if w.count > e.cfg.supN {
				hidden = "suppressor"
				if !w.notified {
					w.notified = true
					e.emit(t, c, model.EventAlarmSuppressed, now, "", "reason", "suppressor",
						"until", time.Unix(0, w.start+int64(e.cfg.supWindow)).UTC().Format(time.RFC3339Nano))
				}
			}
		} else {
			e.sup.Add(c.id, &supWindow{start: now, count: 1})
		}
	}
	if e.flood.record(now, int64(e.cfg.floodWin)) {
		e.flood.begin(now)
		e.pushFlood(now, "start")
	}
	if hidden == "" && e.flood.active && l.Priority < e.cfg.floodMin {
		hidden = "flood"
		e.flood.hidden++
	}
	if cd := t.defs[c.def]; cd.corrKey != "" && e.cfg.corrWin > 0 {
		l.Group, l.FirstOut = e.groups.join(cd.corrKey, c.id, now, int64(e.cfg.corrWin))
	}
	if hidden != "" {
		e.countSuppressed(hidden)
		return
	}
	attrs := []string{"reason", reason}
	if l.Group != "" {
		attrs = append(attrs, "first_out", e.groups.firstOut(l.Group))
	}
	e.emit(t, c, model.EventAlarmRaised, now, "", attrs...)
}

func (e *Engine) countSuppressed(reason string) {
	e.kpi.suppressed++
	if e.met != nil {
		e.met.suppressed.WithLabelValues(reason).Inc()
	}
}

// enterSuppression hides c: its lifecycle goes back to normal, the
// condition keeps being tracked.
func (e *Engine) enterSuppression(t *tables, c *cond, now int64) {
	if c.life.suppressed() {
		return
	}
	c.life.State = StateNormal
	c.life.DepSupp = false
}

// leaveSuppression shows the true state once no suppression applies.
func (e *Engine) leaveSuppression(t *tables, ci int32, now int64, reason string) {
	c := &t.conds[ci]
	if c.life.suppressed() {
		return
	}
	if c.life.Active {
		if dep := t.defs[c.def].dep; dep >= 0 && t.conds[dep].life.Active {
			c.life.DepSupp = true
			return
		}
		e.annunciate(t, c, now, reason)
	}
}

// timers handles shelve expiry, escalation and re-alarm on live alarms.
//
// It remembers the earliest deadline it saw and skips the scan until then;
// every lifecycle change (touch) resets that, so a new deadline is never
// missed.
func (e *Engine) timers(t *tables, now int64) {
	if now < e.nextTimer {
		return
	}
	next := int64(math.MaxInt64)
	for i := 0; i < len(e.live); i++ {
		ci := e.live[i]
		c := &t.conds[ci]
		l := &c.life
		cd := t.defs[c.def]
		changed := false
		if (l.Shelved == ShelveTimed || l.Shelved == ShelveChatter) && now >= l.ShelvedUntil {
			l.Shelved, l.ShelvedUntil, l.ShelvedBy, l.ShelveReason = ShelveNone, 0, "", ""
			e.emit(t, c, model.EventAlarmUnshelved, now, "", "reason", "shelve time expired", "user", "system")
			e.leaveSuppression(t, ci, now, "unshelved")
			changed = true
		}
		if l.State == StateUnacked && !l.suppressed() {
			for l.EscStep < len(cd.esc) && now-l.RaisedAt >= int64(cd.esc[l.EscStep].After) {
				st := cd.esc[l.EscStep]
				l.EscStep++
				if st.Priority > l.Priority {
					l.Priority = st.Priority
				}
				e.emit(t, c, model.EventAlarmEscalated, now, "", "reason",
					fmt.Sprintf("unacknowledged for %v", time.Duration(st.After)), "step", strconv.Itoa(l.EscStep))
				changed = true
			}
		}
		if l.State == StateAcked && l.Active && cd.realarm > 0 && now-l.AckedAt >= cd.realarm && !l.suppressed() {
			e.annunciate(t, c, now, "realarm")
			changed = true
		}
		if l.Shelved == ShelveTimed || l.Shelved == ShelveChatter {
			next = min(next, l.ShelvedUntil)
		}
		if l.State == StateUnacked && l.EscStep < len(cd.esc) {
			next = min(next, l.RaisedAt+int64(cd.esc[l.EscStep].After))
		}
		if l.State == StateAcked && cd.realarm > 0 {
			next = min(next, l.AckedAt+cd.realarm)
		}
		if changed {
			e.touch(t, ci)
			// touch may have swapped another alarm into slot i
			if c.livePos != int32(i) {
				i--
			}
		}
	}
	e.nextTimer = next
}

// evalSuppression re-evaluates suppress_when conditions whose inputs may
// have changed: a point they read was updated since their last evaluation,
// or (for conditions reading alarm states or computed ids) changed is set.
func (e *Engine) evalSuppression(t *tables, now int64, changed bool) {
	for _, di := range t.withSup {
		cd := t.defs[di]
		due := cd.evalAt == 0 || (changed && cd.dynamic)
		for _, pi := range cd.refs {
			if due {
				break
			}
			due = t.points[pi].batch > cd.evalAt
		}
		if !due {
			continue
		}
		cd.evalAt = e.batch
		res, err := e.runExpr(cd)
		if err != nil {
			e.log.Warn("alarm: suppress_when failed", "alarm", cd.def.ID, "err", err)
			continue
		}
		for _, ci := range cd.conds {
			c := &t.conds[ci]
			if c.life.Design == res {
				continue
			}
			if res {
				e.enterSuppression(t, c, now)
				c.life.Design = true
				e.countSuppressed("design")
				e.emit(t, c, model.EventAlarmSuppressed, now, "", "reason", "design", "condition", cd.def.SuppressWhen)
			} else {
				c.life.Design = false
				e.emit(t, c, EventAlarmUnsuppressed, now, "", "reason", "design", "condition", cd.def.SuppressWhen)
				e.leaveSuppression(t, ci, now, "suppression ended")
			}
			e.touch(t, ci)
		}
	}
}
