package alarm

import "github.com/expr-lang/expr"

func runExpr(cd *cdef) (bool, error) {
	out, err := expr.Run(cd.sup, nil)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
