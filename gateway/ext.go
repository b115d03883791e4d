package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

// Alarms is what the gateway reads from an alarm engine. *alarm.Engine
// implements it and the optional AlarmOperator and AlarmDefinitions; a
// vendor's engine implements what it supports, and the routes of a missing
// capability answer 501.
type Alarms interface {
	Active(f alarm.Filter) []alarm.Alarm
	Get(id string) (alarm.Alarm, error)
	History(f alarm.HistoryFilter) []model.Event
	KPIs() alarm.KPIs
}

// AlarmOperator is the optional operator capability of an Alarms backend.
type AlarmOperator interface {
	Ack(id, user, comment string) error
	Reset(id, user, comment string) error
	Shelve(id, user string, oneShot bool, d time.Duration, reason string) error
	Unshelve(id, user, reason string) error
}

// AlarmDefinitions is the optional definition-management capability of an
// Alarms backend.
type AlarmDefinitions interface {
	Definitions() []alarm.Definition
	Definition(id string) (alarm.Definition, error)
	AddDefinition(d alarm.Definition, user string) error
	UpdateDefinition(d alarm.Definition, user string) error
	RemoveDefinition(id, user string) error
}

// Rules is what the gateway reads from a rule engine. *rule.Runner
// implements it and every optional rule capability below.
type Rules interface {
	Rules() []rule.Spec
	Rule(id string) (rule.Spec, error)
}

// RuleEditor is the optional create/update/delete capability.
type RuleEditor interface {
	Add(s rule.Spec) error
	Update(s rule.Spec) error
	Remove(id string) error
}

// RuleToggler is the optional enable/disable capability.
type RuleToggler interface {
	Enable(id string) error
	Disable(id string) error
}

// RuleStatser is the optional statistics capability.
type RuleStatser interface {
	Stats() []rule.Stats
	RuleStats(id string) (rule.Stats, error)
}

// RuleDryRunner is the optional dry-run capability.
type RuleDryRunner interface {
	DryRun(id string, values map[string]float64) (rule.DryRunResult, error)
}

// History queries stored samples; every history.Store (and *history.DB)
// implements it.
type History interface {
	Query(ctx context.Context, q history.Query) ([]history.Series, error)
}

// Cache tags of the alarm, rule and history routes.
const (
	TagAlarms           = "alarms"
	TagAlarmDefinitions = "alarm-definitions"
	TagRules            = "rules"
	TagHistory          = "history"
)

// extBackends holds the alarm, rule and history backends.
type extBackends struct {
	alarms  *pool[Alarms]
	rules   *pool[Rules]
	history *pool[History]
}

func newExtBackends(c *config, bv *prometheus.GaugeVec) extBackends {
	var e extBackends
	if len(c.alarms) > 0 {
		e.alarms = newPool("alarms", c.breaker, bv, c.alarms)
	}
	if len(c.rules) > 0 {
		e.rules = newPool("rules", c.breaker, bv, c.rules)
	}
	if len(c.history) > 0 {
		e.history = newPool("history", c.breaker, bv, c.history)
	}
	return e
}

func (e extBackends) breakerStates(m map[string][]string) {
	if e.alarms != nil {
		m["alarms"] = e.alarms.states()
	}
	if e.rules != nil {
		m["rules"] = e.rules.states()
	}
	if e.history != nil {
		m["history"] = e.history.states()
	}
}

// WithAlarms sets the alarm backend(s).
func WithAlarms(a Alarms, more ...Alarms) Option {
	return func(c *config) error { return addBackends(&c.alarms, "alarms", a, more) }
}

// WithRules sets the rule backend(s).
func WithRules(r Rules, more ...Rules) Option {
	return func(c *config) error { return addBackends(&c.rules, "rules", r, more) }
}

// WithHistory sets the history backend(s), e.g. several replicas of a
// remote store: they are used round-robin, one breaker each, and an open
// breaker answers 503 at once.
func WithHistory(h History, more ...History) Option {
	return func(c *config) error { return addBackends(&c.history, "history", h, more) }
}

