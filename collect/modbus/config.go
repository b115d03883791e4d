package modbus

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voltage-ems/ems/model"
)

// Transports a channel can use.
const (
	TransportTCP        = "tcp"          // Modbus TCP (optionally over TLS)
	TransportRTU        = "rtu"          // Modbus RTU on a serial line
	TransportRTUOverTCP = "rtu-over-tcp" // RTU frames through a TCP serial gateway
)

// Defaults applied by Config.withDefaults.
const (
	DefaultTimeout      = time.Second
	DefaultInterval     = time.Second
	DefaultStaleAfter   = 3
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = time.Minute
	DefaultBusyRetries  = 3
	DefaultBusyBackoff  = 50 * time.Millisecond
	DefaultMaxRegisters = 125
	DefaultMaxBits      = 2000
	DefaultMaxGap       = 16
	DefaultMaxBitGap    = 64
	DefaultReprobe      = 10 * time.Minute
)

// Config describes one channel: one physical link (a TCP connection, a
// serial line or a serial gateway) with the units behind it and the
// mappings of its points. It is read from YAML by LoadConfig or built in
// code; Points (the channel's point table) always comes from code or CSV.
type Config struct {
	// Channel is the channel name used in point ids ("pcs" → "pcs.T.1").
	Channel string `yaml:"channel"`
	// Transport is tcp (default), rtu or rtu-over-tcp.
	Transport string `yaml:"transport"`
	// Address is host:port for tcp and rtu-over-tcp, the device path
	// (/dev/ttyUSB0) for rtu.
	Address string `yaml:"address"`
	// TLS enables Modbus/TCP security (tcp only).
	TLS *TLSConfig `yaml:"tls"`
	// Serial configures the serial line (rtu only).
	Serial SerialConfig `yaml:"serial"`
	// Timeout bounds each request (connect, send, reply). Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// RecoveryTimeout is grid-x/modbus' link and protocol recovery timeout
	// (drop late replies with an old transaction id, reconnect on a closed
	// link within one request). Default: Timeout. Negative turns it off.
	RecoveryTimeout time.Duration `yaml:"recovery_timeout"`
	// Interval is the default poll interval of every unit. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// StaleAfter is the number of intervals after which a point that was
	// not refreshed (while its link is up) is published uncertain:stale.
	// Default 3.
	StaleAfter int `yaml:"stale_after"`
	// BackoffMin and BackoffMax bound the reconnect backoff (exponential,
	// ±20% jitter). Defaults 1s and 60s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// BusyRetries is how often a request answered with exception 6
	// (server busy) is retried, waiting BusyBackoff, doubled each time.
	// Defaults 3 and 50ms; negative BusyRetries disables retrying.
	BusyRetries int           `yaml:"busy_retries"`
	BusyBackoff time.Duration `yaml:"busy_backoff"`
	// ReprobeInterval is how often points excluded after "illegal data
	// address" are read again, alone; one that answers returns to the plan.
	// Default 10 minutes; negative never.
	ReprobeInterval time.Duration `yaml:"reprobe_interval"`
	// AllowUnitZero permits unit id 0 on TCP (some gateways and devices
	// answer on 0). On RTU, 0 is the broadcast address and never polled.
	AllowUnitZero bool `yaml:"allow_unit_zero"`
	// Limits apply to every unit unless the unit overrides them.
	Limits Limits `yaml:"limits"`
	// Units overrides interval and limits per unit id.
	Units []UnitConfig `yaml:"units"`
	// Mappings are the Modbus addresses of the points (YAML form of the
	// *_mapping.csv files). LoadDir appends the CSV rows here.
	Mappings []Mapping `yaml:"mappings"`
	// Points is the channel's point table (T, S, C, A rows with Kind set).
	Points []model.Point `yaml:"-"`

	file string // YAML file the config came from, for errors
}

// Limits bound the read requests the planner builds for one unit.
type Limits struct {
	// MaxRegisters per read request (FC 3, 4); default and maximum 125.
	MaxRegisters int `yaml:"max_registers"`
	// MaxBits per read request (FC 1, 2); default and maximum 2000.
	MaxBits int `yaml:"max_bits"`
	// MaxGap is how many unmapped registers a request may read (and
	// discard) to join two ranges. 0 means the default (16); negative
	// means only adjacent ranges are joined.
	MaxGap int `yaml:"max_gap"`
	// MaxBitGap is the same for coils and discrete inputs (default 64).
	MaxBitGap int `yaml:"max_bit_gap"`
	// NoCoalesce reads every point with its own request (diagnostics).
	NoCoalesce bool `yaml:"no_coalesce"`
}

