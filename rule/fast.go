package rule

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// The fast path: conditions and values made only of point values, number and
// bool literals, arithmetic (+ - * /), comparisons, logic (&& || !), the
// conditional operator and abs/min/max are compiled from expr's type-checked tree
// into Go closures over the flat value array. They compute exactly what the expr
// VM computes (all point values are float64 and "/" is float division in expr),
// without boxing values or map lookups. Everything else runs on the expr VM.

type fastBool func(v []float64) bool
type fastNum func(v []float64) float64

type fastCompiler struct {
	slotOf func(name string) (int32, bool)
}

func isNumType(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Float64, reflect.Float32, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func isIntType(t reflect.Type) bool {
	return t != nil && t.Kind() != reflect.Float64 && t.Kind() != reflect.Float32 && isNumType(t)
}

func isBoolType(t reflect.Type) bool { return t != nil && t.Kind() == reflect.Bool }

func (fc *fastCompiler) num(n ast.Node) fastNum {
	switch x := n.(type) {
	case *ast.FloatNode:
		c := x.Value
		return func([]float64) float64 { return c }
	case *ast.IntegerNode:
		c := float64(x.Value)
		return func([]float64) float64 { return c }
	case *ast.ConstantNode:
		switch v := x.Value.(type) {
		case float64:
			return func([]float64) float64 { return v }
		case int:
			c := float64(v)
			return func([]float64) float64 { return c }
		}
		return nil
	case *ast.IdentifierNode:
		slot, ok := fc.slotOf(x.Value)
		if !ok {
			return nil
		}
		return func(v []float64) float64 { return v[slot] }
	case *ast.UnaryNode:
		if x.Operator != "-" && x.Operator != "+" {
			return nil
		}
		a := fc.num(x.Node)
		if a == nil {
			return nil
		}
		if x.Operator == "+" {
			return a
		}
		return func(v []float64) float64 { return -a(v) }
	case *ast.BinaryNode:
		// Integer-only arithmetic keeps integer semantics in expr (wrap-around);
		// leave it to the VM unless a float may be involved. ("/" is always a float
		// division in expr.) Results of abs, min, max and ?: have an interface type
		// and are treated as floats: they differ from expr only beyond 2^53.
		if isIntType(x.Left.Type()) && isIntType(x.Right.Type()) && x.Operator != "/" {
			return nil
		}
		a, b := fc.num(x.Left), fc.num(x.Right)
		if a == nil || b == nil {
			return nil
		}
		switch x.Operator {
		case "+":
			return func(v []float64) float64 { return a(v) + b(v) }
		case "-":
			return func(v []float64) float64 { return a(v) - b(v) }
		case "*":
			return func(v []float64) float64 { return a(v) * b(v) }
		case "/":
			return func(v []float64) float64 { return a(v) / b(v) }
		}
		return nil
	case *ast.ConditionalNode:
		c := fc.cond(x.Cond)
		a, b := fc.num(x.Exp1), fc.num(x.Exp2)
		if c == nil || a == nil || b == nil {
			return nil
		}
		return func(v []float64) float64 {
			if c(v) {
				return a(v)
			}
			return b(v)
		}
	case *ast.BuiltinNode:
		var args []fastNum
		for _, a := range x.Arguments {
			f := fc.num(a)
			if f == nil {
				return nil
			}
			args = append(args, f)
		}
		switch {
		case x.Name == "abs" && len(args) == 1:
			a := args[0]
			return func(v []float64) float64 {
				// as expr's abs: -0 stays -0
				if x := a(v); x < 0 {
					return -x
				} else {
					return x
				}
			}
		case (x.Name == "min" || x.Name == "max") && len(args) == 2:
			a, b := args[0], args[1]
			if x.Name == "min" {
				return func(v []float64) float64 {
					x, y := a(v), b(v)
					if y < x {
						return y
					}
					return x
				}
			}
			return func(v []float64) float64 {
				x, y := a(v), b(v)
				if y > x {
					return y
				}
				return x
			}
		}
	}
	return nil
}

func (fc *fastCompiler) cond(n ast.Node) fastBool {
	switch x := n.(type) {
	case *ast.BoolNode:
		c := x.Value
		return func([]float64) bool { return c }
	case *ast.ConstantNode:
		if c, ok := x.Value.(bool); ok {
			return func([]float64) bool { return c }
		}
		return nil
	case *ast.UnaryNode:
		if x.Operator != "!" && x.Operator != "not" {
			return nil
		}
		a := fc.cond(x.Node)
		if a == nil {
			return nil
		}
		return func(v []float64) bool { return !a(v) }
	case *ast.ConditionalNode:
		c, a, b := fc.cond(x.Cond), fc.cond(x.Exp1), fc.cond(x.Exp2)
		if c == nil || a == nil || b == nil {
			return nil
		}
		return func(v []float64) bool {
			if c(v) {
				return a(v)
			}
			return b(v)
		}
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and", "||", "or":
			a, b := fc.cond(x.Left), fc.cond(x.Right)
			if a == nil || b == nil {
				return nil
			}
			if x.Operator == "&&" || x.Operator == "and" {
				return func(v []float64) bool { return a(v) && b(v) }
			}
			return func(v []float64) bool { return a(v) || b(v) }
		case "==", "!=":
			if isBoolType(x.Left.Type()) && isBoolType(x.Right.Type()) {
				a, b := fc.cond(x.Left), fc.cond(x.Right)
				if a == nil || b == nil {
					return nil
				}
				if x.Operator == "==" {
					return func(v []float64) bool { return a(v) == b(v) }
				}
				return func(v []float64) bool { return a(v) != b(v) }
			}
		}
		a, b := fc.num(x.Left), fc.num(x.Right)
		if a == nil || b == nil {
			return nil
		}
		// Specialise the most common shape, point <op> constant.
		if l, ok := x.Left.(*ast.IdentifierNode); ok {
			if k, ok := constNum(x.Right); ok {
				if slot, ok := fc.slotOf(l.Value); ok {
					switch x.Operator {
					case ">":
						return func(v []float64) bool { return v[slot] > k }
					case "<":
						return func(v []float64) bool { return v[slot] < k }
					case ">=":
						return func(v []float64) bool { return v[slot] >= k }
					case "<=":
						return func(v []float64) bool { return v[slot] <= k }
					case "==":
						return func(v []float64) bool { return v[slot] == k }
					case "!=":
						return func(v []float64) bool { return v[slot] != k }
					}
				}
			}
		}
		switch x.Operator {
		case ">":
			return func(v []float64) bool { return a(v) > b(v) }
		case "<":
			return func(v []float64) bool { return a(v) < b(v) }
		case ">=":
			return func(v []float64) bool { return a(v) >= b(v) }
		case "<=":
			return func(v []float64) bool { return a(v) <= b(v) }
		case "==":
			return func(v []float64) bool { return a(v) == b(v) }
		case "!=":
			return func(v []float64) bool { return a(v) != b(v) }
		}
	}
	return nil
}

func constNum(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.FloatNode:
		return x.Value, true
	case *ast.IntegerNode:
		return float64(x.Value), true
	}
	return 0, false
}
