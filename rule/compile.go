package rule

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/robfig/cron/v3"
)

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ctxKey is the env entry holding the evaluation context (*store) for helpers.
const ctxKey = "__ctx"

// varName names the k-th point an expression reads. Names are positional, so the
// env of a worker holds only a few entries whatever the number of points.
func varName(k int) string {
	if k < len(varNames) {
		return varNames[k]
	}
	return "__p" + strconv.Itoa(k)
}

var varNames = func() []string {
	n := make([]string, 64)
	for i := range n {
		n[i] = "__p" + strconv.Itoa(i)
	}
	return n
}()

// helper functions that take a point as their first argument.
var pointHelpers = map[string]bool{"prev": true, "since": true, "age": true}

var aggNames = []string{"avg", "min", "max", "sum", "count"}

func init() {
	for _, a := range aggNames {
		pointHelpers[a+"_over"] = true
		pointHelpers[a+"_last"] = true
		pointHelpers[a+"_tumbling"] = true
	}
}

var keywords = map[string]bool{
	"true": true, "false": true, "nil": true, "and": true, "or": true, "not": true, "in": true,
	"matches": true, "contains": true, "startsWith": true, "endsWith": true, "let": true,
	"if": true, "else": true, "$env": true,
}

// slotTable assigns stable slots to point ids. It only grows; a rule set build works
// on a copy (clone) so that a rejected reload changes nothing.
type slotTable struct {
	ids   []string
	index map[string]int32
}

func (t *slotTable) clone() *slotTable {
	n := &slotTable{ids: append([]string(nil), t.ids...), index: make(map[string]int32, len(t.index))}
	for k, v := range t.index {
		n.index[k] = v
	}
	return n
}

func (t *slotTable) slot(id string) int32 {
	if s, ok := t.index[id]; ok {
		return s
	}
	s := int32(len(t.ids))
	t.ids = append(t.ids, id)
	t.index[id] = s
	return s
}

// rewritten is an expression whose point references were replaced by env variables.
type rewritten struct {
	src   string
	orig  string
	refs  []int32 // slots read, without duplicates, in order of appearance
	segs  []seg
	names map[string]string // var name -> point id, for messages
}

type seg struct{ oStart, oEnd, nStart, nEnd int }

// exprError is an error at byte offset Off of the original expression.
type exprError struct {
	Off int
	Msg string
}

func (e *exprError) Error() string { return e.Msg }