func (s *Server) extRoutes() []Route {
	hf := func(f func(http.ResponseWriter, *http.Request)) http.Handler { return http.HandlerFunc(f) }
	alarmsTags := []string{TagAlarms}
	defTags := []string{TagAlarmDefinitions, TagAlarms}
	return []Route{
		{Method: "GET", Path: "/alarms", Role: RoleViewer, Handler: hf(s.listAlarms), CacheTag: TagAlarms},
		{Method: "GET", Path: "/alarms/{id}", Role: RoleViewer, Handler: hf(s.getAlarm), CacheTag: TagAlarms},
		{Method: "POST", Path: "/alarms/{id}/ack", Role: RoleOperator, Handler: hf(s.alarmOp("ack")), Invalidates: alarmsTags},
		{Method: "POST", Path: "/alarms/{id}/reset", Role: RoleOperator, Handler: hf(s.alarmOp("reset")), Invalidates: alarmsTags},
		{Method: "POST", Path: "/alarms/{id}/shelve", Role: RoleOperator, Handler: hf(s.alarmOp("shelve")), Invalidates: alarmsTags},
		{Method: "POST", Path: "/alarms/{id}/unshelve", Role: RoleOperator, Handler: hf(s.alarmOp("unshelve")), Invalidates: alarmsTags},
		{Method: "GET", Path: "/alarm-history", Role: RoleViewer, Handler: hf(s.alarmHistory), CacheTag: TagAlarms},
		{Method: "GET", Path: "/alarm-kpis", Role: RoleViewer, Handler: hf(s.alarmKPIs), CacheTag: TagAlarms},
		{Method: "GET", Path: "/alarm-definitions", Role: RoleViewer, Handler: hf(s.listAlarmDefs), CacheTag: TagAlarmDefinitions},
		{Method: "POST", Path: "/alarm-definitions", Role: RoleAdmin, Handler: hf(s.createAlarmDef), Invalidates: defTags},
		{Method: "GET", Path: "/alarm-definitions/{id}", Role: RoleViewer, Handler: hf(s.getAlarmDef), CacheTag: TagAlarmDefinitions},
		{Method: "PUT", Path: "/alarm-definitions/{id}", Role: RoleAdmin, Handler: hf(s.updateAlarmDef), Invalidates: defTags},
		{Method: "DELETE", Path: "/alarm-definitions/{id}", Role: RoleAdmin, Handler: hf(s.deleteAlarmDef), Invalidates: defTags},

		{Method: "GET", Path: "/rules", Role: RoleViewer, Handler: hf(s.listRules), CacheTag: TagRules},
		{Method: "POST", Path: "/rules", Role: RoleAdmin, Handler: hf(s.createRule), Invalidates: []string{TagRules}},
		{Method: "GET", Path: "/rules/{id}", Role: RoleViewer, Handler: hf(s.getRule), CacheTag: TagRules},
		{Method: "PUT", Path: "/rules/{id}", Role: RoleAdmin, Handler: hf(s.updateRule), Invalidates: []string{TagRules}},
		{Method: "DELETE", Path: "/rules/{id}", Role: RoleAdmin, Handler: hf(s.deleteRule), Invalidates: []string{TagRules}},
		{Method: "POST", Path: "/rules/{id}/enable", Role: RoleAdmin, Handler: hf(s.toggleRule(true)), Invalidates: []string{TagRules}},
		{Method: "POST", Path: "/rules/{id}/disable", Role: RoleAdmin, Handler: hf(s.toggleRule(false)), Invalidates: []string{TagRules}},
		{Method: "POST", Path: "/rules/{id}/dry-run", Role: RoleViewer, Handler: hf(s.dryRunRule)},
		{Method: "GET", Path: "/rules/{id}/stats", Role: RoleViewer, Handler: hf(s.ruleStats), CacheTag: TagRules},
		{Method: "GET", Path: "/rule-stats", Role: RoleViewer, Handler: hf(s.allRuleStats), CacheTag: TagRules},

		{Method: "GET", Path: "/history", Role: RoleViewer, Handler: hf(s.queryHistory), CacheTag: TagHistory},
	}
}

// capability runs fn on the optional capability C of a backend from p, or
// fails with ErrNotConfigured and the missing message, which the error
// mapping answers with 501.
func capability[B, C any](p *pool[B], missing string, fn func(C) error) error {
	return p.do(func(b B) error {
		c, ok := any(b).(C)
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotConfigured, missing)
		}
		return fn(c)
	})
}

