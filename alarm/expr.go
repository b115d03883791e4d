package alarm

import (
	"math"

	"github.com/expr-lang/expr"
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
