package alarm

// runExpr evaluates a definition's suppress_when condition on the engine's
// reused VM.
func (e *Engine) runExpr(cd *cdef) (bool, error) {
	out, err := e.vm.Run(cd.sup, nil)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
