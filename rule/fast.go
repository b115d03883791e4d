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

// The hot path runs conditions as a tiny stack bytecode kept in one array per
// rule set, so that evaluating thousands of rules reads memory in order instead
// of calling closures scattered over the heap. Bools are 0 and 1. Nothing in
// the fast subset can fail or has side effects, so both sides of && and || and
// both branches of ?: are evaluated.

type opcode uint8

const (
	opConst opcode = iota
	opLoad
	opAdd
	opSub
	opMul
	opDiv
	opNeg
	opAbs
	opMin
	opMax
	opLT
	opGT
	opLE
	opGE
	opEQ
	opNE
	opAnd
	opOr
	opNot
	opSelect // cond, a, b -> cond ? a : b
	opLoadGTConst
	opLoadLTConst
)

type instr struct {
	op   opcode
	slot int32
	k    float64
}

const maxStack = 16

type emitter struct {
	fc    *fastCompiler
	code  []instr
	depth int
	max   int
}

func (e *emitter) push(in instr) {
	e.code = append(e.code, in)
	switch in.op {
	case opConst, opLoad, opLoadGTConst, opLoadLTConst:
		e.depth++
	case opNeg, opAbs, opNot:
	case opSelect:
		e.depth -= 2
	default:
		e.depth--
	}
	e.max = max(e.max, e.depth)
}

// compileCode returns the bytecode of a bool node, or nil when the node is not
// in the fast subset (the same subset as fastCompiler.cond).
func (fc *fastCompiler) code(n ast.Node) []instr {
	if fc.cond(n) == nil {
		return nil
	}
	e := &emitter{fc: fc}
	if !e.cond(n) || e.max > maxStack {
		return nil
	}
	return e.code
}

func (e *emitter) num(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.FloatNode:
		e.push(instr{op: opConst, k: x.Value})
	case *ast.IntegerNode:
		e.push(instr{op: opConst, k: float64(x.Value)})
	case *ast.ConstantNode:
		switch v := x.Value.(type) {
		case float64:
			e.push(instr{op: opConst, k: v})
		case int:
			e.push(instr{op: opConst, k: float64(v)})
		default:
			return false
		}
	case *ast.IdentifierNode:
		slot, ok := e.fc.slotOf(x.Value)
		if !ok {
			return false
		}
		e.push(instr{op: opLoad, slot: slot})
	case *ast.UnaryNode:
		if !e.num(x.Node) {
			return false
		}
		if x.Operator == "-" {
			e.push(instr{op: opNeg})
		}
	case *ast.BinaryNode:
		if !e.num(x.Left) || !e.num(x.Right) {
			return false
		}
		op, ok := map[string]opcode{"+": opAdd, "-": opSub, "*": opMul, "/": opDiv}[x.Operator]
		if !ok {
			return false
		}
		e.push(instr{op: op})
	case *ast.ConditionalNode:
		if !e.cond(x.Cond) || !e.num(x.Exp1) || !e.num(x.Exp2) {
			return false
		}
		e.push(instr{op: opSelect})
	case *ast.BuiltinNode:
		for _, a := range x.Arguments {
			if !e.num(a) {
				return false
			}
		}
		switch x.Name {
		case "abs":
			e.push(instr{op: opAbs})
		case "min":
			e.push(instr{op: opMin})
		case "max":
			e.push(instr{op: opMax})
		default:
			return false
		}
	default:
		return false
	}
	return true
}

