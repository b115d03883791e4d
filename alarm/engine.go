package alarm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/voltage-ems/ems/model"
	"golang.org/x/sync/errgroup"
)

// Alarmer turns batches of samples into alarm Events. It is the interface
// the EMS data path consumes; *Engine is the default implementation.
type Alarmer interface {
	Process(ctx context.Context, batch []model.Sample) ([]model.Event, error)
}

// Event kinds the engine emits in addition to the model.EventAlarm* kinds.
const (
	EventAlarmChatter      model.EventKind = "alarm.chatter"
	EventAlarmUnsuppressed model.EventKind = "alarm.unsuppressed"
	EventAlarmOutOfService model.EventKind = "alarm.out_of_service"
	EventAlarmInService    model.EventKind = "alarm.in_service"
	EventAlarmDefinition   model.EventKind = "alarm.definition"
)

// Source is the Source of every Event the engine emits.
const Source = "alarm"

// Option configures New.
type Option func(*config) error

type config struct {
	defs        []Definition
	src         []srcLoc
	model       *model.Model
	dataDir     string
	logger      *slog.Logger
	reg         prometheus.Registerer
	maxDelay    time.Duration
	maxShelve   time.Duration
	chatterN    int
	chatterWin  time.Duration
	chatterShlv time.Duration
	floodN      int
	floodWin    time.Duration
	floodMin    Priority
	supWindow   time.Duration
	supN        int
	supSize     int
	corrTags    []string
	corrWin     time.Duration
	historyN    int
	staleAge    time.Duration
	workers     int
	parThresh   int
}

// WithDefinitions adds definitions (built in code or by LoadDefinitions).
func WithDefinitions(defs ...Definition) Option {
	return func(c *config) error {
		for _, d := range defs {
			c.defs = append(c.defs, d.clone())
			c.src = append(c.src, srcLoc{})
		}
		return nil
	}
}

// WithDefinitionsYAML reads definitions from a YAML document (see
// LoadDefinitions); name is used in error messages. Errors found when the
// definitions are checked against the model and the caps also carry the
// file name and line.
func WithDefinitionsYAML(r io.Reader, name string) Option {
	return func(c *config) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("alarm: read %s: %w", name, err)
		}
		defs, nodes, err := loadDefs(data, name)
		if err != nil {
			return err
		}
		for i := range defs {
			c.defs = append(c.defs, defs[i])
			c.src = append(c.src, srcLoc{file: name, node: nodes[i]})
		}
		return nil
	}
}

// WithDefinitionsFile reads definitions from a YAML file (see
// WithDefinitionsYAML).
func WithDefinitionsFile(path string) Option {
	return func(c *config) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("alarm: definitions: %w", err)
		}
		defer f.Close()
		return WithDefinitionsYAML(f, path)(c)
	}
}

// WithModel checks definition points against the device model and expands
// per-template definitions to every instance. Without a model, points are
// not checked and templated definitions are rejected.
func WithModel(m *model.Model) Option {
	return func(c *config) error { c.model = m; return nil }
}

// WithDataDir keeps a journal of alarm states, history and definition
// changes in dir so they survive a restart. "" (the default) keeps
// everything in memory.
func WithDataDir(dir string) Option { return func(c *config) error { c.dataDir = dir; return nil } }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithMetrics registers the engine's metrics on reg; nil means no metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error { c.reg = reg; return nil }
}

// WithMaxDelay caps on- and off-delays of definitions (default 1h).
func WithMaxDelay(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: max delay %v must be positive", ErrBadOption, d)
		}
		c.maxDelay = d
		return nil
	}
}

// WithMaxShelve caps timed shelving (default 8h).
func WithMaxShelve(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: max shelve %v must be positive", ErrBadOption, d)
		}
		c.maxShelve = d
		return nil
	}
}

// WithChatter configures chatter detection: n or more active→clear cycles
// within window auto-shelve the alarm for shelve. n = 0 disables it.
// Default: 3 cycles in 60 s, shelved for 10 min.
func WithChatter(n int, window, shelve time.Duration) Option {
	return func(c *config) error {
		if n < 0 || n > 64 || (n > 0 && (window <= 0 || shelve <= 0)) {
			return fmt.Errorf("%w: chatter n=%d (0-64) window=%v shelve=%v", ErrBadOption, n, window, shelve)
		}
		c.chatterN, c.chatterWin, c.chatterShlv = n, window, shelve
		return nil
	}
}

// WithFlood configures flood mode: more than n annunciations within window
// start a flood, during which only alarms of priority >= minPriority are
// annunciated (the rest are counted in the flood summary). n = 0 disables
// it. Default: 10 in 10 min, critical only.
func WithFlood(n int, window time.Duration, minPriority Priority) Option {
	return func(c *config) error {
		if n < 0 || (n > 0 && window <= 0) || minPriority < 0 || minPriority > 1000 {
			return fmt.Errorf("%w: flood n=%d window=%v min priority=%d", ErrBadOption, n, window, minPriority)
		}
		c.floodN, c.floodWin, c.floodMin = n, window, minPriority
		return nil
	}
}

// WithSuppressor enables the per-alarm window/threshold suppressor: an
// alarm annunciated more than n times within window is not annunciated
// again until its window ends. The per-alarm windows live in an LRU of
// size entries. Disabled by default.
func WithSuppressor(window time.Duration, n, size int) Option {
	return func(c *config) error {
		if window <= 0 || n <= 0 || size <= 0 {
			return fmt.Errorf("%w: suppressor window=%v n=%d size=%d", ErrBadOption, window, n, size)
		}
		c.supWindow, c.supN, c.supSize = window, n, size
		return nil
	}
}

// WithCorrelation groups alarms whose tags named by tags are equal and that
// are raised within window of the group's previous alarm. The first alarm
// of a group is its first-out. Default: tags site and device, 60 s.
// window = 0 disables grouping.
func WithCorrelation(window time.Duration, tags ...string) Option {
	return func(c *config) error {
		if window < 0 {
			return fmt.Errorf("%w: correlation window %v", ErrBadOption, window)
		}
		c.corrWin, c.corrTags = window, append([]string(nil), tags...)
		return nil
	}
}

// WithHistorySize bounds the in-memory event history (default 10,000).
func WithHistorySize(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: history size %d", ErrBadOption, n)
		}
		c.historyN = n
		return nil
	}
}

// WithStaleAlarmAge sets the age from which an active alarm counts as a
// stale alarm in KPIs (default 24h).
func WithStaleAlarmAge(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: stale alarm age %v", ErrBadOption, d)
		}
		c.staleAge = d
		return nil
	}
}

// WithParallel partitions batches of at least threshold samples by point
// across workers goroutines. Default: GOMAXPROCS workers, threshold 4096.
func WithParallel(workers, threshold int) Option {
	return func(c *config) error {
		if workers < 1 || threshold < 1 {
			return fmt.Errorf("%w: parallel workers=%d threshold=%d", ErrBadOption, workers, threshold)
		}
		c.workers, c.parThresh = workers, threshold
		return nil
	}
}

// Engine is the default ISA-18.2 alarm engine. Process and Tick must be
// called from one goroutine; every other method is safe for concurrent use.
type Engine struct {
	mu     sync.Mutex
	cfg    config
	log    *slog.Logger
	closed bool

	base []Definition // definitions as configured (before template expansion)
	t    *tables

	out     []model.Event // events waiting for the next Process/Tick
	seq     uint64
	history []model.Event
	histPos int

	nextTimer int64 // earliest shelve/escalation/re-alarm deadline, 0 = unknown
	nextStale int64 // earliest stale deadline
	nextPrune int64

	live    []int32 // conds not in the plain normal state
	pending []int32 // conds with a running on/off delay

	scratch []scratch
	idxBuf  []int32

	flood  floodState
	kpi    kpiState
	sup    *lru.Cache[string, *supWindow]
	groups groupState
	start  time.Time

	vm     vm.VM  // reused for suppress_when
	batch  uint64 // Process calls so far
	j      *journal
	defLog []defChange
	met    *metrics
}

// srcLoc remembers where a definition was loaded from.
type srcLoc struct {
	file string
	node any // *yaml.Node
}

// tables are the compiled definitions: an index from point id to point
// slot, and the flat slice of alarm conditions.
type tables struct {
	defs     []*cdef
	conds    []cond
	points   []pointState
	pindex   map[string]int32
	cindex   map[string]int32
	hots     []hot // detection state of conds, same index
	pointIDs []string
	stale    []int32
	withSup  []int32 // defs with suppress_when
}

type cdef struct {
	def     Definition
	tmpl    *template.Template
	sup     *vm.Program
	conds   []int32
	dep     int32
	esc     []EscalationStep
	realarm int64
	corrKey string
	refs    []int32 // points suppress_when reads
	dynamic bool    // suppress_when reads more than refs: evaluate on every change
	evalAt  uint64  // batch number of the last evaluation
}

type condKind uint8

const (
	kHigh condKind = iota
	kLow
	kEqual
	kTransition
	kRate
	kDeviation
	kStale
	kQuality
)

