package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running in-process MQTT 3.1.1/5 broker that accepts every
// client (no authentication): bind it to loopback unless that is what you
// want.
type Broker struct {
	srv *mochi.Server
	tcp *listeners.TCP
	tls bool
}

// Option configures Start.
type Option func(*config)

type config struct {
	tls    *tls.Config
	logger *slog.Logger
}

// WithTLS serves MQTT over TLS with the given server configuration.
func WithTLS(c *tls.Config) Option { return func(cfg *config) { cfg.tls = c } }

// WithLogger logs the broker's messages. nil (the default) discards them.
func WithLogger(l *slog.Logger) Option { return func(cfg *config) { cfg.logger = l } }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves.
func Start(addr string, opts ...Option) (*Broker, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: log})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr, TLSConfig: cfg.tls})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, errors.Join(fmt.Errorf("broker: %w", err), srv.Close())
	}
	return &Broker{srv: srv, tcp: tcp, tls: cfg.tls != nil}, nil
}

// Addr returns the host:port the broker listens on.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL returns the broker URL for clients: tcp://host:port or tls://host:port.
func (b *Broker) URL() string {
	if b.tls {
		return "tls://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Server returns the mochi server, for inline subscriptions and publishes
// (Server().Subscribe, Server().Publish) and client management.
func (b *Broker) Server() *mochi.Server { return b.srv }

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// allowAll lets every client connect, publish and subscribe. (mochi's own
// auth.AllowHook pulls in a YAML module this module does not otherwise need.)
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }
