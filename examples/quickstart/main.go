// Command quickstart runs a simulated energy-storage site on the EMS's
// embedded defaults: a 1 MW / 2 MWh battery (PCS and BMS), an 800 kWp PV
// array, a factory load and a grid meter. It prints a status line every few
// seconds and stops cleanly on Ctrl-C or after -duration.
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -duration 30s
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/voltage-ems/ems"
	"github.com/voltage-ems/ems/alarm"
	"github.com/voltage-ems/ems/collect"
	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/mqtt"
	"github.com/voltage-ems/ems/relay/mqtt/broker"
	"github.com/voltage-ems/ems/rule"
)

//go:embed site
var site embed.FS

func main() {
	duration := flag.Duration("duration", 0, "stop after this long (0 = run until Ctrl-C)")
	every := flag.Duration("every", 5*time.Second, "status line interval")
	dataDir := flag.String("data", "", "keep history and alarm state in this directory (default: in memory)")
	mqttAddr := flag.String("mqtt", "127.0.0.1:0", "address of the in-process MQTT broker (the default picks a free port; \"\" for no MQTT uplink)")
	httpAddr := flag.String("http", "127.0.0.1:8080", "address of the HTTP API (\"\" for none)")
	verbose := flag.Bool("v", false, "log at debug level")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, *duration, *every, *dataDir, *mqttAddr, *httpAddr, *verbose)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, duration, every time.Duration, dataDir, mqttAddr, httpAddr string, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	simYAML, err := site.ReadFile("site/sim.yaml")
	if err != nil {
		return err
	}
	simCfg, err := collect.ParseSimConfig(simYAML, "site/sim.yaml")
	if err != nil {
		return err
	}
	sim, err := collect.NewSimulator(*simCfg)
	if err != nil {
		return err
	}
	modelYAML, err := site.ReadFile("site/model.yaml")
	if err != nil {
		return err
	}
	siteModel, err := model.ParseModel(modelYAML, "site/model.yaml")
	if err != nil {
		return err
	}

	alarmsYAML, err := site.ReadFile("site/alarms.yaml")
	if err != nil {
		return err
	}
	rulesYAML, err := site.ReadFile("site/rules.yaml")
	if err != nil {
		return err
	}

	opts := []ems.Option{
		ems.WithCollector("site", sim),
		ems.WithModel(siteModel),
		ems.WithLogger(logger),
		ems.WithAlarmOptions(alarm.WithDefinitionsYAML(bytes.NewReader(alarmsYAML), "site/alarms.yaml")),
		ems.WithRuleOptions(rule.WithRulesYAML(rulesYAML, "site/rules.yaml")),
	}
	if dataDir != "" {
		opts = append(opts, ems.WithDataDir(dataDir))
	}
	// An MQTT uplink to an in-process broker: samples and events go out on
	// ems/demo/..., setpoints for the PCS may come in on ems/demo/cmd/write.
	var uplink *relay.Pipeline
	var brokerURL string
	if mqttAddr != "" {
		b, err := broker.Start(mqttAddr)
		if err != nil {
			return fmt.Errorf("mqtt broker: %w (use -mqtt 127.0.0.1:0 for a free port, or -mqtt '' for none)", err)
		}
		defer b.Close()
		up, err := mqtt.New(b.URL(), mqtt.WithSite("demo"), mqtt.WithClientID("ems-quickstart"), mqtt.WithCommands("pcs1.power_setpoint"))
		if err != nil {
			return err
		}
		if uplink, err = relay.New(up, relay.WithName("mqtt"), relay.WithLogger(logger)); err != nil {
			return err
		}
		brokerURL = b.URL()
		opts = append(opts, ems.WithRelay("mqtt", uplink))
	}
	// The HTTP API: anyone on this machine may read; commands and alarm
	// operations need the operator key, rule and definition changes the
	// admin key. The keys are made up at start and printed below.
	var opKey, adminKey string
	var gw []gateway.Option
	if httpAddr != "" {
		opKey, adminKey = randomKey(), randomKey()
		gw = []gateway.Option{
			gateway.WithAnonymous(gateway.RoleViewer),
			gateway.WithAPIKey("operator", opKey, gateway.RoleOperator),
			gateway.WithAPIKey("admin", adminKey, gateway.RoleAdmin),
		}
		opts = append(opts, ems.WithGateway(httpAddr, gw...))
	}
	e, err := ems.New(opts...)
	if httpAddr != "" && errors.Is(err, syscall.EADDRINUSE) {
		fmt.Fprintf(out, "%s is in use; serving the API on a free port instead\n", httpAddr)
		opts[len(opts)-1] = ems.WithGateway("127.0.0.1:0", gw...)
		e, err = ems.New(opts...)
	}
	if err != nil {
		return err
	}

	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	events, stopEvents := e.SubscribeEvents(256)
	defer stopEvents()
	// Run gets its own context so that history can still be queried when
	// the program is asked to stop.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()

	fmt.Fprintln(out, "VoltageEMS quickstart: 1 MW / 2 MWh battery, 800 kWp PV, factory load, grid meter (simulated, 60x speed)")
	if uplink != nil {
		fmt.Fprintf(out, "MQTT broker %s: subscribe to ems/demo/#; write setpoints with {\"point\":\"pcs1.power_setpoint\",\"value\":-200} on ems/demo/cmd/write\n", brokerURL)
	}
	if addr := e.GatewayAddr(); addr != "" {
		fmt.Fprintf(out, "HTTP API http://%s/api/v1 (docs: /api/v1/docs); operator key %s, admin key %s\n", addr, opKey, adminKey)
		fmt.Fprintf(out, "  curl http://%s/api/v1/points/bat1.soc\n", addr)
		fmt.Fprintf(out, "  curl -H 'X-API-Key: %s' -H 'Content-Type: application/json' -d '{\"point\":\"pcs1.power_setpoint\",\"value\":-200}' http://%s/api/v1/commands\n", opKey, addr)
	}
	fmt.Fprintln(out, "Ctrl-C to stop.")
	// The operator dispatches the battery: discharge 300 kW to cover the load.
	if err := e.Execute(ctx, model.Command{Point: "pcs1.power_setpoint", Value: 300, Source: "quickstart"}); err != nil {
		return fmt.Errorf("initial dispatch: %w", err)
	}

	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	var lastCount uint64
	lastAt := start
	for {
		select {
		case <-ctx.Done():
			printHistory(out, e, start)
			stopRun()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Fprintf(out, "stopped after %s\n", time.Since(start).Round(time.Second))
			return nil
		case err := <-done:
			return fmt.Errorf("ems stopped by itself: %v", err)
		case ev, ok := <-events:
			if ok {
				printEvent(out, ev, start)
			}
		case now := <-tick.C:
			var count uint64
			for _, st := range e.QueueStats() {
				if st.Name == ems.ConsumerHistory {
					count = st.Processed
				}
			}
			rate := float64(count-lastCount) / now.Sub(lastAt).Seconds()
			lastCount, lastAt = count, now
			line := statusLine(e, now.Sub(start), rate)
			if uplink != nil {
				line += fmt.Sprintf("  mqtt %d sent", uplink.Stats().Sent)
			}
			fmt.Fprintln(out, line)
		}
	}
}