// rewrite replaces point references in src by variables of the env. A reference is a
// dotted identifier chain (pcs1.active_power, ch1.T.7) or a bare identifier that is a
// known point. "$." at the start of a chain is replaced by key+".".
func rewrite(src, key string, cat *pointCatalogue, slots *slotTable) (*rewritten, []*exprError) {
	var b strings.Builder
	r := &rewritten{orig: src, names: map[string]string{}}
	var errs []*exprError
	seen := map[int32]bool{}
	i := 0
	emit := func(oStart, oEnd int, s string) {
		r.segs = append(r.segs, seg{oStart, oEnd, b.Len(), b.Len() + len(s)})
		b.WriteString(s)
	}
	isStart := func(c byte) bool {
		return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	isPart := func(c byte) bool { return isStart(c) && c != '$' || c >= '0' && c <= '9' }
	nextNonSpace := func(j int) int {
		for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || src[j] == '\r') {
			j++
		}
		return j
	}
	prevNonSpace := func(j int) byte {
		for j--; j >= 0; j-- {
			if c := src[j]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c
			}
		}
		return 0
	}
	// resolve decides whether the chain src[s:e] is a point; it returns the id.
	resolve := func(s, e int) (string, bool, *exprError) {
		tok := src[s:e]
		if strings.HasPrefix(tok, "$.") {
			if key == "" {
				return "", false, &exprError{s, "\"$.\" is only allowed in partitioned patterns"}
			}
			tok = key + tok[1:]
		}
		dotted := strings.Contains(tok, ".")
		if !dotted && keywords[tok] {
			return "", false, nil
		}
		if cat.exists(tok) {
			return tok, true, nil
		}
		if dotted {
			return "", false, &exprError{s, fmt.Sprintf("unknown point %q", tok)}
		}
		return "", false, nil // let expr report an unknown name
	}
	pos := map[int32]int{}
	usePoint := func(id string) string {
		sl := slots.slot(id)
		if !seen[sl] {
			seen[sl] = true
			pos[sl] = len(r.refs)
			r.refs = append(r.refs, sl)
		}
		n := varName(pos[sl])
		r.names[n] = id
		return n
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j < len(src) {
				j++
			}
			if j > len(src) {
				j = len(src)
			}
			b.WriteString(src[i:j])
			i = j
		case c == '/' && i+1 < len(src) && (src[i+1] == '/' || src[i+1] == '*'):
			end := strings.Index(src[i+2:], map[byte]string{'/': "\n", '*': "*/"}[src[i+1]])
			j := len(src)
			if end >= 0 {
				j = i + 2 + end
			}
			b.WriteString(src[i:j])
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isPart(src[j]) || src[j] == '.' && j+1 < len(src) && src[j+1] >= '0' && src[j+1] <= '9') {
				j++
			}
			b.WriteString(src[i:j])
			i = j
		case isStart(c):
			j := i + 1
			for {
				for j < len(src) && isPart(src[j]) {
					j++
				}
				if j+1 < len(src) && src[j] == '.' && isPart(src[j+1]) {
					j++
					continue
				}
				break
			}
			tok := src[i:j]
			if p := prevNonSpace(i); p == '.' && !(i >= 2 && src[i-1] == '.' && src[i-2] == '.') || p == '?' && i > 0 && src[i-1] == '.' {
				b.WriteString(tok) // member access
				i = j
				continue
			}
			k := nextNonSpace(j)
			if k < len(src) && src[k] == '(' && !strings.Contains(tok, ".") {
				if pointHelpers[tok] {
					// helper(point, ...) -> helper($env, "point", ...)
					b.WriteString(tok + "($env, ")
					a := nextNonSpace(k + 1)
					e := a
					for e < len(src) && (isPart(src[e]) || src[e] == '$' || src[e] == '.' && e+1 < len(src) && isPart(src[e+1])) {
						e++
					}
					if e == a {
						errs = append(errs, &exprError{a, fmt.Sprintf("%s needs a point as its first argument", tok)})
						i = k + 1
						continue
					}
					id, ok, err := resolve(a, e)
					if err != nil {
						errs = append(errs, err)
					} else if !ok {
						errs = append(errs, &exprError{a, fmt.Sprintf("%s needs a point as its first argument, %q is not a point", tok, src[a:e])})
					} else {
						usePoint(id)
					}
					emit(a, e, strconv.Quote(id))
					i = e
					continue
				}
				b.WriteString(tok) // a function call
				i = j
				continue
			}
			id, ok, err := resolve(i, j)
			if err != nil {
				errs = append(errs, err)
				emit(i, j, "0")
			} else if ok {
				emit(i, j, usePoint(id))
			} else {
				b.WriteString(tok)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	r.src = b.String()
	return r, errs
}

// origOffset maps a rune offset of the rewritten source to a byte offset of the original.
func (r *rewritten) origOffset(runeOff int) int {
	off := 0
	for i := range r.src {
		if runeOff == 0 {
			off = i
			break
		}
		runeOff--
		off = len(r.src)
	}
	if runeOff > 0 {
		off = len(r.src)
	}
	o := off
	for _, s := range r.segs {
		if s.nStart > off {
			break
		}
		if off < s.nEnd {
			return s.oStart
		}
		o = off - s.nEnd + s.oEnd
	}
	if o > len(r.orig) {
		o = len(r.orig)
	}
	return o
}

// compileErr converts an expr compile error into an exprError on the original text.
func (r *rewritten) compileErr(err error) *exprError {
	var fe *file.Error
	msg := err.Error()
	off := 0
	if errors.As(err, &fe) {
		msg = fe.Message
		off = r.origOffset(fe.From)
	}
	for n, id := range r.names {
		msg = strings.ReplaceAll(msg, n, id)
	}
	msg = strings.ReplaceAll(msg, "$env, ", "")
	return &exprError{off, msg}
}

// program is a compiled expression.
type program struct {
	prog  *vm.Program
	rw    *rewritten
	wins  []window
	fastB fastBool // the fast path of a condition, when it has one
	code  []instr  // the same as bytecode, for the hot loop
	fastN fastNum  // the fast path of a value, when it has one
}