// UnitConfig overrides settings for one unit id.
type UnitConfig struct {
	ID       uint8         `yaml:"id"`
	Interval time.Duration `yaml:"interval"`
	Limits   Limits        `yaml:"limits"`
}

// TLSConfig is the client side of Modbus/TCP security.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// Config, when set in code, is used as is (files are ignored).
	Config *tls.Config `yaml:"-"`
}

// SerialConfig configures an RTU serial line.
type SerialConfig struct {
	BaudRate int    `yaml:"baud_rate"` // default 9600
	DataBits int    `yaml:"data_bits"` // default 8
	Parity   string `yaml:"parity"`    // N, E (default) or O
	StopBits int    `yaml:"stop_bits"` // default 1
}

// PointTable returns the channel's point table (Channel and Points) for
// ems.WithPointTables.
func (c *Config) PointTable() *model.PointTable {
	return &model.PointTable{Channel: c.Channel, Points: c.Points}
}

// LoadConfig reads a channel YAML file. Unknown fields are errors; every
// problem is a *model.ConfigError naming the file and line.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(path, b)
}

// LoadDir reads a channel directory: channel.yaml (the Config), the point
// table (telemetry.csv, signal.csv, control.csv, adjustment.csv, via
// model.LoadPointTableDir) and the mapping files (telemetry_mapping.csv ...
// via model.LoadMappingDir), whose rows are appended to the YAML mappings.
// The result is validated; every problem is reported with its location.
func LoadDir(dir string) (Config, error) {
	c, err := LoadConfig(filepath.Join(dir, "channel.yaml"))
	if err != nil {
		return c, err
	}
	var errs model.ConfigErrors
	t, err := model.LoadPointTableDir(dir, c.Channel)
	if err != nil {
		if es := model.AsConfigErrors(err); len(es) > 0 {
			errs = append(errs, es...)
		} else {
			return c, err
		}
	}
	if t != nil {
		c.Points = t.Points
	}
	rows, err := model.LoadMappingDir(dir)
	if err != nil {
		if es := model.AsConfigErrors(err); len(es) > 0 {
			errs = append(errs, es...)
		} else {
			return c, err
		}
	}
	ms, err := FromModel(rows)
	errs = append(errs, model.AsConfigErrors(err)...)
	c.Mappings = append(c.Mappings, ms...)
	if len(errs) > 0 {
		return c, errs
	}
	return c, c.Validate()
}

// ParseConfig parses channel YAML; file names the source in errors.
func ParseConfig(file string, b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, model.YAMLErrors(file, err)
	}
	c.file = file
	for i := range c.Mappings {
		c.Mappings[i].src.file = file
		for _, e := range c.Mappings[i].errs {
			e.File = file
		}
	}
	return c, nil
}

func (c *Config) withDefaults() Config {
	d := *c
	d.Transport = cmp.Or(d.Transport, TransportTCP)
	d.Timeout = cmp.Or(d.Timeout, DefaultTimeout)
	d.RecoveryTimeout = cmp.Or(d.RecoveryTimeout, d.Timeout)
	d.Interval = cmp.Or(d.Interval, DefaultInterval)
	d.StaleAfter = cmp.Or(d.StaleAfter, DefaultStaleAfter)
	d.BackoffMin = cmp.Or(d.BackoffMin, DefaultBackoffMin)
	d.BackoffMax = cmp.Or(d.BackoffMax, DefaultBackoffMax)
	d.BusyRetries = cmp.Or(d.BusyRetries, DefaultBusyRetries)
	d.BusyBackoff = cmp.Or(d.BusyBackoff, DefaultBusyBackoff)
	d.ReprobeInterval = cmp.Or(d.ReprobeInterval, DefaultReprobe)
	d.Serial.BaudRate = cmp.Or(d.Serial.BaudRate, 9600)
	d.Serial.DataBits = cmp.Or(d.Serial.DataBits, 8)
	d.Serial.Parity = cmp.Or(d.Serial.Parity, "E")
	d.Serial.StopBits = cmp.Or(d.Serial.StopBits, 1)
	return d
}

