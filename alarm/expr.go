package alarm

import (
	"math"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what a suppress_when expression sees. The functions are bound
// to the engine when the definition is compiled into an engine; for
// validation alone (env nil) they are typed stubs.
type exprEnv struct {
	value  func(string) (float64, bool)
	good   func(string) bool
	active func(string) bool
}

// compileExpr compiles a boolean expr-lang condition with the functions
// point(id) float64, good(id) bool and active(alarmID) bool.
func compileExpr(src string, env *exprEnv) (*vm.Program, error) {
	if env == nil {
		env = &exprEnv{
			value:  func(string) (float64, bool) { return math.NaN(), false },
			good:   func(string) bool { return false },
			active: func(string) bool { return false },
		}
	}
	return expr.Compile(src,
		expr.AsBool(),
		expr.Function("point", func(args ...any) (any, error) {
			v, _ := env.value(args[0].(string))
			return v, nil
		}, new(func(string) float64)),
		expr.Function("good", func(args ...any) (any, error) {
			return env.good(args[0].(string)), nil
		}, new(func(string) bool)),
		expr.Function("active", func(args ...any) (any, error) {
			return env.active(args[0].(string)), nil
		}, new(func(string) bool)),
	)
}

type pointRefs struct {
	ids     []string
	dynamic bool // a point id that is not a string literal, or active()
}

func (v *pointRefs) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	switch id.Value {
	case "point", "good":
		if len(call.Arguments) > 0 {
			if s, ok := call.Arguments[0].(*ast.StringNode); ok {
				v.ids = append(v.ids, s.Value)
				return
			}
		}
		v.dynamic = true
	case "active":
		v.dynamic = true
	}
}

// exprPoints returns the literal point ids a program reads with point() or
// good(), so the engine tracks those points, and whether it depends on
// anything else (alarm states, computed point ids).
func exprPoints(p *vm.Program) ([]string, bool) {
	var v pointRefs
	n := p.Node()
	ast.Walk(&n, &v)
	return v.ids, v.dynamic
}
