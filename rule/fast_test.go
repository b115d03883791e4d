package rule

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// gen builds random expressions over three points from the grammar the fast path
// covers, plus a few forms it does not (which must fall back to the VM).
type gen struct{ r *rand.Rand }

func (g gen) num(d int) string {
	if d <= 0 {
		switch g.r.IntN(4) {
		case 0:
			return fmt.Sprint(g.r.IntN(200) - 100)
		case 1:
			return fmt.Sprintf("%.2f", g.r.Float64()*200-100)
		default:
			return []string{"a.x", "b.y", "c.z"}[g.r.IntN(3)]
		}
	}
	switch g.r.IntN(9) {
	case 0, 1, 2:
		return fmt.Sprintf("(%s %s %s)", g.num(d-1), []string{"+", "-", "*", "/"}[g.r.IntN(4)], g.num(d-1))
	case 3:
		return "-(" + g.num(d-1) + ")"
	case 4:
		return fmt.Sprintf("abs(%s)", g.num(d-1))
	case 5:
		return fmt.Sprintf("%s(%s, %s)", []string{"min", "max"}[g.r.IntN(2)], g.num(d-1), g.num(d-1))
	case 6:
		return fmt.Sprintf("(%s ? %s : %s)", g.cond(d-1), g.num(d-1), g.num(d-1))
	case 7:
		if g.r.IntN(5) > 0 {
			return g.num(0)
		}
		return fmt.Sprintf("(%s %% 7)", []string{"int(a.x)", "int(b.y)", "13"}[g.r.IntN(3)]) // VM only
	}
	return g.num(0)
}

func (g gen) cond(d int) string {
	if d <= 0 {
		if g.r.IntN(6) == 0 {
			return []string{"true", "false"}[g.r.IntN(2)]
		}
		return fmt.Sprintf("(%s %s %s)", g.num(0), []string{"<", ">", "<=", ">=", "==", "!="}[g.r.IntN(6)], g.num(0))
	}
	switch g.r.IntN(6) {
	case 0:
		return fmt.Sprintf("(%s && %s)", g.cond(d-1), g.cond(d-1))
	case 1:
		return fmt.Sprintf("(%s or %s)", g.cond(d-1), g.cond(d-1))
	case 2:
		return "!(" + g.cond(d-1) + ")"
	case 3:
		return fmt.Sprintf("(%s == %s)", g.cond(d-1), g.cond(d-1))
	}
	return fmt.Sprintf("(%s %s %s)", g.num(d-1), []string{"<", ">", "<=", ">=", "==", "!="}[g.r.IntN(6)], g.num(d-1))
}

func same(a, b any) bool {
	fa, errA := toFloat(a)
	fb, errB := toFloat(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return fa == fb || math.IsNaN(fa) && math.IsNaN(fb)
}

// TestFastPathMatchesVM checks that the closure fast path computes what the expr
// VM computes, on random expressions and values (zeros included).
func TestFastPathMatchesVM(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	cat := newCatalogue(nil, nil)
	slots := &slotTable{index: map[string]int32{}}
	st := newStore()
	w := newWorkers(1, st)[0]
	fast, total := 0, 0
	for i := range 4000 {
		kind := exprKind(i % 2) // boolExpr, numExpr
		src := g.cond(3)
		if kind == numExpr {
			src = g.num(3)
		}
		p, errs := compileExpr(src, "", kind, cat, slots, nil)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", src, errs[0])
		}
		set := &ruleSet{slots: slots, retention: map[int32]window{}}
		st.fit(set)
		for range 5 {
			for _, sl := range p.rw.refs {
				v := float64(g.r.IntN(7)-3) * []float64{1, 0.5, 10, 0}[g.r.IntN(4)]
				st.set(sl, v, false, st.now)
			}
			total++
			want, err := w.run(p)
			if err != nil {
				continue // e.g. an integer modulo by zero: VM only
			}
			var got any
			switch {
			case kind == boolExpr && p.fastB != nil:
				got = p.fastB(st.val)
				if p.code == nil {
					t.Fatalf("%s: no bytecode", src)
				}
				if c := run(p.code, st.val); c != got {
					t.Fatalf("%s: bytecode %v, closures %v", src, c, got)
				}
			case kind == numExpr && p.fastN != nil:
				got = p.fastN(st.val)
			default:
				continue
			}
			fast++
			if !same(got, want) {
				vals := []string{}
				for _, sl := range p.rw.refs {
					vals = append(vals, fmt.Sprintf("%s=%g", slots.ids[sl], st.val[sl]))
				}
				t.Fatalf("%s with %s: fast path %v, VM %v", src, strings.Join(vals, " "), got, want)
			}
		}
	}
	if fast < total/2 {
		t.Errorf("only %d of %d evaluations took the fast path", fast, total)
	}
	t.Logf("%d of %d evaluations compared on the fast path", fast, total)
}