// limitsFor returns the effective limits and interval of a unit.
func (c *Config) limitsFor(unit uint8) (Limits, time.Duration) {
	l, iv := c.Limits, c.Interval
	for _, u := range c.Units {
		if u.ID != unit {
			continue
		}
		if u.Interval > 0 {
			iv = u.Interval
		}
		if u.Limits.MaxRegisters != 0 {
			l.MaxRegisters = u.Limits.MaxRegisters
		}
		if u.Limits.MaxBits != 0 {
			l.MaxBits = u.Limits.MaxBits
		}
		if u.Limits.MaxGap != 0 {
			l.MaxGap = u.Limits.MaxGap
		}
		if u.Limits.MaxBitGap != 0 {
			l.MaxBitGap = u.Limits.MaxBitGap
		}
		l.NoCoalesce = l.NoCoalesce || u.Limits.NoCoalesce
	}
	if l.MaxRegisters == 0 {
		l.MaxRegisters = DefaultMaxRegisters
	}
	if l.MaxBits == 0 {
		l.MaxBits = DefaultMaxBits
	}
	if l.MaxGap == 0 {
		l.MaxGap = DefaultMaxGap
	}
	if l.MaxBitGap == 0 {
		l.MaxBitGap = DefaultMaxBitGap
	}
	return l, iv
}

// Validate checks the channel settings, every mapping and the agreement
// between mappings and the point table. It reports all problems at once.
func (c *Config) Validate() error {
	_, err := c.resolve()
	return err
}

// boundPoint is a mapping joined with its point-table row.
type boundPoint struct {
	id    string
	m     Mapping
	point model.Point // copy, DataType set to the wire type
}

