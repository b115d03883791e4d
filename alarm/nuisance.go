package alarm

import (
	"slices"
	"strconv"
	"time"

	"github.com/voltage-ems/ems/model"
)

// supWindow is the per-alarm state of the window/threshold suppressor.
type supWindow struct {
	start    int64
	count    int
	notified bool
}

// floodState detects floods: more than n annunciations within the window.
// ring holds the times of the last n+1 annunciations.
type floodState struct {
	ring    []int64
	pos     int
	filled  int
	active  bool
	since   int64
	hidden  int
	total   int64 // ns spent in flood before the current one
	summary int64 // time of the last summary
	floods  int
}

func (f *floodState) init(n int) {
	if n > 0 {
		f.ring = make([]int64, n+1)
	}
}

// record notes an annunciation and reports whether a flood starts.
func (f *floodState) record(now, window int64) bool {
	if len(f.ring) == 0 {
		return false
	}
	f.ring[f.pos] = now
	f.pos = (f.pos + 1) % len(f.ring)
	if f.filled < len(f.ring) {
		f.filled++
	}
	return !f.active && f.over(now, window)
}

// over reports whether more than n annunciations fall within the window.
func (f *floodState) over(now, window int64) bool {
	if f.filled < len(f.ring) {
		return false
	}
	oldest := f.ring[f.pos] // pos is the oldest slot once the ring is full
	return now-oldest <= window
}

func (f *floodState) begin(now int64) {
	f.active, f.since, f.hidden, f.summary = true, now, 0, now
	f.floods++
}

func (e *Engine) pushFlood(now int64, phase string) {
	f := &e.flood
	msg := "alarm flood: more than " + strconv.Itoa(e.cfg.floodN) + " alarms in " + e.cfg.floodWin.String() +
		"; only priority >= " + e.cfg.floodMin.String() + " annunciated"
	attrs := map[string]string{"phase": phase, "min_priority": e.cfg.floodMin.String()}
	switch phase {
	case "end":
		msg = "alarm flood ended after " + time.Duration(now-f.since).String() + "; " + strconv.Itoa(f.hidden) + " alarms not annunciated"
	case "summary":
		msg = "alarm flood going on for " + time.Duration(now-f.since).String() + "; " + strconv.Itoa(f.hidden) + " alarms not annunciated so far"
	}
	if phase != "start" {
		attrs["hidden"] = strconv.Itoa(f.hidden)
		attrs["duration"] = time.Duration(now - f.since).String()
	}
	e.seq++
	e.push(model.Event{ID: "alarm-" + strconv.FormatUint(e.seq, 10), Time: time.Unix(0, now), Kind: model.EventAlarmFlood,
		Source: Source, Severity: model.SeverityHigh, Message: msg, Attrs: attrs})
}

// floodTick ends a flood once the rate fell, and reports a summary every
// flood window while it lasts.
func (e *Engine) floodTick(now int64) {
	f := &e.flood
	if !f.active {
		return
	}
	if !f.over(now, int64(e.cfg.floodWin)) {
		e.pushFlood(now, "end")
		f.active = false
		f.total += now - f.since
		return
	}
	if now-f.summary >= int64(e.cfg.floodWin) {
		e.pushFlood(now, "summary")
		f.summary = now
	}
}

// groupState is the correlation of alarms into groups.
type groupState struct {
	open map[string]*group // by correlation key
	byID map[string]*group
	next uint64
}

type group struct {
	ID       string   `json:"id"`
	Key      string   `json:"key"`
	FirstOut string   `json:"first_out"`
	Members  []string `json:"members"`
	Start    int64    `json:"start"`
	Last     int64    `json:"last"`
}

// Group is a set of correlated alarms; FirstOut is the first alarm of the
// group, the root-cause candidate.
type Group struct {
	ID       string    `json:"id"`
	Key      string    `json:"key"`
	FirstOut string    `json:"first_out"`
	Members  []string  `json:"members"`
	Start    time.Time `json:"start"`
	Last     time.Time `json:"last"`
}

func (g *groupState) init() {
	g.open = map[string]*group{}
	g.byID = map[string]*group{}
}

const maxGroupMembers = 1000

// join adds alarm id to the open group of key (or a new one) and reports
// the group id and whether id is the first-out.
func (g *groupState) join(key, id string, now, window int64) (string, bool) {
	gr := g.open[key]
	if gr == nil || now-gr.Last > window {
		g.next++
		gr = &group{ID: key + "#" + strconv.FormatUint(g.next, 10), Key: key, FirstOut: id, Start: now}
		g.open[key] = gr
		g.byID[gr.ID] = gr
	}
	gr.Last = now
	if len(gr.Members) < maxGroupMembers && !slices.Contains(gr.Members, id) {
		gr.Members = append(gr.Members, id)
	}
	return gr.ID, gr.FirstOut == id
}

func (g *groupState) firstOut(id string) string {
	if gr := g.byID[id]; gr != nil {
		return gr.FirstOut
	}
	return ""
}

// prune forgets groups closed for longer than 10 windows.
func (g *groupState) prune(now, window int64) {
	for k, gr := range g.open {
		if now-gr.Last > window {
			delete(g.open, k)
		}
	}
	for id, gr := range g.byID {
		if now-gr.Last > 10*window {
			delete(g.byID, id)
		}
	}
}

// Groups returns the recent alarm groups, newest first.
func (e *Engine) Groups() []Group {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Group, 0, len(e.groups.byID))
	for _, g := range e.groups.byID {
		out = append(out, Group{ID: g.ID, Key: g.Key, FirstOut: g.FirstOut, Members: slices.Clone(g.Members), Start: tm(g.Start), Last: tm(g.Last)})
	}
	slices.SortFunc(out, func(a, b Group) int { return b.Start.Compare(a.Start) })
	return out
}