// writeList answers a GET of a whole list without query parameters: fetch
// fills the list, a nil list is sent as empty, and wrap adds the count.
func writeList[T any](w http.ResponseWriter, r *http.Request, fetch func(*[]T) error, wrap func([]T) any) {
	if err := noQuery(r); err != nil {
		writeError(w, err)
		return
	}
	var out []T
	if err := fetch(&out); err != nil {
		writeError(w, err)
		return
	}
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, wrap(out))
}

// ---- alarms ----

type alarmList struct {
	Count  int           `json:"count"`
	Alarms []alarm.Alarm `json:"alarms"`
}

func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "point", "prefix", "min_priority", "state", "all")
	if err != nil {
		writeError(w, err)
		return
	}
	var f alarm.Filter
	if f.Point = q["point"]; f.Point != "" {
		if err := checkID("point", f.Point); err != nil {
			writeError(w, err)
			return
		}
	}
	f.Prefix = q["prefix"]
	if f.MinPriority, err = priorityParam(q); err != nil {
		writeError(w, err)
		return
	}
	if f.State, err = stateParam(q); err != nil {
		writeError(w, err)
		return
	}
	if v, ok := q["all"]; ok {
		if f.All, err = strconv.ParseBool(v); err != nil {
			writeError(w, badRequest("all %q must be true or false", v))
			return
		}
	}
	var out []alarm.Alarm
	if err := s.ext.alarms.do(func(a Alarms) error { out = a.Active(f); return nil }); err != nil {
		writeError(w, err)
		return
	}
	if out == nil {
		out = []alarm.Alarm{}
	}
	writeJSON(w, http.StatusOK, alarmList{Count: len(out), Alarms: out})
}

func priorityParam(q map[string]string) (alarm.Priority, error) {
	v, ok := q["min_priority"]
	if !ok {
		return 0, nil
	}
	p, err := alarm.ParsePriority(v)
	if err != nil {
		return 0, badRequest("min_priority %q: %v", v, err)
	}
	return p, nil
}

var alarmStates = []alarm.State{alarm.StateNormal, alarm.StateUnacked, alarm.StateAcked, alarm.StateRTNUnacked, alarm.StateLatched}

func stateParam(q map[string]string) (alarm.State, error) {
	v, ok := q["state"]
	if !ok {
		return "", nil
	}
	for _, st := range alarmStates {
		if string(st) == v {
			return st, nil
		}
	}
	return "", badRequest("state %q must be one of normal, unacked, acked, rtn_unacked, latched", v)
}