func (e *emitter) cond(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.BoolNode:
		k := 0.0
		if x.Value {
			k = 1
		}
		e.push(instr{op: opConst, k: k})
	case *ast.ConstantNode:
		b, ok := x.Value.(bool)
		if !ok {
			return false
		}
		k := 0.0
		if b {
			k = 1
		}
		e.push(instr{op: opConst, k: k})
	case *ast.UnaryNode:
		if !e.cond(x.Node) {
			return false
		}
		e.push(instr{op: opNot})
	case *ast.ConditionalNode:
		if !e.cond(x.Cond) || !e.cond(x.Exp1) || !e.cond(x.Exp2) {
			return false
		}
		e.push(instr{op: opSelect})
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and", "||", "or":
			if !e.cond(x.Left) || !e.cond(x.Right) {
				return false
			}
			if x.Operator == "&&" || x.Operator == "and" {
				e.push(instr{op: opAnd})
			} else {
				e.push(instr{op: opOr})
			}
			return true
		case "==", "!=":
			if isBoolType(x.Left.Type()) && isBoolType(x.Right.Type()) {
				if !e.cond(x.Left) || !e.cond(x.Right) {
					return false
				}
				if x.Operator == "==" {
					e.push(instr{op: opEQ})
				} else {
					e.push(instr{op: opNE})
				}
				return true
			}
		}
		if l, ok := x.Left.(*ast.IdentifierNode); ok {
			if k, ok := constNum(x.Right); ok && (x.Operator == ">" || x.Operator == "<") {
				if slot, ok := e.fc.slotOf(l.Value); ok {
					op := opLoadGTConst
					if x.Operator == "<" {
						op = opLoadLTConst
					}
					e.push(instr{op: op, slot: slot, k: k})
					return true
				}
			}
		}
		if !e.num(x.Left) || !e.num(x.Right) {
			return false
		}
		op, ok := map[string]opcode{"<": opLT, ">": opGT, "<=": opLE, ">=": opGE, "==": opEQ, "!=": opNE}[x.Operator]
		if !ok {
			return false
		}
		e.push(instr{op: op})
	default:
		return false
	}
	return true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// run executes bool bytecode over the value array.
func run(code []instr, v []float64) bool {
	var st [maxStack]float64
	sp := 0
	for i := range code {
		in := &code[i]
		switch in.op {
		case opConst:
			st[sp] = in.k
			sp++
		case opLoad:
			st[sp] = v[in.slot]
			sp++
		case opLoadGTConst:
			st[sp] = b2f(v[in.slot] > in.k)
			sp++
		case opLoadLTConst:
			st[sp] = b2f(v[in.slot] < in.k)
			sp++
		case opAdd:
			sp--
			st[sp-1] += st[sp]
		case opSub:
			sp--
			st[sp-1] -= st[sp]
		case opMul:
			sp--
			st[sp-1] *= st[sp]
		case opDiv:
			sp--
			st[sp-1] /= st[sp]
		case opNeg:
			st[sp-1] = -st[sp-1]
		case opAbs:
			if st[sp-1] < 0 {
				st[sp-1] = -st[sp-1]
			}
		case opMin:
			sp--
			if st[sp] < st[sp-1] {
				st[sp-1] = st[sp]
			}
		case opMax:
			sp--
			if st[sp] > st[sp-1] {
				st[sp-1] = st[sp]
			}
		case opLT:
			sp--
			st[sp-1] = b2f(st[sp-1] < st[sp])
		case opGT:
			sp--
			st[sp-1] = b2f(st[sp-1] > st[sp])
		case opLE:
			sp--
			st[sp-1] = b2f(st[sp-1] <= st[sp])
		case opGE:
			sp--
			st[sp-1] = b2f(st[sp-1] >= st[sp])
		case opEQ:
			sp--
			st[sp-1] = b2f(st[sp-1] == st[sp])
		case opNE:
			sp--
			st[sp-1] = b2f(st[sp-1] != st[sp])
		case opAnd:
			sp--
			st[sp-1] = b2f(st[sp-1] != 0 && st[sp] != 0)
		case opOr:
			sp--
			st[sp-1] = b2f(st[sp-1] != 0 || st[sp] != 0)
		case opNot:
			st[sp-1] = b2f(st[sp-1] == 0)
		case opSelect:
			sp -= 2
			if st[sp-1] != 0 {
				st[sp-1] = st[sp]
			} else {
				st[sp-1] = st[sp+1]
			}
		}
	}
	return st[0] != 0
}
