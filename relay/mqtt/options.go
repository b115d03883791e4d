package mqtt

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/voltage-ems/ems/relay"
)

// Option configures an Adapter; New validates them.
type Option func(*config) error

type config struct {
	clientID       string
	user, pass     string
	tls            *tls.Config
	qos            byte
	retained       bool
	will           *will
	birth          []byte
	site           string
	topic          string
	eventTopic     string
	heartbeatTopic string
	heartbeatEvery time.Duration
	keepAlive      time.Duration
	connectTimeout time.Duration
	reconnectMax   time.Duration
	cleanSession   bool
	commands       bool
	allow          []string
	commandBase    string
	replyTopic     string
	maxCommand     int
	executor       relay.Executor
	logger         *slog.Logger
}

type will struct {
	topic    string
	payload  []byte
	qos      byte
	retained bool
}

func defaultConfig() config {
	return config{
		clientID:       "ems-relay",
		qos:            1,
		site:           "site",
		topic:          "ems/{site}/{device}/{point}",
		eventTopic:     "ems/{site}/events/{kind}",
		keepAlive:      30 * time.Second,
		connectTimeout: 10 * time.Second,
		reconnectMax:   10 * time.Second,
		cleanSession:   true,
		commandBase:    "ems/{site}/cmd",
		replyTopic:     "ems/{site}/reply",
		maxCommand:     4096,
	}
}

// WithClientID sets the MQTT client id (default "ems-relay"). Give every
// relay connected to one broker its own id.
func WithClientID(id string) Option {
	return func(c *config) error {
		if id == "" || len(id) > 256 {
			return fmt.Errorf("mqtt: WithClientID(%q): want 1-256 bytes", id)
		}
		c.clientID = id
		return nil
	}
}

// WithCredentials sets the user name and password.
func WithCredentials(user, password string) Option {
	return func(c *config) error { c.user, c.pass = user, password; return nil }
}

// WithTLS uses TLS with the given client configuration (use a tls:// or
// ssl:// broker URL).
func WithTLS(t *tls.Config) Option {
	return func(c *config) error {
		if t == nil {
			return fmt.Errorf("mqtt: WithTLS: nil config")
		}
		c.tls = t
		return nil
	}
}

// WithQoS sets the QoS of published messages: 0, 1 (default) or 2.
func WithQoS(q byte) Option {
	return func(c *config) error {
		if q > 2 {
			return fmt.Errorf("mqtt: WithQoS(%d): want 0, 1 or 2", q)
		}
		c.qos = q
		return nil
	}
}

// WithRetained publishes samples and events as retained messages, so a new
// subscriber gets the latest value of each topic at once.
func WithRetained(r bool) Option { return func(c *config) error { c.retained = r; return nil } }

// WithWill sets the last will the broker publishes when the connection is
// lost without a clean disconnect.
func WithWill(topic string, payload []byte, qos byte, retained bool) Option {
	return func(c *config) error {
		if err := validTopic(topic); err != nil {
			return fmt.Errorf("mqtt: WithWill: %w", err)
		}
		if qos > 2 {
			return fmt.Errorf("mqtt: WithWill: qos %d, want 0, 1 or 2", qos)
		}
		c.will = &will{topic: topic, payload: append([]byte(nil), payload...), qos: qos, retained: retained}
		return nil
	}
}

// WithBirth publishes payload to the will topic (with the will's QoS and
// retain flag) on every connection, so a retained will ("offline") is
// replaced by the birth message ("online") when the relay is back. It
// needs WithWill (New checks).
func WithBirth(payload []byte) Option {
	return func(c *config) error {
		c.birth = append([]byte{}, payload...)
		return nil
	}
}

// WithSite sets the value of {site} in topic templates (default "site").
func WithSite(site string) Option {
	return func(c *config) error {
		if err := validTopic(site); err != nil || site == "" {
			return fmt.Errorf("mqtt: WithSite(%q): want a non-empty topic level without + or #", site)
		}
		c.site = site
		return nil
	}
}

// WithTopic sets the topic template of samples (default
// "ems/{site}/{device}/{point}"). Placeholders: {site}; {id} the whole point
// id; {device} its part before the first dot and {point} the rest (for an
// id without a dot, {device} is empty and {point} is the id); {kind}
// ("sample"). A message with a Topic set is published there instead.
// Substituted values have '/', '+' and '#' replaced by '_'.
func WithTopic(tmpl string) Option {
	return func(c *config) error {
		if _, err := compileTopic(tmpl); err != nil {
			return fmt.Errorf("mqtt: WithTopic: %w", err)
		}
		c.topic = tmpl
		return nil
	}
}