// window is a window aggregate a program uses; the store keeps enough history for it.
type window struct {
	slot  int32
	span  time.Duration
	count int
}

type exprKind int

const (
	boolExpr exprKind = iota
	numExpr
	anyExpr
)

// compileExpr rewrites and compiles src.
func compileExpr(src, key string, kind exprKind, cat *pointCatalogue, slots *slotTable, extra []expr.Option) (*program, []*exprError) {
	rw, errs := rewrite(src, key, cat, slots)
	if len(errs) > 0 {
		return nil, errs
	}
	env := map[string]any{}
	for k := range rw.refs {
		env[varName(k)] = float64(0)
	}
	opts := []expr.Option{expr.Env(env)}
	opts = append(opts, helperOptions...)
	opts = append(opts, extra...)
	if kind == boolExpr {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(rw.src, opts...)
	if err != nil {
		return nil, []*exprError{rw.compileErr(err)}
	}
	p := &program{prog: prog, rw: rw}
	fc := &fastCompiler{slotOf: func(name string) (int32, bool) {
		id, ok := rw.names[name]
		if !ok {
			return 0, false
		}
		s, ok := slots.index[id]
		return s, ok
	}}
	switch kind {
	case boolExpr:
		p.fastB = fc.cond(prog.Node())
		p.code = fc.code(prog.Node())
	case numExpr:
		if isNumType(prog.Node().Type()) {
			p.fastN = fc.num(prog.Node())
		}
	}
	if kind == numExpr {
		switch t := prog.Node().Type(); {
		case t == nil:
		case t.Kind() == reflect.Interface, t.Kind() == reflect.Bool, t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		default:
			return nil, []*exprError{{0, fmt.Sprintf("a value must be a number or a bool, not %s", t)}}
		}
	}
	// Find window aggregates; their spans must be constants.
	var werrs []*exprError
	node := prog.Node()
	ast.Walk(&node, visitor(func(n ast.Node) {
		call, ok := n.(*ast.CallNode)
		if !ok {
			return
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok || !pointHelpers[id.Value] || len(call.Arguments) < 2 {
			return
		}
		ps, ok := call.Arguments[1].(*ast.StringNode)
		if !ok {
			return
		}
		slot := slots.index[ps.Value]
		name := id.Value
		switch {
		case strings.HasSuffix(name, "_over"), strings.HasSuffix(name, "_tumbling"):
			var d time.Duration
			var err error
			if len(call.Arguments) == 3 {
				if s, ok := call.Arguments[2].(*ast.StringNode); ok {
					d, err = time.ParseDuration(s.Value)
				} else {
					err = errors.New("not a constant")
				}
			}
			if err != nil || d <= 0 {
				werrs = append(werrs, &exprError{rw.origOffset(call.Location().From), fmt.Sprintf("%s needs a constant positive duration such as \"10m\"", name)})
				return
			}
			if strings.HasSuffix(name, "_tumbling") {
				d *= 2
			}
			p.wins = append(p.wins, window{slot: slot, span: d})
		case strings.HasSuffix(name, "_last"):
			n, ok := call.Arguments[2].(*ast.IntegerNode)
			if len(call.Arguments) != 3 || !ok || n.Value < 1 || n.Value > maxCountWindow {
				werrs = append(werrs, &exprError{rw.origOffset(call.Location().From), fmt.Sprintf("%s needs a constant count from 1 to %d", name, maxCountWindow)})
				return
			}
			p.wins = append(p.wins, window{slot: slot, count: n.Value})
		}
	}))
	if len(werrs) > 0 {
		return nil, werrs
	}
	return p, nil
}

const maxCountWindow = 100000

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }

// template is a message with {{ expr }} parts.
type template struct {
	parts []string   // literal parts, len(progs)+1
	progs []*program // expressions between them
}

func compileTemplate(s, key string, cat *pointCatalogue, slots *slotTable, extra []expr.Option) (*template, []*exprError) {
	t := &template{}
	rest := s
	base := 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, rest)
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, []*exprError{{base + i, "unclosed {{"}}
		}
		t.parts = append(t.parts, rest[:i])
		src := rest[i+2 : i+j]
		p, errs := compileExpr(src, key, anyExpr, cat, slots, extra)
		if len(errs) > 0 {
			for _, e := range errs {
				e.Off += base + i + 2
			}
			return nil, errs
		}
		t.progs = append(t.progs, p)
		base += i + j + 2
		rest = rest[i+j+2:]
	}
	return t, nil
}

