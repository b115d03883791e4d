package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
)

// Waveforms of simulated points.
const (
	WaveConstant   = "constant"    // Value
	WaveSine       = "sine"        // Value + Amplitude·sin(2π t / Period)
	WaveRamp       = "ramp"        // from Min to Max over Period, then again
	WaveRandomWalk = "random_walk" // starts at Value, steps of ±Step, kept in [Min, Max]
	WaveSteps      = "steps"       // Steps: value from each At (offset from start) on; repeats every Period when set
	WavePVDay      = "pv_day"      // Amplitude·sin over daylight (Sunrise..Sunset hours, local time of day), 0 at night
	WaveFollow     = "follow"      // first-order lag towards Source with time constant Tau
	WaveIntegrate  = "integrate"   // Value + ∫ Gain·Source dt, kept in [Min, Max]
	WaveSum        = "sum"         // Σ Gains[i]·Sources[i]
	WaveSetpoint   = "setpoint"    // holds the last written value (C and A points); starts at Value
)

// Duration is a time.Duration that reads "1s", "250ms" from YAML.
type Duration = model.Duration

// SimStep is one step of a WaveSteps point.
type SimStep struct {
	At    Duration `yaml:"at"`
	Value float64  `yaml:"value"`
}

// SimPoint is one simulated point. Its id is "device.name".
type SimPoint struct {
	Name       string     `yaml:"name"`
	Kind       model.Kind `yaml:"kind"` // T (default), S, C or A; C and A points are writable
	Wave       string     `yaml:"wave"`
	Value      float64    `yaml:"value"`
	Amplitude  float64    `yaml:"amplitude"`
	Period     Duration   `yaml:"period"`
	Min        *float64   `yaml:"min"`
	Max        *float64   `yaml:"max"`
	Step       float64    `yaml:"step"`
	Noise      float64    `yaml:"noise"`      // standard deviation of added Gaussian noise
	Resolution float64    `yaml:"resolution"` // round to a multiple of this
	Steps      []SimStep  `yaml:"steps"`
	Source     string     `yaml:"source"` // point id driving follow/integrate
	Sources    []string   `yaml:"sources"`
	Gain       float64    `yaml:"gain"`
	Gains      []float64  `yaml:"gains"`
	Tau        Duration   `yaml:"tau"`
	Sunrise    float64    `yaml:"sunrise"` // hour of day, default 6
	Sunset     float64    `yaml:"sunset"`  // hour of day, default 18
}

// SimDevice is a virtual device: a named group of points.
type SimDevice struct {
	Name   string     `yaml:"name"`
	Points []SimPoint `yaml:"points"`
}

// SimConfig configures a Simulator.
type SimConfig struct {
	Interval Duration `yaml:"interval"` // publish period, default 1s
	Seed     uint64   `yaml:"seed"`     // random seed; the same seed gives the same values
	// Speed runs simulated time faster than the wall clock (60 = one
	// simulated hour per minute): waveforms, dynamics and the time of day
	// of pv_day all follow simulated time. Sample times stay wall-clock
	// times. Default 1.
	Speed   float64     `yaml:"speed"`
	Devices []SimDevice `yaml:"devices"`
}

// ParseSimConfig parses a simulator configuration from YAML; file names the
// source in errors. Unknown keys are errors. The result is validated.
func ParseSimConfig(b []byte, file string) (*SimConfig, error) {
	var c SimConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return nil, model.YAMLErrors(file, err)
	}
	if err := c.Validate(); err != nil {
		for _, ce := range model.AsConfigErrors(err) {
			ce.File = file
		}
		return nil, err
	}
	return &c, nil
}

// LoadSimConfig reads a simulator configuration file.
func LoadSimConfig(path string) (*SimConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("collect: read simulator config: %w", err)
	}
	return ParseSimConfig(b, path)
}