func statusLine(e *ems.EMS, up time.Duration, rate float64) string {
	v := func(p string) float64 {
		s, _ := e.Snapshot().Get(p)
		return s.Value
	}
	line := fmt.Sprintf("%6s  %5.0f samples/s  SOC %5.1f%%  PCS %7.1f kW  PV %6.1f kW  load %6.1f kW  grid %7.1f kW  %6.3f Hz",
		up.Round(time.Second), rate, v("bat1.soc"), v("pcs1.active_power"), v("pv1.active_power"),
		v("load1.active_power"), v("grid.active_power"), v("grid.frequency"))
	if a := e.Alarms(); a != nil {
		line += fmt.Sprintf("  alarms %d", a.KPIs().Active)
	}
	return line
}

// printEvent prints the events an operator would see: alarms raised and
// cleared, rule events and failed commands.
func printEvent(out io.Writer, ev model.Event, start time.Time) {
	switch ev.Kind {
	case model.EventAlarmRaised, model.EventAlarmCleared, model.EventAlarmEscalated, model.EventAlarmFlood, model.EventCommandFailed, model.EventRuleError:
	case model.EventRuleFired:
		if ev.Message == "" {
			return
		}
	default:
		return
	}
	fmt.Fprintf(out, "%6s  %-15s %-8s %s\n", time.Since(start).Round(time.Second), ev.Kind, ev.Severity, ev.Message)
}

// printHistory prints the battery's SOC from the history store: one
// average per 10 s of wall time (10 simulated minutes).
func printHistory(out io.Writer, e *ems.EMS, start time.Time) {
	h := e.History()
	if h == nil {
		return
	}
	now := time.Now()
	series, err := h.Query(context.Background(), history.Query{Points: []string{"bat1.soc"}, From: start.Truncate(10 * time.Second), To: now, Step: 10 * time.Second, Agg: history.AggAvg})
	if err != nil {
		fmt.Fprintln(out, "history query:", err)
		return
	}
	for _, s := range series {
		fmt.Fprintf(out, "history of %s (avg per 10 s):", s.Point)
		for _, p := range s.Points {
			fmt.Fprintf(out, " %.1f", p.Value)
		}
		fmt.Fprintln(out)
	}
}

// randomKey returns a fresh 128-bit API key in hex.
func randomKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