// cond is one alarm: static configuration, the detection state (phase 1,
// in *hot) and the lifecycle state.
type cond struct {
	*hot // points into tables.hots

	after      int64 // stale
	id         string
	level      string
	def        int32
	prio       Priority
	dependents []int32

	// lifecycle
	life    life
	livePos int32
	clears  []int64 // ring of recent activation times (chatter)
	clearN  int
}

// hot holds what detection reads and writes for every sample: 64 bytes,
// kept in one dense slice (tables.hots) so that the levels of one point
// share neighbouring cache lines.
type hot struct {
	kind       condKind
	trans      uint8 // 1 rising, 2 falling, 3 change
	uncert     bool
	raw        bool // the condition as last evaluated (before delays)
	pactive    bool // the condition after on/off delays
	pendQueued bool
	point      int32
	ref        int32
	limit      float64 // activate threshold
	clear      float64 // clear threshold (hysteresis)
	aux        float64 // deviation: setpoint; rate: period in seconds
	pendSince  int64
	onDelay    int64
	offDelay   int64
}

// pointState is one point's detection state (64 bytes; its id is in
// tables.pointIDs).
type pointState struct {
	value   float64 // last good value
	t       int64   // its sample time (ns), or processing time when the sample had none
	seen    int64   // processing time of the last sample, good or not
	batch   uint64  // number of the batch that last updated the point
	conds   []int32
	group   int32
	quality model.Quality // of the last sample
	has     bool          // a good value was seen
}

// transition is a detected change of an alarm condition, applied to the
// lifecycle in sample order.
type transition struct {
	sample int32
	cond   int32
	active bool
	value  float64
}

type scratch struct {
	trans      []transition
	pending    []int32
	staleReset bool
}

// New builds an engine. Every option is validated; definitions are
// checked against the model and the caps and all problems are returned
// together as model.ConfigErrors. With WithDataDir the journal is read back
// and the alarm states, shelving, timers and history resume.
func New(opts ...Option) (*Engine, error) {
	cfg := config{
		maxDelay: time.Hour, maxShelve: 8 * time.Hour,
		chatterN: 3, chatterWin: time.Minute, chatterShlv: 10 * time.Minute,
		floodN: 10, floodWin: 10 * time.Minute, floodMin: 900,
		corrTags: []string{"site", "device"}, corrWin: time.Minute,
		historyN: 10000, staleAge: 24 * time.Hour,
		workers: runtime.GOMAXPROCS(0), parThresh: 4096,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	e := &Engine{cfg: cfg, log: cfg.logger, start: time.Now()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.history = make([]model.Event, 0, min(cfg.historyN, 1024))
	if cfg.supN > 0 {
		c, err := lru.New[string, *supWindow](cfg.supSize)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadOption, err)
		}
		e.sup = c
	}
	e.flood.init(cfg.floodN)
	e.kpi.init()
	e.groups.init()
	base := cfg.defs
	if cfg.dataDir != "" {
		j, rec, err := openJournal(cfg.dataDir, e.log)
		if err != nil {
			return nil, err
		}
		e.j = j
		withChanges := rec.applyDefs(base)
		t, err := e.compile(withChanges, cfg.src)
		var discarded error
		if err != nil && len(rec.defs) > 0 {
			// The configuration changed under the journaled run-time
			// changes. Start on the configuration alone rather than not
			// at all, and say so in the log and an event.
			e.log.Error("alarm: journaled definition changes do not fit the configuration; they are discarded", "err", err)
			discarded = err
			rec.defs = nil
			t, err = e.compile(base, cfg.src)
		} else {
			base = withChanges
		}
		if err != nil {
			j.close()
			return nil, err
		}
		e.base, e.t = base, t
		e.restore(rec)
		if discarded != nil {
			e.seq++
			e.push(model.Event{ID: "alarm-" + strconv.FormatUint(e.seq, 10), Time: time.Now(), Kind: EventAlarmDefinition,
				Source: Source, Severity: model.SeverityHigh, Message: "journaled alarm definition changes discarded: " + discarded.Error(),
				Attrs: map[string]string{"op": "discard", "user": "system"}})
		}
		if err := e.compact(); err != nil {
			j.close()
			return nil, err
		}
	} else {
		t, err := e.compile(base, cfg.src)
		if err != nil {
			return nil, err
		}
		e.base, e.t = base, t
	}
	if cfg.reg != nil {
		m, err := newMetrics(e, cfg.reg)
		if err != nil {
			e.j.close()
			return nil, err
		}
		e.met = m
	}
	return e, nil
}

