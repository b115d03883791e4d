package rule

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/expr-lang/expr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltage-ems/ems/model"
)

// Option configures a Runner.
type Option func(*config) error

type config struct {
	specs      []Spec
	model      *model.Model
	points     map[string]bool
	exec       Executor
	log        *slog.Logger
	reg        prometheus.Registerer
	workers    int
	budget     time.Duration
	depth      int
	cmdTimeout time.Duration
	client     *http.Client
	queue      int
	funcs      []expr.Option
}

// WithRules adds rules given as values.
func WithRules(specs ...Spec) Option {
	return func(c *config) error {
		c.specs = append(c.specs, specs...)
		return nil
	}
}

// WithRulesYAML adds the rules of a YAML document (see Parse); file names the source in errors.
func WithRulesYAML(data []byte, file string) Option {
	return func(c *config) error {
		specs, err := Parse(data, file)
		if err != nil {
			return err
		}
		c.specs = append(c.specs, specs...)
		return nil
	}
}

// WithRulesFile adds the rules of a YAML file.
func WithRulesFile(path string) Option {
	return func(c *config) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("rule: %w", err)
		}
		return WithRulesYAML(b, path)(c)
	}
}

// WithModel checks every point a rule reads or writes against the device model
// (model.HasPoint), and rejects set actions on T and S points.
func WithModel(m *model.Model) Option {
	return func(c *config) error {
		if m == nil {
			return errors.New("rule: WithModel: nil model")
		}
		c.model = m
		return nil
	}
}

// WithPoints declares point ids that exist besides the model's (e.g. channel points
// such as "ch1.T.7"). Without WithModel and WithPoints no existence check is made:
// every dotted identifier in an expression is taken as a point.
func WithPoints(ids []string) Option {
	return func(c *config) error {
		if c.points == nil {
			c.points = map[string]bool{}
		}
		for _, id := range ids {
			c.points[id] = true
		}
		return nil
	}
}

// WithExecutor makes the engine execute set actions itself, so that success and
// failure chain edges follow the real outcome. Without it, set actions are returned
// unexecuted for the caller.
func WithExecutor(e Executor) Option {
	return func(c *config) error {
		c.exec = e
		return nil
	}
}

// WithLogger sets the logger (nil discards).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.log = l
		return nil
	}
}

// WithMetrics registers the engine's metrics on reg (nil: no metrics).
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		c.reg = reg
		return nil
	}
}

// WithWorkers bounds the number of goroutines that evaluate rules in parallel
// within one Process call (default GOMAXPROCS, at most 64).
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("rule: WithWorkers(%d): want 1 to 64", n)
		}
		c.workers = n
		return nil
	}
}

// WithBudget sets the evaluation budget of one rule (default 100 ms; it is wall-clock time, so a starved machine can exceed it). An evaluation
// that takes longer is discarded, counted as an overrun and reported as an event.
func WithBudget(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rule: WithBudget(%v): want a positive duration", d)
		}
		c.budget = d
		return nil
	}
}

// WithChainDepth limits how many edges a chain may follow from the rule that
// started it (default 8).
func WithChainDepth(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("rule: WithChainDepth(%d): want 1 to 1000", n)
		}
		c.depth = n
		return nil
	}
}

// WithCommandTimeout bounds one Executor call (default 5 s).
func WithCommandTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rule: WithCommandTimeout(%v): want a positive duration", d)
		}
		c.cmdTimeout = d
		return nil
	}
}

// WithHTTPClient sets the client for webhook actions (default: a client without
// global timeout; each call has the action's timeout).
func WithHTTPClient(h *http.Client) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("rule: WithHTTPClient: nil client")
		}
		c.client = h
		return nil
	}
}

// WithWebhookQueue bounds the queue of pending webhook calls (default 256); calls
// beyond it fail at once and are counted.
func WithWebhookQueue(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("rule: WithWebhookQueue(%d): want at least 1", n)
		}
		c.queue = n
		return nil
	}
}

// WithFunction makes a Go function callable from rule expressions, with the
// signature types given as for expr.Function.
func WithFunction(name string, fn func(params ...any) (any, error), types ...any) Option {
	return func(c *config) error {
		if !isName(name) || pointHelpers[name] || keywords[name] {
			return fmt.Errorf("rule: WithFunction(%q): not a usable name", name)
		}
		c.funcs = append(c.funcs, expr.Function(name, fn, types...))
		return nil
	}
}

func defaults() config {
	w := runtime.GOMAXPROCS(0)
	if w > 64 {
		w = 64
	}
	return config{workers: w, budget: 100 * time.Millisecond, depth: 8, cmdTimeout: 5 * time.Second, queue: 256, client: &http.Client{}}
}