func (t *template) static() bool { return len(t.progs) == 0 }

// helpers: prev, since, age and window aggregates. They receive the env ($env) and
// the point id; the env holds the evaluation context under ctxKey.
var helperOptions = func() []expr.Option {
	st := func(params []any) (*store, int32, bool) {
		env, _ := params[0].(map[string]any)
		s, _ := env[ctxKey].(*store)
		if s == nil {
			return nil, 0, false
		}
		id, _ := params[1].(string)
		slot, ok := s.slots[id]
		if !ok || int(slot) >= len(s.val) {
			return s, 0, false
		}
		return s, slot, true
	}
	nan := math.NaN()
	opts := []expr.Option{
		expr.Function("prev", func(params ...any) (any, error) {
			s, slot, ok := st(params)
			if !ok || !s.meta[slot].hasPrev {
				return nan, nil
			}
			return s.meta[slot].prev, nil
		}, new(func(map[string]any, string) float64)),
		expr.Function("since", func(params ...any) (any, error) {
			s, slot, ok := st(params)
			if !ok || s.meta[slot].changed == 0 {
				return math.Inf(1), nil
			}
			return s.now.Sub(time.Unix(0, s.meta[slot].changed)).Seconds(), nil
		}, new(func(map[string]any, string) float64)),
		expr.Function("age", func(params ...any) (any, error) {
			s, slot, ok := st(params)
			if !ok || s.meta[slot].updated == 0 {
				return math.Inf(1), nil
			}
			return s.now.Sub(time.Unix(0, s.meta[slot].updated)).Seconds(), nil
		}, new(func(map[string]any, string) float64)),
	}
	for _, agg := range aggNames {
		opts = append(opts,
			expr.Function(agg+"_over", func(params ...any) (any, error) {
				s, slot, ok := st(params)
				if !ok {
					return emptyAgg(agg), nil
				}
				d, err := time.ParseDuration(params[2].(string))
				if err != nil {
					return nil, err
				}
				return s.aggregate(slot, agg, s.now.Add(-d), s.now, 0, false), nil
			}, new(func(map[string]any, string, string) float64)),
			expr.Function(agg+"_tumbling", func(params ...any) (any, error) {
				s, slot, ok := st(params)
				if !ok {
					return emptyAgg(agg), nil
				}
				d, err := time.ParseDuration(params[2].(string))
				if err != nil {
					return nil, err
				}
				end := s.now.Truncate(d)
				return s.aggregate(slot, agg, end.Add(-d), end, 0, true), nil
			}, new(func(map[string]any, string, string) float64)),
			expr.Function(agg+"_last", func(params ...any) (any, error) {
				s, slot, ok := st(params)
				if !ok {
					return emptyAgg(agg), nil
				}
				return s.aggregate(slot, agg, time.Time{}, time.Time{}, params[2].(int), false), nil
			}, new(func(map[string]any, string, int) float64)),
		)
	}
	return opts
}()

func emptyAgg(agg string) float64 {
	if agg == "sum" || agg == "count" {
		return 0
	}
	return math.NaN()
}

// toFloat converts an expression result to a value for a command.
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("value %v (%T) is not a number", v, v)
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// lineCol locates byte offset off of an expression given in a YAML scalar at (line, col).
func lineCol(src string, off, line, col int, block bool, quoted bool) (int, int) {
	if off > len(src) {
		off = len(src)
	}
	before := src[:off]
	nl := strings.Count(before, "\n")
	if block {
		// literal/folded block scalars start on the next line; the column of the
		// content is unknown here, report the indentation-free column.
		last := strings.LastIndexByte(before, '\n')
		return line + 1 + nl, utf8.RuneCountInString(before[last+1:]) + 1
	}
	if nl > 0 {
		last := strings.LastIndexByte(before, '\n')
		return line + nl, utf8.RuneCountInString(before[last+1:]) + 1
	}
	if quoted {
		col++
	}
	return line, col + utf8.RuneCountInString(before)
}