// compile expands and checks definitions. It does not touch engine state.
func (e *Engine) compile(defs []Definition, src []srcLoc) (*tables, error) {
	t := &tables{pindex: map[string]int32{}, cindex: map[string]int32{}}
	var errs model.ConfigErrors
	var origins []int
	addErr := func(di int, d *Definition, field, value, format string, args ...any) {
		ce := &model.ConfigError{ID: d.ID, Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
		if di < len(src) && src[di].file != "" {
			locateAny(ce, src[di])
		}
		errs = append(errs, ce)
	}
	seenDef := map[string]bool{}
	var expanded []Definition
	for di := range defs {
		d := &defs[di]
		verrs := d.validate()
		for _, ce := range verrs {
			if di < len(src) && src[di].file != "" {
				locateAny(ce, src[di])
			}
			errs = append(errs, ce)
		}
		if seenDef[d.ID] {
			addErr(di, d, "id", d.ID, "duplicate alarm id")
		}
		seenDef[d.ID] = true
		e.checkDelays(d, func(field, value, msg string) { addErr(di, d, field, value, "%s", msg) })
		if len(verrs) > 0 {
			continue // not safe to compile
		}
		if d.Template == "" {
			expanded = append(expanded, *d)
			origins = append(origins, di)
			continue
		}
		if e.cfg.model == nil {
			addErr(di, d, "template", d.Template, "a templated definition needs a device model (WithModel)")
			continue
		}
		if _, ok := e.cfg.model.Template(d.Template); !ok {
			addErr(di, d, "template", d.Template, "unknown device template")
			continue
		}
		for _, inst := range e.cfg.model.InstancesOf(d.Template) {
			x := d.clone()
			x.Template = ""
			x.ID = inst + "." + d.ID
			x.Point = inst + "." + d.Point
			self := inst + "."
			x.DependsOn = strings.ReplaceAll(x.DependsOn, "self.", self)
			x.SuppressWhen = strings.ReplaceAll(x.SuppressWhen, "self.", self)
			if x.Deviation != nil {
				x.Deviation.Point = strings.ReplaceAll(x.Deviation.Point, "self.", self)
			}
			if x.Tags == nil {
				x.Tags = map[string]string{}
			}
			if _, ok := x.Tags["device"]; !ok {
				x.Tags["device"] = inst
			}
			expanded = append(expanded, x)
			origins = append(origins, di)
		}
	}
	pointIdx := func(id string) int32 {
		if i, ok := t.pindex[id]; ok {
			return i
		}
		i := int32(len(t.points))
		t.points = append(t.points, pointState{group: i})
		t.pointIDs = append(t.pointIDs, id)
		t.pindex[id] = i
		return i
	}
	env := &exprEnv{
		value: func(id string) (float64, bool) {
			if i, ok := e.t.pindex[id]; ok && e.t.points[i].has {
				return e.t.points[i].value, true
			}
			return math.NaN(), false
		},
		good: func(id string) bool {
			if i, ok := e.t.pindex[id]; ok {
				p := &e.t.points[i]
				return p.has && p.quality.IsGood()
			}
			return false
		},
		active: func(id string) bool {
			if i, ok := e.t.cindex[id]; ok {
				return e.t.conds[i].life.Active
			}
			return false
		},
	}
	// model.HasPoint lists all points per call on an uncompiled model:
	// build the set once.
	var known map[string]struct{}
	if m := e.cfg.model; m != nil && len(expanded) > 0 {
		pts := m.Points()
		known = make(map[string]struct{}, len(pts))
		for _, p := range pts {
			known[p] = struct{}{}
		}
	}
	unknown := func(id string) bool {
		if known == nil {
			return false
		}
		_, ok := known[id]
		return !ok && !isChannelPoint(id)
	}
	for xi := range expanded {
		d := &expanded[xi]
		di := origins[xi]
		od := &defs[di]
		if unknown(d.Point) {
			addErr(di, od, "point", d.Point, "unknown point")
		}
		if d.Deviation != nil && d.Deviation.Point != "" && unknown(d.Deviation.Point) {
			addErr(di, od, "deviation.point", d.Deviation.Point, "unknown point")
		}
		cd := &cdef{def: *d, dep: -1}
		cd.esc = append(cd.esc, d.Escalation...)
		cd.realarm = int64(d.Realarm)
		if d.Message != "" {
			cd.tmpl, _ = template.New(d.ID).Option("missingkey=zero").Parse(d.Message)
		}
		if d.SuppressWhen != "" {
			p, err := compileExpr(d.SuppressWhen, env)
			if err != nil {
				addErr(di, od, "suppress_when", d.SuppressWhen, "invalid expression: %v", err)
			}
			cd.sup = p
			if p != nil {
				ids, dyn := exprPoints(p)
				for _, id := range ids {
					cd.refs = append(cd.refs, pointIdx(id))
				}
				cd.dynamic = dyn
			}
			t.withSup = append(t.withSup, int32(len(t.defs)))
		}
		cd.corrKey = corrKey(d.Tags, e.cfg.corrTags)
		defIdx := int32(len(t.defs))
		pi := pointIdx(d.Point)
		prio := d.Priority
		if prio == 0 {
			prio = PriorityMedium
		}
		mk := func(id, lvl string, k condKind) *cond {
			if _, dup := t.cindex[id]; dup {
				addErr(di, od, "id", id, "duplicate alarm id after template expansion")
			}
			ci := int32(len(t.conds))
			t.conds = append(t.conds, cond{id: id, level: lvl, def: defIdx, prio: prio, livePos: -1,
				hot: &hot{kind: k, point: pi, ref: -1, onDelay: int64(d.OnDelay), offDelay: int64(d.OffDelay)}})
			t.cindex[id] = ci
			cd.conds = append(cd.conds, ci)
			return &t.conds[ci]
		}
		switch {
		case d.Limits != nil:
			for _, lv := range d.Limits.levels() {
				k := kLow
				if lv.high {
					k = kHigh
				}
				c := mk(d.ID+"."+lv.name, lv.name, k)
				db := lv.limit.Deadband
				if lv.limit.DeadbandPct > 0 && d.Range != nil {
					db = lv.limit.DeadbandPct / 100 * (d.Range.Max - d.Range.Min)
				}
				c.limit = lv.limit.Value
				if lv.high {
					c.clear = lv.limit.Value - db
				} else {
					c.clear = lv.limit.Value + db
				}
				if lv.limit.OnDelay > 0 {
					c.onDelay = int64(lv.limit.OnDelay)
				}
				if lv.limit.OffDelay > 0 {
					c.offDelay = int64(lv.limit.OffDelay)
				}
				if lv.limit.Priority > 0 {
					c.prio = lv.limit.Priority
				}
			}
		case d.Discrete != nil:
			if d.Discrete.Value != nil {
				c := mk(d.ID, "", kEqual)
				c.limit = *d.Discrete.Value
			} else {
				c := mk(d.ID, "", kTransition)
				c.trans = map[string]uint8{"rising": 1, "falling": 2, "change": 3}[d.Discrete.Transition]
			}
		case d.Rate != nil:
			c := mk(d.ID, "", kRate)
			c.limit = d.Rate.Limit
			c.clear = d.Rate.Limit - d.Rate.Deadband
			c.aux = time.Duration(d.Rate.Per).Seconds()
			if c.aux == 0 {
				c.aux = 1
			}
		case d.Deviation != nil:
			c := mk(d.ID, "", kDeviation)
			c.limit = d.Deviation.Limit
			c.clear = d.Deviation.Limit - d.Deviation.Deadband
			if d.Deviation.Point != "" {
				ci := int32(len(t.conds) - 1)
				ri := pointIdx(d.Deviation.Point)
				c = &t.conds[ci]
				c.ref = ri
				t.points[ri].conds = append(t.points[ri].conds, ci)
				union(t.points, pi, ri)
			} else {
				c.aux = *d.Deviation.Setpoint
			}
		case d.Stale != nil:
			c := mk(d.ID, "", kStale)
			c.after = int64(d.Stale.After)
			t.stale = append(t.stale, int32(len(t.conds)-1))
		case d.Quality != nil:
			c := mk(d.ID, "", kQuality)
			c.uncert = d.Quality.Uncertain
		}
		t.points[pi].conds = append(t.points[pi].conds, cd.conds...)
		t.defs = append(t.defs, cd)
	}
	// dependencies
	for xi, cd := range t.defs {
		d := &cd.def
		if d.DependsOn == "" {
			continue
		}
		di := origins[xi]
		ci, ok := t.cindex[d.DependsOn]
		if !ok {
			addErr(di, &defs[di], "depends_on", d.DependsOn, "unknown alarm id")
			continue
		}
		if t.conds[ci].def == int32(xi) {
			addErr(di, &defs[di], "depends_on", d.DependsOn, "an alarm cannot depend on itself")
			continue
		}
		cd.dep = ci
		t.conds[ci].dependents = append(t.conds[ci].dependents, cd.conds...)
	}
	if len(errs) > 0 {
		sortErrs(errs)
		return nil, errs
	}
	for i := range t.points {
		t.points[i].group = find(t.points, int32(i))
	}
	t.internPoints()
	t.hots = make([]hot, len(t.conds))
	for i := range t.conds {
		t.hots[i] = *t.conds[i].hot
		t.conds[i].hot = &t.hots[i]
	}
	if n := e.cfg.chatterN; n > 0 {
		for i := range t.conds {
			t.conds[i].clears = make([]int64, n)
		}
	}
	for i := range t.conds {
		c := &t.conds[i]
		c.life.Priority = c.prio
		c.life.State = StateNormal
	}
	return t, nil
}

func (e *Engine) checkDelays(d *Definition, add func(field, value, msg string)) {
	max := Duration(e.cfg.maxDelay)
	chk := func(field string, v Duration) {
		if v > max {
			add(field, v.String(), fmt.Sprintf("delay longer than the configured maximum %v", time.Duration(max)))
		}
	}
	chk("on_delay", d.OnDelay)
	chk("off_delay", d.OffDelay)
	if d.Limits != nil {
		for _, lv := range d.Limits.levels() {
			chk("limits."+lv.name+".on_delay", lv.limit.OnDelay)
			chk("limits."+lv.name+".off_delay", lv.limit.OffDelay)
		}
	}
}

func isChannelPoint(id string) bool {
	_, _, _, err := model.ParseChannelPointID(id)
	return err == nil
}

func union(ps []pointState, a, b int32) {
	ra, rb := find(ps, a), find(ps, b)
	if ra != rb {
		if ra < rb {
			ps[rb].group = ra
		} else {
			ps[ra].group = rb
		}
	}
}

func find(ps []pointState, a int32) int32 {
	for ps[a].group != a {
		ps[a].group = ps[ps[a].group].group
		a = ps[a].group
	}
	return a
}

func corrKey(tags map[string]string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	any := false
	for i, n := range names {
		if i > 0 {
			b.WriteByte('/')
		}
		if v := tags[n]; v != "" {
			any = true
			b.WriteString(v)
		}
	}
	if !any {
		return ""
	}
	return b.String()
}

// Process evaluates a batch of samples and returns the Events of the
// transitions it caused, preceded by the Events queued by operator
// operations and definition changes since the previous call. A batch that
// changes no alarm state allocates nothing and returns nil.
func (e *Engine) Process(ctx context.Context, batch []model.Sample) ([]model.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	now := time.Now().UnixNano()
	t := e.t
	e.batch++
	if len(batch) >= e.cfg.parThresh && e.cfg.workers > 1 {
		if err := e.detectParallel(ctx, t, batch, now); err != nil {
			return nil, err
		}
	} else {
		if len(e.scratch) == 0 {
			e.scratch = make([]scratch, 1)
		}
		s := &e.scratch[0]
		// Two passes: the index lookups are independent of each other, so
		// the CPU overlaps their cache misses; detection follows.
		if cap(e.idxBuf) < len(batch) {
			e.idxBuf = make([]int32, len(batch))
		}
		idx := e.idxBuf[:len(batch)]
		for i := range batch {
			pi, ok := t.pindex[batch[i].Point]
			if !ok {
				pi = -1
			}
			idx[i] = pi
		}
		for i, pi := range idx {
			if pi >= 0 {
				e.detect(t, s, int32(i), pi, &batch[i], now)
			}
		}
	}
	var trans int
	for w := range e.scratch {
		s := &e.scratch[w]
		e.pending = append(e.pending, s.pending...)
		s.pending = s.pending[:0]
		trans += len(s.trans)
		if s.staleReset {
			s.staleReset = false
			e.nextStale = 0
		}
	}
	if trans > 0 {
		e.applyAll(t, now)
	}
	if len(t.withSup) > 0 {
		e.evalSuppression(t, now, trans > 0)
	}
	if e.met != nil {
		e.met.samples.Add(float64(len(batch)))
		e.met.transitions.Add(float64(trans))
	}
	return e.drain(), nil
}

// applyAll applies the transitions of every worker in sample order.
func (e *Engine) applyAll(t *tables, now int64) {
	if len(e.scratch) == 1 {
		s := &e.scratch[0]
		for _, tr := range s.trans {
			e.apply(t, tr.cond, tr.active, tr.value, now)
		}
		s.trans = s.trans[:0]
		return
	}
	// k-way merge: each worker's list is in sample order and a sample
	// belongs to exactly one worker.
	pos := make([]int, len(e.scratch))
	for {
		best := -1
		for w := range e.scratch {
			if pos[w] < len(e.scratch[w].trans) {
				if best < 0 || e.scratch[w].trans[pos[w]].sample < e.scratch[best].trans[pos[best]].sample {
					best = w
				}
			}
		}
		if best < 0 {
			break
		}
		tr := e.scratch[best].trans[pos[best]]
		pos[best]++
		e.apply(t, tr.cond, tr.active, tr.value, now)
	}
	for w := range e.scratch {
		e.scratch[w].trans = e.scratch[w].trans[:0]
	}
}

// detectParallel resolves point indices and runs detection partitioned by
// point group (points linked by a deviation alarm share a group) so that
// every worker sees its points' samples in batch order.
func (e *Engine) detectParallel(ctx context.Context, t *tables, batch []model.Sample, now int64) error {
	W := e.cfg.workers
	for len(e.scratch) < W {
		e.scratch = append(e.scratch, scratch{})
	}
	if cap(e.idxBuf) < len(batch) {
		e.idxBuf = make([]int32, len(batch))
	}
	idx := e.idxBuf[:len(batch)]
	g, _ := errgroup.WithContext(ctx)
	chunk := (len(batch) + W - 1) / W
	for w := 0; w < W; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(batch))
		g.Go(func() error {
			for i := lo; i < hi; i++ {
				if pi, ok := t.pindex[batch[i].Point]; ok {
					idx[i] = pi
				} else {
					idx[i] = -1
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	g, _ = errgroup.WithContext(ctx)
	for w := 0; w < W; w++ {
		s := &e.scratch[w]
		g.Go(func() error {
			for i, pi := range idx {
				if pi < 0 || int(t.points[pi].group)%W != w {
					continue
				}
				e.detect(t, s, int32(i), pi, &batch[i], now)
			}
			return nil
		})
	}
	return g.Wait()
}

// detect runs the conditions of one point for one sample. It touches only
// the point's own state and its conditions (and, for deviation alarms, the
// linked point's conditions, which share the partition).
func (e *Engine) detect(t *tables, s *scratch, si, pi int32, smp *model.Sample, now int64) {
	p := &t.points[pi]
	prevV, prevT, had := p.value, p.t, p.has
	st := now
	if !smp.Time.IsZero() {
		st = smp.Time.UnixNano()
	}
	good := !smp.Quality.IsBad() && smp.Value == smp.Value // NaN counts as bad
	p.seen, p.quality, p.batch = now, smp.Quality, e.batch
	if good {
		// value, time and has describe the last usable value, so a bad
		// sample never becomes the "previous value" of a rate or
		// transition alarm
		p.value, p.t, p.has = smp.Value, st, true
	}
	for _, ci := range p.conds {
		c := &t.hots[ci]
		raw := c.raw
		val := smp.Value
		switch c.kind {
		case kHigh:
			if good {
				if raw {
					raw = smp.Value >= c.clear
				} else {
					raw = smp.Value >= c.limit
				}
			}
		case kLow:
			if good {
				if raw {
					raw = smp.Value <= c.clear
				} else {
					raw = smp.Value <= c.limit
				}
			}
		case kEqual:
			if good {
				raw = smp.Value == c.limit
			}
		case kTransition:
			if good && had && prevV != smp.Value {
				up := smp.Value > prevV
				if c.trans == 3 || (c.trans == 1 && up) || (c.trans == 2 && !up) {
					s.trans = append(s.trans, transition{si, ci, true, smp.Value}, transition{si, ci, false, smp.Value})
				}
			}
			continue
		case kRate:
			if good && had && st > prevT && c.point == pi {
				r := math.Abs(smp.Value-prevV) / (float64(st-prevT) / 1e9) * c.aux
				if raw {
					raw = r >= c.clear
				} else {
					raw = r >= c.limit
				}
			}
		case kDeviation:
			own := &t.points[c.point]
			ref := c.aux
			if c.ref >= 0 {
				rp := &t.points[c.ref]
				if !rp.has || rp.quality.IsBad() {
					continue
				}
				ref = rp.value
			}
			if !own.has || own.quality.IsBad() {
				continue
			}
			val = own.value
			dv := math.Abs(own.value - ref)
			if raw {
				raw = dv >= c.clear
			} else {
				raw = dv >= c.limit
			}
		case kStale:
			if raw {
				s.staleReset = true // a new deadline, maybe before e.nextStale
			}
			raw = false
		case kQuality:
			raw = smp.Quality.IsBad() || (c.uncert && smp.Quality.Status() == model.StatusUncertain)
		}
		e.step(s, c, ci, si, raw, val, now)
	}
}

// step applies the on/off delays to a raw condition.
func (e *Engine) step(s *scratch, c *hot, ci, si int32, raw bool, v float64, now int64) {
	c.raw = raw
	if raw == c.pactive {
		c.pendSince = 0
		return
	}
	d := c.offDelay
	if raw {
		d = c.onDelay
	}
	if d > 0 {
		if c.pendSince == 0 {
			c.pendSince = now
			if !c.pendQueued {
				c.pendQueued = true
				s.pending = append(s.pending, ci)
			}
			return
		}
		if now-c.pendSince < d {
			return
		}
	}
	c.pactive = raw
	c.pendSince = 0
	s.trans = append(s.trans, transition{si, ci, raw, v})
}

// drain hands the queued events to the caller.
func (e *Engine) drain() []model.Event {
	if len(e.out) == 0 {
		return nil
	}
	out := e.out
	e.out = nil
	if e.j != nil {
		e.j.flush()
		if e.j.n > compactAfter {
			if err := e.compact(); err != nil {
				e.log.Error("alarm: journal compaction failed", "err", err)
			}
		}
	}
	return out
}

// Tick runs the time-driven transitions: on/off delays that expired, stale
// points, shelving that expired, escalation, re-alarm and the end of a
// flood. It returns them together with the queued events. Call it from the
// goroutine that calls Process (the EMS does, every 100 ms).
func (e *Engine) Tick(ctx context.Context, now time.Time) ([]model.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	e.j.syncIfDue()
	n := now.UnixNano()
	t := e.t
	if len(e.scratch) == 0 {
		e.scratch = make([]scratch, 1)
	}
	s := &e.scratch[0]
	// delays
	keep := e.pending[:0]
	for _, ci := range e.pending {
		c := &t.conds[ci]
		if c.pendSince == 0 || c.raw == c.pactive {
			c.pendSince = 0
			c.pendQueued = false
			continue
		}
		d := c.offDelay
		if c.raw {
			d = c.onDelay
		}
		if n-c.pendSince >= d {
			c.pactive = c.raw
			c.pendSince = 0
			c.pendQueued = false
			s.trans = append(s.trans, transition{0, ci, c.raw, t.points[c.point].value})
			continue
		}
		keep = append(keep, ci)
	}
	e.pending = keep
	// stale points: scan only once the earliest possible deadline passed
	// (samples only move deadlines later, so the remembered one is a
	// lower bound)
	if n >= e.nextStale {
		next := int64(math.MaxInt64)
		for _, ci := range t.stale {
			c := &t.conds[ci]
			if c.raw {
				continue
			}
			p := &t.points[c.point]
			last := p.seen
			if last == 0 {
				last = e.start.UnixNano()
			}
			if n-last >= c.after {
				e.step(s, c.hot, ci, 0, true, p.value, n)
			} else {
				next = min(next, last+c.after)
			}
		}
		e.nextStale = next
	}
	e.pending = append(e.pending, s.pending...)
	s.pending = s.pending[:0]
	for _, tr := range s.trans {
		e.apply(t, tr.cond, tr.active, tr.value, n)
	}
	s.trans = s.trans[:0]
	e.timers(t, n)
	if len(t.withSup) > 0 {
		e.evalSuppression(t, n, true)
	}
	e.floodTick(n)
	if n >= e.nextPrune {
		e.groups.prune(n, int64(e.cfg.corrWin))
		e.nextPrune = n + int64(time.Second)
	}
	return e.drain(), nil
}

// Close flushes and closes the journal. Later calls return ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if e.j == nil {
		return nil
	}
	// persist running delays so they resume after a restart
	for _, ci := range e.pending {
		e.persist(&e.t.conds[ci])
	}
	return e.j.close()
}

// sortErrs orders errors by file position (errors without one keep their
// order at the end).
func sortErrs(errs model.ConfigErrors) {
	slices.SortStableFunc(errs, func(a, b *model.ConfigError) int {
		if a.Line == 0 || b.Line == 0 {
			return 0
		}
		return a.Line - b.Line
	})
}

// internPoints rebuilds the point index with keys stored back to back in
// one allocation: the key comparison of every lookup then reads from a
// small, cache-friendly block instead of strings scattered over the heap.
func (t *tables) internPoints() {
	n := 0
	for _, id := range t.pointIDs {
		n += len(id)
	}
	arena := make([]byte, 0, n)
	idx := make(map[string]int32, len(t.pointIDs))
	for i, id := range t.pointIDs {
		off := len(arena)
		arena = append(arena, id...)
		var key string
		if len(id) > 0 {
			key = unsafe.String(&arena[off], len(id)) // arena is never written again
		}
		idx[key] = int32(i)
		t.pointIDs[i] = key
	}
	t.pindex = idx
}
