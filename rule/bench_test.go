package rule_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/rule"
)

const benchPoints = 10000

func benchPoint(i int) string { return fmt.Sprintf("d%04d.v", i%benchPoints) }

// benchRules builds n rules over 10,000 points; rule i reads 1, 2 or 3 points
// (i%3+1), starting at point i*benchPoints/n, so rules spread over all points
// whatever n is.
func benchRules(n int) []rule.Spec {
	specs := make([]rule.Spec, n)
	for i := range specs {
		p := i * benchPoints / n
		var cond string
		switch i % 3 {
		case 0:
			cond = fmt.Sprintf("%s > 99", benchPoint(p))
		case 1:
			cond = fmt.Sprintf("%s + %s > 198", benchPoint(p), benchPoint(p+1))
		default:
			cond = fmt.Sprintf("%s > 90 && %s < %s - 90", benchPoint(p), benchPoint(p+1), benchPoint(p+2))
		}
		specs[i] = rule.Spec{
			ID:        fmt.Sprintf("r%05d", i),
			Priority:  i % 4,
			Condition: cond,
			Actions:   []rule.ActionSpec{{Type: rule.ActionSet, Point: fmt.Sprintf("out%05d.v", i), Value: "1"}},
		}
	}
	return specs
}

// benchBatches returns batches of 1,000 samples that together cover every point
// once per 10 batches, with pseudo-random values in [0, 100). As with a collector
// and its point table, each point id is one string, reused by every sample.
func benchBatches(count int) [][]model.Sample {
	names := make([]string, benchPoints)
	for i := range names {
		names[i] = benchPoint(i)
	}
	out := make([][]model.Sample, count)
	x := uint64(42)
	k := 0
	for b := range out {
		batch := make([]model.Sample, 1000)
		for i := range batch {
			x = x*6364136223846793005 + 1442695040888963407
			batch[i] = model.Sample{Point: names[k%benchPoints], Value: float64(x>>33%10000) / 100}
			k++
		}
		out[b] = batch
	}
	return out
}

// BenchmarkProcess measures Process on 10,000 points with batches of 1,000 samples
// spread over all points; values are uniform in [0, 100), so about 1 % of the
// evaluations fire a rule (a set action), as rules that watch limits do. evals/s counts rule condition evaluations; ns/sample is
// the cost of one sample, evaluations and actions included. "expr" is the raw cost
// of one expr-lang evaluation of a 3-point condition with a reused VM, for reference.
func BenchmarkProcess(b *testing.B) {
	bs := benchBatches(50)
	for _, n := range []int{100, 10000, -100, -10000} {
		specs := benchRules(abs(n))
		name := fmt.Sprintf("rules=%d", n)
		switch {
		case n == -10000:
			// The same 10,000 rules written so that they need the expr VM (int()
			// and % are outside the fast path): the engine's cost on the VM path.
			name = "rules=10000,vm"
			for i := range specs {
				specs[i].Condition = fmt.Sprintf("int(%s) %% 100 > 98", benchPoint(i))
			}
		case n < 0:
			// The 100 rules of rules=100 plus 9,900 rules on points that are never
			// sampled: the cost of unrelated rules.
			name = "rules=100+9900unrelated"
			for i := range 9900 {
				specs = append(specs, rule.Spec{ID: fmt.Sprintf("u%05d", i), Condition: fmt.Sprintf("u%05d.v > %d", i, i%100),
					Actions: []rule.ActionSpec{{Type: rule.ActionLog, Message: "x"}}})
			}
		}
		b.Run(name, func(b *testing.B) {
			r, err := rule.New(rule.WithRules(specs...))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			for _, batch := range bs { // warm up: every point has a value
				if _, err := r.Process(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			before, beforeFired := totalEvals(r)
			samples := 0
			i := 0
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Process(ctx, bs[i%len(bs)]); err != nil {
					b.Fatal(err)
				}
				samples += len(bs[i%len(bs)])
				i++
			}
			evals, fired := totalEvals(r)
			evals -= before
			fired -= beforeFired
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(evals)/sec, "evals/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
			b.ReportMetric(float64(evals)/float64(samples), "evals/sample")
			b.ReportMetric(float64(fired)/float64(samples), "fired/sample")
		})
	}
	b.Run("expr", func(b *testing.B) {
		env := map[string]any{}
		for i := range benchPoints {
			env[fmt.Sprintf("__p%d", i)] = float64(i % 100)
		}
		prog, err := expr.Compile("__p10 > 50 && __p11 < __p12", expr.Env(env), expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		var m vm.VM
		for b.Loop() {
			if _, err := m.Run(prog, env); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func totalEvals(r *rule.Runner) (evals, fired uint64) {
	for _, s := range r.Stats() {
		evals += s.Evaluations
		fired += s.Matches
	}
	return evals, fired
}
