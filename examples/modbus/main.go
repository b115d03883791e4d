// Command modbus collects a PCS and a BMS over Modbus TCP and prints their
// live values. Without -addr it starts an in-process emulator of both
// devices (examples/modbus/emulator); with -addr it polls a real device
// that has the same register map. -set writes a setpoint or control.
//
//	go run ./examples/modbus -for 10s -set pcs.A.1=-250
//	go run ./examples/modbus -addr 192.0.2.10:502
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/voltage-ems/ems/collect/modbus"
	"github.com/voltage-ems/ems/examples/modbus/emulator"
	"github.com/voltage-ems/ems/model"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// latest keeps the last sample of every point.
type latest struct {
	mu sync.Mutex
	m  map[string]model.Sample
}

func (l *latest) Publish(_ context.Context, batch []model.Sample) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range batch {
		l.m[s.Point] = s
	}
	return nil
}

func (l *latest) print(w io.Writer, names map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.m))
	for id := range l.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(w, "--- %s\n", time.Now().Format(time.TimeOnly))
	for _, id := range ids {
		s := l.m[id]
		fmt.Fprintf(w, "%-8s %-24s %12.3f  %s\n", id, names[id], s.Value, s.Quality)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("modbus", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "", "host:port of a real device (default: start the emulator)")
	dir := fs.String("dir", defaultDir(), "folder holding the pcs/ and bms/ channel folders")
	set := fs.String("set", "", "write a point after the first values, e.g. pcs.A.1=-250 (kW, negative charges)")
	dur := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	every := fs.Duration("print", time.Second, "print interval")
	verbose := fs.Bool("v", false, "log link and request problems")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(out, nil))
	}
	if *addr == "" {
		emu, err := emulator.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer emu.Close()
		*addr = emu.Addr()
		fmt.Fprintf(out, "emulator (PCS unit %d, BMS unit %d) on %s\n", emulator.PCSUnit, emulator.BMSUnit, *addr)
	}
	sink := &latest{m: map[string]model.Sample{}}
	names := map[string]string{}
	collectors := map[string]*modbus.Collector{}
	for _, ch := range []string{"pcs", "bms"} {
		cfg, err := modbus.LoadDir(filepath.Join(*dir, ch))
		if err != nil {
			return err
		}
		cfg.Address = *addr
		for _, p := range cfg.Points {
			names[model.ChannelPointID(cfg.Channel, p.Kind, p.ID)] = p.Name
		}
		c, err := modbus.New(cfg, modbus.WithLogger(log), modbus.WithEvents(func(e model.Event) {
			fmt.Fprintf(out, "event: %s %s: %s\n", e.Kind, e.Point, e.Message)
		}))
		if err != nil {
			return err
		}
		collectors[cfg.Channel] = c
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range collectors {
		g.Go(func() error { return c.Run(gctx, sink) })
	}
	g.Go(func() error {
		t := time.NewTicker(*every)
		defer t.Stop()
		wrote := *set == ""
		for {
			select {
			case <-gctx.Done():
				sink.print(out, names)
				return nil
			case <-t.C:
				sink.print(out, names)
				if !wrote {
					wrote = true
					if err := write(gctx, collectors, *set); err != nil {
						fmt.Fprintf(out, "write %s: %v\n", *set, err)
					}
				}
			}
		}
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// write parses "pcs.A.1=-250" and sends it to the point's channel.
func write(ctx context.Context, cs map[string]*modbus.Collector, set string) error {
	id, val, ok := strings.Cut(set, "=")
	if !ok {
		return fmt.Errorf("want point=value, got %q", set)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return err
	}
	ch, _, _, err := model.ParseChannelPointID(id)
	if err != nil {
		return err
	}
	c := cs[ch]
	if c == nil {
		return fmt.Errorf("no channel %q (have pcs, bms)", ch)
	}
	return c.Write(ctx, model.Command{Point: id, Value: v, Source: "cli"})
}

// defaultDir finds the example folder from the repository root or from
// inside it.
func defaultDir() string {
	for _, d := range []string{".", filepath.Join("examples", "modbus")} {
		if _, err := os.Stat(filepath.Join(d, "pcs", "channel.yaml")); err == nil {
			return d
		}
	}
	return "."
}