// WithEventTopic sets the topic template of events (default
// "ems/{site}/events/{kind}"), with {kind} the event kind and the point
// placeholders of WithTopic for the event's point.
func WithEventTopic(tmpl string) Option {
	return func(c *config) error {
		if _, err := compileTopic(tmpl); err != nil {
			return fmt.Errorf("mqtt: WithEventTopic: %w", err)
		}
		c.eventTopic = tmpl
		return nil
	}
}

// WithHeartbeat publishes {"status":"online","time":...} to topic (a
// template; {site} is replaced) every interval while connected.
func WithHeartbeat(topic string, every time.Duration) Option {
	return func(c *config) error {
		if _, err := compileTopic(topic); err != nil {
			return fmt.Errorf("mqtt: WithHeartbeat: %w", err)
		}
		if every <= 0 {
			return fmt.Errorf("mqtt: WithHeartbeat: interval %v, want > 0", every)
		}
		c.heartbeatTopic, c.heartbeatEvery = topic, every
		return nil
	}
}

// WithKeepAlive sets the MQTT keep-alive (default 30s).
func WithKeepAlive(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("mqtt: WithKeepAlive(%v): want >= 1s", d)
		}
		c.keepAlive = d
		return nil
	}
}

// WithReconnect sets the longest wait between reconnection attempts
// (default 10s).
func WithReconnect(max time.Duration) Option {
	return func(c *config) error {
		if max <= 0 {
			return fmt.Errorf("mqtt: WithReconnect(%v): want > 0", max)
		}
		c.reconnectMax = max
		return nil
	}
}

// WithCleanSession sets the MQTT clean-session flag (default true).
func WithCleanSession(clean bool) Option {
	return func(c *config) error { c.cleanSession = clean; return nil }
}

// WithCommands takes write commands from the broker: the adapter
// subscribes to <base>/# (base default "ems/{site}/cmd", see
// WithCommandTopics), accepts payloads on <base>/write (see ParseCommand),
// executes those whose point matches one of the allow globs (path.Match
// syntax; at least one) and publishes the result to the reply topic.
func WithCommands(allow ...string) Option {
	return func(c *config) error {
		if len(allow) == 0 {
			return fmt.Errorf("mqtt: WithCommands: empty allow-list (name the writable points, e.g. \"pcs1.*\")")
		}
		for _, p := range allow {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("mqtt: WithCommands: pattern %q: %w", p, err)
			}
		}
		c.commands = true
		c.allow = append(c.allow, allow...)
		return nil
	}
}

// WithCommandTopics sets the command base topic (default "ems/{site}/cmd")
// and the reply topic (default "ems/{site}/reply"); both are templates
// with {site}. The reply topic must be outside base/#.
func WithCommandTopics(base, reply string) Option {
	return func(c *config) error {
		if _, err := compileTopic(base); err != nil {
			return fmt.Errorf("mqtt: WithCommandTopics: base: %w", err)
		}
		if _, err := compileTopic(reply); err != nil {
			return fmt.Errorf("mqtt: WithCommandTopics: reply: %w", err)
		}
		if reply == base || len(reply) > len(base) && reply[:len(base)+1] == base+"/" {
			return fmt.Errorf("mqtt: WithCommandTopics: reply topic %q is inside %q/#", reply, base)
		}
		c.commandBase, c.replyTopic = base, reply
		return nil
	}
}

// WithMaxCommandBytes bounds an inbound command payload (default 4096);
// larger ones are rejected as oversized.
func WithMaxCommandBytes(n int) Option {
	return func(c *config) error {
		if n < 16 {
			return fmt.Errorf("mqtt: WithMaxCommandBytes(%d): want >= 16", n)
		}
		c.maxCommand = n
		return nil
	}
}

// WithExecutor sets the Executor of inbound commands. Without it the
// adapter uses the one the pipeline hands to Receive.
func WithExecutor(e relay.Executor) Option {
	return func(c *config) error { c.executor = e; return nil }
}

// WithLogger logs connection changes and rejected commands. nil discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithConnectTimeout bounds one connection attempt, the first and every
// automatic reconnection (default 10s). An attempt that reaches a broker
// which accepts TCP but never answers CONNECT (one shutting down, say)
// waits this long before the next try.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("mqtt: WithConnectTimeout(%v): want > 0", d)
		}
		c.connectTimeout = d
		return nil
	}
}