// Validate checks the configuration and returns every problem at once.
func (c *SimConfig) Validate() error {
	var errs model.ConfigErrors
	bad := func(id, field, value, format string, a ...any) {
		errs = append(errs, &model.ConfigError{ID: id, Field: field, Value: value, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Speed < 0 || c.Speed > 100000 {
		bad("", "speed", fmt.Sprint(c.Speed), "speed must be between 0 (default 1) and 100000")
	}
	if c.Interval < 0 {
		bad("", "interval", time.Duration(c.Interval).String(), "interval must be positive")
	}
	ids := map[string]bool{}
	for _, d := range c.Devices {
		for _, p := range d.Points {
			ids[d.Name+"."+p.Name] = true
		}
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if d.Name == "" {
			bad("", "devices.name", "", "device without a name")
		}
		for _, p := range d.Points {
			id := d.Name + "." + p.Name
			if p.Name == "" {
				bad(d.Name, "points.name", "", "point without a name")
				continue
			}
			if seen[id] {
				bad(id, "name", p.Name, "duplicate point")
			}
			seen[id] = true
			if p.Kind != 0 && !p.Kind.Valid() {
				bad(id, "kind", p.Kind.String(), "invalid kind")
			}
			if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
				bad(id, "min", fmt.Sprint(*p.Min), "min above max %g", *p.Max)
			}
			if p.Noise < 0 || p.Resolution < 0 {
				bad(id, "noise", fmt.Sprint(p.Noise), "noise and resolution must be >= 0")
			}
			switch p.Wave {
			case "", WaveConstant, WaveSetpoint:
			case WaveSine, WaveRamp:
				if p.Period <= 0 {
					bad(id, "period", time.Duration(p.Period).String(), "%s needs a positive period", p.Wave)
				}
				if p.Wave == WaveRamp && (p.Min == nil || p.Max == nil) {
					bad(id, "min", "", "ramp needs min and max")
				}
			case WaveRandomWalk:
				if p.Step <= 0 {
					bad(id, "step", fmt.Sprint(p.Step), "random_walk needs a positive step")
				}
			case WaveSteps:
				if len(p.Steps) == 0 {
					bad(id, "steps", "", "steps needs at least one step")
				}
			case WavePVDay:
				if p.Sunrise != 0 || p.Sunset != 0 {
					if p.Sunrise < 0 || p.Sunset > 24 || p.Sunrise >= p.Sunset {
						bad(id, "sunrise", fmt.Sprint(p.Sunrise), "need 0 <= sunrise < sunset <= 24")
					}
				}
			case WaveFollow, WaveIntegrate:
				if !ids[p.Source] {
					bad(id, "source", p.Source, "unknown source point")
				}
				if p.Wave == WaveFollow && p.Tau < 0 {
					bad(id, "tau", time.Duration(p.Tau).String(), "tau must be >= 0")
				}
			case WaveSum:
				if len(p.Sources) == 0 || (len(p.Gains) != 0 && len(p.Gains) != len(p.Sources)) {
					bad(id, "sources", "", "sum needs sources and, when given, one gain per source")
				}
				for _, s := range p.Sources {
					if !ids[s] {
						bad(id, "sources", s, "unknown source point")
					}
				}
			default:
				bad(id, "wave", p.Wave, "unknown waveform (want constant, sine, ramp, random_walk, steps, pv_day, follow, integrate, sum or setpoint)")
			}
		}
	}
	return errs.Err()
}

// Simulator is a Collector and Writer of virtual devices. Every Interval
// it computes every point in configuration order (a point reads the
// current value of points before it and the previous value of points after
// it) and publishes one batch. Writes set C and A points, which drive the
// points that follow or integrate them.
type Simulator struct {
	cfg   SimConfig
	pts   []simState
	index map[string]int

	mu      sync.Mutex // guards pts values and rng
	rng     *rand.Rand
	start   time.Time
	last    time.Time
	running bool
}

type simState struct {
	id    string
	cfg   SimPoint
	value float64
	src   []int
}

// NewSimulator validates cfg and returns a simulator.
func NewSimulator(cfg SimConfig) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = Duration(time.Second)
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	s := &Simulator{cfg: cfg, index: map[string]int{}, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	for _, d := range cfg.Devices {
		for _, p := range d.Points {
			if p.Kind == 0 {
				p.Kind = model.Telemetry
			}
			if p.Wave == "" {
				if p.Kind.Writable() {
					p.Wave = WaveSetpoint
				} else {
					p.Wave = WaveConstant
				}
			}
			s.index[d.Name+"."+p.Name] = len(s.pts)
			s.pts = append(s.pts, simState{id: d.Name + "." + p.Name, cfg: p, value: p.Value})
		}
	}
	for i := range s.pts {
		p := &s.pts[i]
		if p.cfg.Source != "" {
			p.src = append(p.src, s.index[p.cfg.Source])
		}
		for _, src := range p.cfg.Sources {
			p.src = append(p.src, s.index[src])
		}
	}
	return s, nil
}

// Points returns the ids of every simulated point in configuration order.
func (s *Simulator) Points() []string {
	out := make([]string, len(s.pts))
	for i := range s.pts {
		out[i] = s.pts[i].id
	}
	return out
}

// Run publishes a batch every Interval until ctx is done.
func (s *Simulator) Run(ctx context.Context, sink Sink) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return fmt.Errorf("collect: simulator already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	tick := time.NewTicker(time.Duration(s.cfg.Interval))
	defer tick.Stop()
	batch := make([]model.Sample, len(s.pts))
	for {
		now := time.Now()
		batch = s.step(now, batch[:0])
		// A refused batch (the sink is closing or full) is not retried:
		// the next tick carries fresher values of the same points.
		_ = sink.Publish(ctx, batch)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// step advances the simulation to now and appends one sample per point.
func (s *Simulator) step(now time.Time, out []model.Sample) []model.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		s.start, s.last = now, now
	}
	speed := s.cfg.Speed
	dt := now.Sub(s.last).Seconds() * speed
	s.last = now
	t := time.Duration(float64(now.Sub(s.start)) * speed)
	simNow := s.start.Add(t)
	for i := range s.pts {
		p := &s.pts[i]
		c := &p.cfg
		v := p.value
		switch c.Wave {
		case WaveConstant, WaveSetpoint:
			v = p.value
		case WaveSine:
			v = c.Value + c.Amplitude*math.Sin(2*math.Pi*t.Seconds()/time.Duration(c.Period).Seconds())
		case WaveRamp:
			frac := math.Mod(t.Seconds(), time.Duration(c.Period).Seconds()) / time.Duration(c.Period).Seconds()
			v = *c.Min + (*c.Max-*c.Min)*frac
		case WaveRandomWalk:
			if dt > 0 {
				v += (s.rng.Float64()*2 - 1) * c.Step
			}
		case WaveSteps:
			at := t
			if c.Period > 0 {
				at = t % time.Duration(c.Period)
			}
			v = c.Steps[0].Value
			for _, st := range c.Steps {
				if at >= time.Duration(st.At) {
					v = st.Value
				}
			}
		case WavePVDay:
			rise, set := c.Sunrise, c.Sunset
			if rise == 0 && set == 0 {
				rise, set = 6, 18
			}
			h := float64(simNow.Hour()) + float64(simNow.Minute())/60 + float64(simNow.Second())/3600
			v = 0
			if h > rise && h < set {
				v = c.Amplitude * math.Sin(math.Pi*(h-rise)/(set-rise))
			}
		case WaveFollow:
			target := s.pts[p.src[0]].value
			if c.Tau <= 0 {
				v = target
			} else {
				v += (target - v) * (1 - math.Exp(-dt/time.Duration(c.Tau).Seconds()))
			}
		case WaveIntegrate:
			v += c.Gain * s.pts[p.src[0]].value * dt
		case WaveSum:
			v = 0
			for j, src := range p.src {
				g := 1.0
				if len(c.Gains) > 0 {
					g = c.Gains[j]
				}
				v += g * s.pts[src].value
			}
		}
		if c.Min != nil && v < *c.Min {
			v = *c.Min
		}
		if c.Max != nil && v > *c.Max {
			v = *c.Max
		}
		p.value = v // the noiseless state drives dynamics
		pub := v
		if c.Noise > 0 {
			pub += s.rng.NormFloat64() * c.Noise
		}
		if c.Resolution > 0 {
			pub = math.Round(pub/c.Resolution) * c.Resolution
		}
		// Limits bound the published value too: a sensor of a quantity
		// that cannot go negative does not report noise below zero.
		if c.Min != nil && pub < *c.Min {
			pub = *c.Min
		}
		if c.Max != nil && pub > *c.Max {
			pub = *c.Max
		}
		if (c.Kind == model.Signal || c.Kind == model.Control) && pub != 0 {
			pub = 1
		}
		out = append(out, model.Sample{Point: p.id, Value: pub, Time: now})
	}
	return out
}

// Value returns the current noiseless value of a simulated point.
func (s *Simulator) Value(point string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[point]
	if !ok {
		return 0, false
	}
	return s.pts[i].value, true
}

// Write sets a C or A point. The value must be within the point's min and
// max; a C point takes 0 or 1. Unknown points fail with ErrUnknownPoint,
// T and S points with ErrNotWritable.
func (s *Simulator) Write(ctx context.Context, cmd model.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[cmd.Point]
	if !ok {
		return &model.CommandError{Point: cmd.Point, Value: cmd.Value, Err: ErrUnknownPoint, Reason: "not a simulated point"}
	}
	p := &s.pts[i]
	mp := model.Point{Kind: p.cfg.Kind}
	if p.cfg.Min != nil {
		mp.Min, mp.HasMin = *p.cfg.Min, true
	}
	if p.cfg.Max != nil {
		mp.Max, mp.HasMax = *p.cfg.Max, true
	}
	if err := mp.Validate(cmd.Point, cmd.Value); err != nil {
		return err
	}
	p.value = cmd.Value
	return nil
}