// resolve validates the config and joins mappings with points.
func (c *Config) resolve() ([]*boundPoint, error) {
	var errs model.ConfigErrors
	f := c.file
	cerr := func(field, value, format string, a ...any) {
		errs = append(errs, &model.ConfigError{File: f, Field: field, Value: value, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Channel == "" {
		cerr("channel", "", "missing")
	}
	switch c.Transport {
	case "", TransportTCP, TransportRTU, TransportRTUOverTCP:
	default:
		cerr("transport", c.Transport, "unknown transport (want tcp, rtu or rtu-over-tcp)")
	}
	if c.Address == "" {
		cerr("address", "", "missing (host:port, or a serial device for rtu)")
	}
	if c.TLS != nil && c.Transport != "" && c.Transport != TransportTCP {
		cerr("tls", "", "TLS is only supported with transport tcp")
	}
	if c.Timeout < 0 {
		cerr("timeout", c.Timeout.String(), "negative")
	}
	if c.Interval < 0 {
		cerr("interval", c.Interval.String(), "negative")
	}
	if c.StaleAfter < 0 {
		cerr("stale_after", fmt.Sprint(c.StaleAfter), "negative")
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 || (c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax) {
		cerr("backoff_min", c.BackoffMin.String(), "backoff_min must be >= 0 and <= backoff_max")
	}
	switch c.Serial.Parity {
	case "", "N", "E", "O":
	default:
		cerr("serial.parity", c.Serial.Parity, "want N, E or O")
	}
	checkLimits := func(prefix string, l Limits) {
		if l.MaxRegisters < 0 || l.MaxRegisters > 125 {
			cerr(prefix+"max_registers", fmt.Sprint(l.MaxRegisters), "want 1..125")
		}
		if l.MaxBits < 0 || l.MaxBits > 2000 {
			cerr(prefix+"max_bits", fmt.Sprint(l.MaxBits), "want 1..2000")
		}
	}
	checkLimits("limits.", c.Limits)
	seenUnit := map[uint8]bool{}
	for _, u := range c.Units {
		if seenUnit[u.ID] {
			cerr("units.id", fmt.Sprint(u.ID), "unit listed twice")
		}
		seenUnit[u.ID] = true
		if u.Interval < 0 {
			cerr("units.interval", u.Interval.String(), "negative")
		}
		checkLimits(fmt.Sprintf("units[%d].limits.", u.ID), u.Limits)
	}
	type key struct {
		k  model.Kind
		id uint32
	}
	points := make(map[key]*model.Point, len(c.Points))
	for i := range c.Points {
		p := &c.Points[i]
		if !p.Kind.Valid() {
			errs = append(errs, &model.ConfigError{File: f, Field: "kind", ID: fmt.Sprint(p.ID), Msg: "point without a valid kind"})
			continue
		}
		k := key{p.Kind, p.ID}
		if points[k] != nil {
			errs = append(errs, &model.ConfigError{File: f, Field: "point_id", ID: model.ChannelPointID(c.Channel, p.Kind, p.ID), Msg: "point listed twice"})
		}
		points[k] = p
	}
	mapped := map[key]bool{}
	var out []*boundPoint
	tcp := c.Transport == "" || c.Transport == TransportTCP
	for i := range c.Mappings {
		m := c.Mappings[i]
		if len(m.errs) > 0 {
			errs = append(errs, m.errs...)
			mapped[key{m.Kind, m.PointID}] = true // reported already; no "no mapping" error too
			continue
		}
		id := model.ChannelPointID(c.Channel, m.Kind, m.PointID)
		sid := fmt.Sprint(m.Unit)
		switch {
		case m.Unit == 0 && tcp && !c.AllowUnitZero:
			errs = append(errs, m.src.err("slave_id", sid, id, "unit id 0 on TCP (set allow_unit_zero if the device answers on 0)"))
			continue
		case m.Unit == 0 && !tcp:
			errs = append(errs, m.src.err("slave_id", sid, id, "unit id 0 is the RTU broadcast address"))
			continue
		case m.Unit > 247 && !tcp:
			errs = append(errs, m.src.err("slave_id", sid, id, "RTU unit ids are 1..247"))
			continue
		}
		k := key{m.Kind, m.PointID}
		if mapped[k] {
			errs = append(errs, m.src.err("point_id", fmt.Sprint(m.PointID), id, "point mapped twice"))
			continue
		}
		mapped[k] = true
		p := points[k]
		if p == nil {
			errs = append(errs, m.src.err("point_id", fmt.Sprint(m.PointID), id, "no %s point with this id in the point table", m.Kind.Name()))
			continue
		}
		pc := *p
		if !m.typeGiven && pc.DataType != model.TypeUnknown && !isBitFunction(m.Function) {
			if pc.DataType == model.String {
				errs = append(errs, m.src.err("data_type", "", id, "the point table says string: the mapping needs data_type string and a length"))
				continue
			}
			if m.DataType.Registers() != pc.DataType.Registers() && m.Function == 6 && pc.DataType.Registers() > 1 {
				errs = append(errs, m.src.err("function_code", "6", id, "%s spans %d registers: use function code 16", pc.DataType, pc.DataType.Registers()))
				continue
			}
			if m.ByteOrder != OrderDefault && !m.ByteOrder.validFor(pc.DataType.Bits()/8) {
				errs = append(errs, m.src.err("byte_order", m.ByteOrder.String(), id, "byte order %s does not fit the point table's data type %s", m.ByteOrder, pc.DataType))
				continue
			}
			if m.Bit < 0 { // a bit of a register stays bool whatever the register's type
				m.DataType = pc.DataType
			}
		} else if m.typeGiven && pc.DataType != model.TypeUnknown && pc.DataType != m.DataType &&
			!(m.DataType == model.Bool && (pc.Kind == model.Signal || pc.Kind == model.Control)) {
			errs = append(errs, m.src.err("data_type", m.DataType.String(), id, "the point table says %s", pc.DataType))
			continue
		}
		if int(m.Address)+m.Registers()-1 > 65535 {
			errs = append(errs, m.src.err("register_address", fmt.Sprint(m.Address), id, "address + %d registers runs past 65535", m.Registers()))
			continue
		}
		if !isBitFunction(m.Function) && m.Registers() > 125 {
			errs = append(errs, m.src.err("length", fmt.Sprint(m.Length), id, "value needs %d registers, a request reads at most 125", m.Registers()))
			continue
		}
		pc.DataType = m.DataType
		out = append(out, &boundPoint{id: id, m: m, point: pc})
	}
	for i := range c.Points {
		p := &c.Points[i]
		if p.Kind.Valid() && !mapped[key{p.Kind, p.ID}] {
			errs = append(errs, &model.ConfigError{File: f, Field: "point_id", Value: fmt.Sprint(p.ID), ID: model.ChannelPointID(c.Channel, p.Kind, p.ID), Msg: "point has no Modbus mapping"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// tlsConfig builds the client TLS configuration. The server name defaults
// to the host of addr.
func (t *TLSConfig) tlsConfig(addr string) (*tls.Config, error) {
	if t.Config != nil {
		return t.Config, nil
	}
	name := t.ServerName
	if name == "" {
		if h, _, err := net.SplitHostPort(addr); err == nil {
			name = h
		}
	}
	tc := &tls.Config{ServerName: name, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &model.ConfigError{Field: "tls.ca_file", Value: t.CAFile, Msg: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &model.ConfigError{Field: "tls.ca_file", Value: t.CAFile, Msg: "no PEM certificates"}
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &model.ConfigError{Field: "tls.cert_file", Value: t.CertFile, Msg: err.Error()}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
