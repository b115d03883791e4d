package history

import (
	"fmt"

	"github.com/voltage-ems/ems/history/internal/codec"
	"github.com/voltage-ems/ems/model"
)

// acc is an exact partial aggregate: merging two accs of disjoint, time
// ordered sample sets gives the acc of their union.
type acc struct {
	n                          int64
	sum, min, max, first, last float64
}

func (a *acc) add(v float64) {
	if a.n == 0 {
		a.min, a.max, a.first = v, v, v
	} else {
		if v < a.min {
			a.min = v
		}
		if v > a.max {
			a.max = v
		}
	}
	a.last = v
	a.sum += v
	a.n++
}

// merge folds o, whose samples all come after a's, into a.
func (a *acc) merge(o acc) {
	if o.n == 0 {
		return
	}
	if a.n == 0 {
		*a = o
		return
	}
	a.n += o.n
	a.sum += o.sum
	if o.min < a.min {
		a.min = o.min
	}
	if o.max > a.max {
		a.max = o.max
	}
	a.last = o.last
}

func (a *acc) value(g Aggregation) float64 {
	switch g {
	case AggAvg:
		return a.sum / float64(a.n)
	case AggMin:
		return a.min
	case AggMax:
		return a.max
	case AggSum:
		return a.sum
	case AggCount:
		return float64(a.n)
	case AggFirst:
		return a.first
	case AggLast:
		return a.last
	}
	return 0
}

// usable reports whether a sample takes part in aggregations: not of bad
// quality and not NaN (NaN has no order, so min/max/first/last over it
// would depend on how buckets were split between rollups).
func usable(q uint8, v float64) bool { return !model.Quality(q).IsBad() && v == v }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// rollup computes the per-bucket accs of res-millisecond buckets over c.
func rollup(c *codec.Columns, res int64) (starts []int64, accs []acc) {
	for i, t := range c.T {
		if !usable(c.Q[i], c.V[i]) {
			continue
		}
		b := floorDiv(t, res) * res
		if len(starts) == 0 || starts[len(starts)-1] != b {
			starts = append(starts, b)
			accs = append(accs, acc{})
		}
		accs[len(accs)-1].add(c.V[i])
	}
	return starts, accs
}

// encodeRollup encodes bucket accs as six codec blocks.
func encodeRollup(dst []byte, starts []int64, accs []acc, opt codec.Options) ([]byte, error) {
	n := len(starts)
	c := &codec.Columns{T: starts, V: make([]float64, n), Q: make([]uint8, n)}
	for col := range 6 {
		for i := range accs {
			a := &accs[i]
			c.V[i] = [...]float64{float64(a.n), a.sum, a.min, a.max, a.first, a.last}[col]
		}
		var err error
		dst, _, err = codec.Encode(dst, c, opt)
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func decodeRollup(b []byte) ([]int64, []acc, error) {
	var starts []int64
	var accs []acc
	for col := range 6 {
		c, _, size, err := codec.Decode(b)
		if err != nil {
			return nil, nil, err
		}
		b = b[size:]
		if col == 0 {
			starts = c.T
			accs = make([]acc, len(c.T))
		} else if len(c.T) != len(starts) {
			return nil, nil, fmt.Errorf("%w: rollup columns differ in length", codec.ErrCorrupt)
		}
		for i, v := range c.V {
			a := &accs[i]
			switch col {
			case 0:
				if v < 1 || v != float64(int64(v)) {
					return nil, nil, fmt.Errorf("%w: rollup count %v", codec.ErrCorrupt, v)
				}
				a.n = int64(v)
			case 1:
				a.sum = v
			case 2:
				a.min = v
			case 3:
				a.max = v
			case 4:
				a.first = v
			case 5:
				a.last = v
			}
		}
	}
	if len(b) != 0 {
		return nil, nil, fmt.Errorf("%w: trailing bytes after rollup", codec.ErrCorrupt)
	}
	return starts, accs, nil
}