func (s *Server) getAlarm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("alarm id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	var out alarm.Alarm
	if err := s.ext.alarms.do(func(a Alarms) (err error) { out, err = a.Get(id); return }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type alarmOpRequest struct {
	Comment  string `json:"comment"`
	Reason   string `json:"reason"`
	OneShot  bool   `json:"one_shot"`
	Duration string `json:"duration"`
}

type alarmOpResult struct {
	Alarm string `json:"alarm"`
	Op    string `json:"op"`
	User  string `json:"user"`
	Time  string `json:"time"`
}

// alarmOp handles ack, reset, shelve and unshelve. The body is optional
// for ack, reset and unshelve; shelve needs one_shot or a duration.
func (s *Server) alarmOp(op string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := firstErr(checkID("alarm id", id), noQuery(r)); err != nil {
			writeError(w, err)
			return
		}
		var req alarmOpRequest
		if r.ContentLength != 0 || op == "shelve" {
			if err := decodeJSON(r, &req); err != nil {
				writeError(w, err)
				return
			}
		}
		if len(req.Comment) > 1024 || len(req.Reason) > 1024 {
			writeError(w, badRequest("comment and reason are limited to 1024 bytes"))
			return
		}
		var d time.Duration
		switch {
		case op == "shelve" && req.OneShot && req.Duration != "":
			writeError(w, badRequest("shelve takes one_shot or duration, not both"))
			return
		case op == "shelve" && !req.OneShot:
			var err error
			if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 {
				writeError(w, badRequest("shelve needs \"one_shot\": true or a positive \"duration\" like \"30m\" (got %q)", req.Duration))
				return
			}
		case op != "shelve" && (req.OneShot || req.Duration != ""):
			writeError(w, badRequest("one_shot and duration only apply to shelve"))
			return
		}
		user := principalOf(r.Context()).name
		err := capability(s.ext.alarms, "the alarm backend has no operator capability", func(o AlarmOperator) error {
			switch op {
			case "ack":
				return o.Ack(id, user, req.Comment)
			case "reset":
				return o.Reset(id, user, req.Comment)
			case "shelve":
				return o.Shelve(id, user, req.OneShot, d, req.Reason)
			default:
				return o.Unshelve(id, user, req.Reason)
			}
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, alarmOpResult{Alarm: id, Op: op, User: user, Time: time.Now().UTC().Format(time.RFC3339Nano)})
	}
}

type eventList struct {
	Count  int           `json:"count"`
	Events []model.Event `json:"events"`
}

func (s *Server) alarmHistory(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "from", "to", "point", "alarm_id", "min_priority", "state", "kind", "limit")
	if err != nil {
		writeError(w, err)
		return
	}
	var f alarm.HistoryFilter
	if f.From, err = timeParam(q, "from"); err != nil {
		writeError(w, err)
		return
	}
	if f.To, err = timeParam(q, "to"); err != nil {
		writeError(w, err)
		return
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		writeError(w, badRequest("from %s is after to %s", q["from"], q["to"]))
		return
	}
	f.Point, f.AlarmID, f.Kind = q["point"], q["alarm_id"], model.EventKind(q["kind"])
	if f.MinPriority, err = priorityParam(q); err != nil {
		writeError(w, err)
		return
	}
	if f.State, err = stateParam(q); err != nil {
		writeError(w, err)
		return
	}
	if f.Limit, err = intParam(q, "limit", 1000, 1, 100000); err != nil {
		writeError(w, err)
		return
	}
	var out []model.Event
	if err := s.ext.alarms.do(func(a Alarms) error { out = a.History(f); return nil }); err != nil {
		writeError(w, err)
		return
	}
	if out == nil {
		out = []model.Event{}
	}
	writeJSON(w, http.StatusOK, eventList{Count: len(out), Events: out})
}

func (s *Server) alarmKPIs(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		writeError(w, err)
		return
	}
	var k alarm.KPIs
	if err := s.ext.alarms.do(func(a Alarms) error { k = a.KPIs(); return nil }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

type alarmDefList struct {
	Count       int                `json:"count"`
	Definitions []alarm.Definition `json:"definitions"`
}

func (s *Server) listAlarmDefs(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, func(out *[]alarm.Definition) error {
		return capability(s.ext.alarms, "the alarm backend has no definition management", func(d AlarmDefinitions) error { *out = d.Definitions(); return nil })
	}, func(out []alarm.Definition) any { return alarmDefList{Count: len(out), Definitions: out} })
}

func (s *Server) getAlarmDef(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("definition id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	var out alarm.Definition
	if err := capability(s.ext.alarms, "the alarm backend has no definition management", func(d AlarmDefinitions) (err error) { out, err = d.Definition(id); return }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createAlarmDef(w http.ResponseWriter, r *http.Request) {
	var def alarm.Definition
	if err := firstErr(noQuery(r), decodeJSON(r, &def)); err != nil {
		writeError(w, err)
		return
	}
	if err := checkID("definition id", def.ID); err != nil {
		writeError(w, err)
		return
	}
	user := principalOf(r.Context()).name
	if err := capability(s.ext.alarms, "the alarm backend has no definition management", func(d AlarmDefinitions) error { return d.AddDefinition(def, user) }); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+def.ID)
	writeJSON(w, http.StatusCreated, def)
}

func (s *Server) updateAlarmDef(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var def alarm.Definition
	if err := firstErr(checkID("definition id", id), noQuery(r), decodeJSON(r, &def)); err != nil {
		writeError(w, err)
		return
	}
	if def.ID == "" {
		def.ID = id
	} else if def.ID != id {
		writeError(w, badRequest("body id %q does not match the path id %q", def.ID, id))
		return
	}
	user := principalOf(r.Context()).name
	if err := capability(s.ext.alarms, "the alarm backend has no definition management", func(d AlarmDefinitions) error { return d.UpdateDefinition(def, user) }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, def)
}

func (s *Server) deleteAlarmDef(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("definition id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	user := principalOf(r.Context()).name
	if err := capability(s.ext.alarms, "the alarm backend has no definition management", func(d AlarmDefinitions) error { return d.RemoveDefinition(id, user) }); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- rules ----

type ruleList struct {
	Count int         `json:"count"`
	Rules []rule.Spec `json:"rules"`
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, func(out *[]rule.Spec) error {
		return s.ext.rules.do(func(rs Rules) error { *out = rs.Rules(); return nil })
	}, func(out []rule.Spec) any { return ruleList{Count: len(out), Rules: out} })
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("rule id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	var out rule.Spec
	if err := s.ext.rules.do(func(rs Rules) (err error) { out, err = rs.Rule(id); return }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) {
	var spec rule.Spec
	if err := firstErr(noQuery(r), decodeJSON(r, &spec)); err != nil {
		writeError(w, err)
		return
	}
	if err := checkID("rule id", spec.ID); err != nil {
		writeError(w, err)
		return
	}
	if err := capability(s.ext.rules, "the rule backend cannot edit rules", func(e RuleEditor) error { return e.Add(spec) }); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+spec.ID)
	writeJSON(w, http.StatusCreated, spec)
}

func (s *Server) updateRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var spec rule.Spec
	if err := firstErr(checkID("rule id", id), noQuery(r), decodeJSON(r, &spec)); err != nil {
		writeError(w, err)
		return
	}
	if spec.ID == "" {
		spec.ID = id
	} else if spec.ID != id {
		writeError(w, badRequest("body id %q does not match the path id %q", spec.ID, id))
		return
	}
	if err := capability(s.ext.rules, "the rule backend cannot edit rules", func(e RuleEditor) error { return e.Update(spec) }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, spec)
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("rule id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	if err := capability(s.ext.rules, "the rule backend cannot edit rules", func(e RuleEditor) error { return e.Remove(id) }); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type ruleState struct {
	Rule    string `json:"rule"`
	Enabled bool   `json:"enabled"`
}

func (s *Server) toggleRule(enable bool) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := firstErr(checkID("rule id", id), noQuery(r), noBody(r)); err != nil {
			writeError(w, err)
			return
		}
		err := capability(s.ext.rules, "the rule backend cannot enable or disable rules", func(t RuleToggler) error {
			if enable {
				return t.Enable(id)
			}
			return t.Disable(id)
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ruleState{Rule: id, Enabled: enable})
	}
}

type dryRunRequest struct {
	Values map[string]float64 `json:"values"`
}

func (s *Server) dryRunRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req dryRunRequest
	if err := firstErr(checkID("rule id", id), noQuery(r), decodeJSON(r, &req)); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Values) > 10000 {
		writeError(w, badRequest("values has %d entries; at most 10000", len(req.Values)))
		return
	}
	for p := range req.Values {
		if err := checkID("values key", p); err != nil {
			writeError(w, err)
			return
		}
	}
	var out rule.DryRunResult
	err := capability(s.ext.rules, "the rule backend has no dry run", func(d RuleDryRunner) (err error) {
		out, err = d.DryRun(id, req.Values)
		return err
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) ruleStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := firstErr(checkID("rule id", id), noQuery(r)); err != nil {
		writeError(w, err)
		return
	}
	var out rule.Stats
	if err := capability(s.ext.rules, "the rule backend keeps no statistics", func(st RuleStatser) (err error) { out, err = st.RuleStats(id); return }); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type statsList struct {
	Count int          `json:"count"`
	Stats []rule.Stats `json:"stats"`
}

func (s *Server) allRuleStats(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, func(out *[]rule.Stats) error {
		return capability(s.ext.rules, "the rule backend keeps no statistics", func(st RuleStatser) error { *out = st.Stats(); return nil })
	}, func(out []rule.Stats) any { return statsList{Count: len(out), Stats: out} })
}

// ---- history ----

type historyResult struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Step        string           `json:"step,omitempty"`
	Aggregation string           `json:"aggregation"`
	Series      []history.Series `json:"series"`
}

// queryHistory: GET /history?points=a,b*&from=&to=&step=1m&agg=avg&format=json|csv.
// from and to are RFC 3339 times or Unix seconds; to defaults to now and
// from to one hour before to. CSV is chosen by format=csv or Accept: text/csv.
func (s *Server) queryHistory(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "points", "from", "to", "step", "agg", "format")
	if err != nil {
		writeError(w, err)
		return
	}
	var hq history.Query
	if q["points"] == "" {
		writeError(w, badRequest("points is required: comma-separated point ids or globs"))
		return
	}
	for p := range strings.SplitSeq(q["points"], ",") {
		p = strings.TrimSpace(p)
		if err := checkID("points entry", p); err != nil {
			writeError(w, err)
			return
		}
		if !model.ValidPattern(p) {
			writeError(w, badRequest("points entry %q is not a valid glob", p))
			return
		}
		hq.Points = append(hq.Points, p)
	}
	if len(hq.Points) > 1000 {
		writeError(w, badRequest("points lists %d entries; at most 1000", len(hq.Points)))
		return
	}
	if hq.To, err = timeParam(q, "to"); err != nil {
		writeError(w, err)
		return
	}
	if hq.To.IsZero() {
		hq.To = time.Now().UTC()
	}
	if hq.From, err = timeParam(q, "from"); err != nil {
		writeError(w, err)
		return
	}
	if hq.From.IsZero() {
		hq.From = hq.To.Add(-time.Hour)
	}
	if hq.From.After(hq.To) {
		writeError(w, badRequest("from %s is after to %s", hq.From.Format(time.RFC3339Nano), hq.To.Format(time.RFC3339Nano)))
		return
	}
	if v, ok := q["step"]; ok {
		if hq.Step, err = time.ParseDuration(v); err != nil || hq.Step <= 0 {
			writeError(w, badRequest("step %q must be a positive duration like 1m or 15s", v))
			return
		}
	}
	if hq.Agg, err = history.ParseAggregation(q["agg"]); err != nil {
		writeError(w, badRequest("agg %q is unknown; use raw, avg, min, max, sum, count, first or last", q["agg"]))
		return
	}
	if hq.Agg != history.AggRaw && hq.Step == 0 {
		writeError(w, badRequest("agg %s needs a step", hq.Agg))
		return
	}
	csv := false
	switch f := q["format"]; f {
	case "csv":
		csv = true
	case "json":
	case "":
		csv = strings.Contains(r.Header.Get("Accept"), "text/csv")
	default:
		writeError(w, badRequest("format %q must be json or csv", f))
		return
	}
	if err := hq.Validate(); err != nil {
		writeError(w, err)
		return
	}
	var series []history.Series
	ctx, cancel := s.callCtx(r.Context())
	defer cancel()
	if err := s.ext.history.do(func(h History) (err error) { series, err = h.Query(ctx, hq); return }); err != nil {
		writeError(w, err)
		return
	}
	if series == nil {
		series = []history.Series{}
	}
	if csv {
		writeCSV(w, series)
		return
	}
	res := historyResult{From: hq.From, To: hq.To, Aggregation: hq.Agg.String(), Series: series}
	if hq.Step > 0 {
		res.Step = hq.Step.String()
	}
	writeJSON(w, http.StatusOK, res)
}

func writeCSV(w http.ResponseWriter, series []history.Series) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	buf := []byte("point,time,value,quality\n")
	for _, se := range series {
		for _, p := range se.Points {
			buf = appendCSVField(buf, se.Point)
			buf = append(buf, ',')
			buf = p.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, p.Value, 'g', -1, 64)
			buf = append(buf, ',')
			buf = append(buf, p.Quality.String()...)
			buf = append(buf, '\n')
			if len(buf) > 32<<10 {
				if _, err := w.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
	}
	_, _ = w.Write(buf)
}

// appendCSVField quotes a field when it needs it (RFC 4180), and defuses
// spreadsheet formulas.
func appendCSVField(b []byte, s string) []byte {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		s = "'" + s
	}
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

// timeParam parses an RFC 3339 time or Unix seconds; absent gives zero.
func timeParam(q map[string]string, name string) (time.Time, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, badRequest("%s %q must be an RFC 3339 time (2026-01-02T15:04:05Z) or Unix seconds", name, v)
}

func noQuery(r *http.Request) error {
	_, err := queryParams(r)
	return err
}

func noBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return badRequest("this operation takes no body")
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
