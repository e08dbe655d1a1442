// Command flashotp is the flash-call verification engine: `serve` runs it, `phone` is a simulated handset,
// `pools`, `apps` and `keys` manage a running engine, `store backup` copies its database, `bench` measures
// the machine, `version` prints the build.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/spf13/cobra"

	"flashotp/configs"
	"flashotp/sip"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// gcPercent is the garbage collector's target when GOGC is not set. Each call allocates ~100 KiB of
// short-lived garbage (HTTP, JSON, SIP messages, bbolt pages) over a live heap of a few tens of MiB; at Go's
// default of 100 the collector ran about a fifth of the CPU under load. 400 gave 1.3 times the sends per
// second at 2,500/s offered (docs/benchmarks.md), for a heap up to five times the live one.
const gcPercent = 400

// sipgo refuses to write a UDP message over UDPMTUSize-200 bytes (1300) and has no TCP fallback, so an ACK
// or BYE carrying a trunk's long Record-Route set would never leave and an answered callee would stay up.
// Such messages go out as fragmented datagrams instead. sipgo's settings are package globals: set here only.
func init() { sipgosip.UDPMTUSize = 65535 }

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "flashotp:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "flashotp",
		Short:         "Phone number verification by flash call over your own SIP trunk",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newPhoneCmd(), newPoolsCmd(), newAppsCmd(), newKeysCmd(), newOperatorsCmd(), newStoreCmd(), newBenchCmd(), newHealthcheckCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "flashotp", version) },
	})
	root.InitDefaultCompletionCmd() // cobra adds it at Execute; added now, it is a group checked below too
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command group (a command with subcommands and nothing to run of
// its own) fail on an argument that names none of its subcommands. Left to cobra, `flashotp pools lst`
// prints the group's help and exits 0, so a typo in a script passes unnoticed. A group given nothing still
// prints its help.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		rejectUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which it sets only on its own path
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return fmt.Errorf("%s; run '%s --help' for its commands", msg, cmd.CommandPath())
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine: HTTP API, SIP user agent, dialer, store",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(path)
			if err != nil {
				return err
			}
			log := newLogger(os.Stderr, cfg.Log)
			// sipgo logs through its default logger where no logger of the engine's is given (the built-in
			// phone, connection clean-ups): rate-limited too, so no input makes it write a line per packet.
			sipgosip.SetDefaultLogger(sip.BoundedLogger(log, nil))
			m := NewMain(cfg, log)
			m.PhoneOut = cmd.OutOrStdout()
			if cfg.Phone.Enabled {
				calls, err := openPhoneLog(cfg.Store.Path)
				if err != nil {
					return err
				}
				defer calls.Close()
				// The file first: once a line is on the terminal, it is in the file too.
				m.PhoneOut = io.MultiWriter(calls, m.PhoneOut)
			}
			return runUntilSignal(m.Run)
		},
	}
	cmd.Flags().StringVar(&path, "config", "configs/flashotp.yaml", "configuration file (YAML)")
	return cmd
}

// newLogger returns the engine's logger as the log section says: one line per event, text (key=value) or
// JSON, at level and above. configs validated both.
func newLogger(w io.Writer, c configs.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // "debug", "info", "warn" or "error", any case
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newPhoneCmd() *cobra.Command {
	var listen, mode string
	cmd := &cobra.Command{
		Use:   "phone",
		Short: "Run a simulated handset that prints each missed call",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			p, err := sip.ListenPhone(listen, mode, cmd.OutOrStdout(), log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "phone listening on udp %s, mode %s\n", p.Addr(), mode)
			return runUntilSignal(func(ctx context.Context) error {
				<-ctx.Done()
				return p.Close()
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5062", "UDP address to listen on")
	cmd.Flags().StringVar(&mode, "mode", sip.PhoneRing, "ring | answer | pickup (answers after 2 s of ringing) | busy | silent")
	return cmd
}

// runUntilSignal runs fn with a context cancelled by the first SIGINT or SIGTERM; a second signal exits at
// once.
func runUntilSignal(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer func() {
		signal.Stop(sigs)
		close(sigs) // ends the goroutine below
	}()
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "flashotp: second signal, exiting now")
			os.Exit(1)
		}
	}()
	err := fn(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// phoneLogName is the built-in phone's call log, beside the store: what the phone prints, for a shell to read
// the last caller ID from (the README's demo does).
const phoneLogName = "phone.log"

// openPhoneLog opens the built-in phone's call log for appending, creating it and the store's directory.
func openPhoneLog(storePath string) (*os.File, error) {
	dir := filepath.Dir(storePath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("phone call log: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, phoneLogName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("phone call log: %w", err)
	}
	return f, nil
}
