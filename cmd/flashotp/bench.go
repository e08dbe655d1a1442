package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"flashotp/configs"
	"flashotp/internal/bench"
)

func newBenchCmd() *cobra.Command {
	c := bench.Config{Start: startEngine}
	var rates string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: SIPp reference caller, the dialer alone, the whole path, ringing memory, verifies",
		Long: `Runs, against a SIPp callee on loopback (Debian package sip-tester):
  a. SIPp as the caller at rising rates: the highest rate with at least 99.9% of calls completed;
  b. flashotp's dialer alone (calls injected in-process), the same way;
  c. the whole path: POST /otp/send over HTTP at a fixed rate, each call ending missed;
  d. many concurrent ringing calls: resident memory per call, then the drain on stop;
  e. POST /otp/verify under load: durable verifies/s and latency percentiles;
  p. a trunk's max_cps as its callee counts arrivals.
and prints one table. docs/benchmarks.md explains the figures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, r := range strings.Split(rates, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(r))
				if err != nil || n < 1 {
					return fmt.Errorf("--rates: want numbers, got %q", r)
				}
				c.Rates = append(c.Rates, n)
			}
			return bench.Run(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&rates, "rates", "1000,2000,3000,4000,5000,6000,8000,10000,12000", "rising rates of parts a and b, calls/s")
	cmd.Flags().DurationVar(&c.Step, "step", 5*time.Second, "how long each rate of parts a and b runs")
	cmd.Flags().IntVar(&c.Whole, "rate", 3000, "the rate of part c, sends/s")
	cmd.Flags().DurationVar(&c.Duration, "duration", 60*time.Second, "how long part c runs")
	cmd.Flags().IntVar(&c.Ringing, "ringing", 20000, "concurrent ringing calls of part d")
	cmd.Flags().DurationVar(&c.Verify, "verify", 10*time.Second, "how long part e runs")
	cmd.Flags().IntVar(&c.Clients, "clients", 48, "concurrent clients of part e")
	cmd.Flags().IntVar(&c.CPS, "cps", 1000, "the max_cps of part p (offered twice that)")
	cmd.Flags().DurationVar(&c.Soak, "soak", 30*time.Minute, "how long part s runs (only with --only s)")
	cmd.Flags().IntVar(&c.SoakRate, "soak-rate", 200, "the sends/s of part s, each verified")
	cmd.Flags().StringVar(&c.Only, "only", "", "run only these parts, e.g. ab")
	cmd.Flags().StringVar(&c.Profile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	cmd.Flags().StringVar(&c.Heap, "heapprofile", "", "part s: write a heap profile at each sample to PREFIX-<elapsed>.pprof")
	return cmd
}

// startEngine runs the engine in-process for the bench until ctx ends, logging nothing.
func startEngine(ctx context.Context, cfg configs.Config) (bench.Engine, error) {
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		stop()
		return bench.Engine{}, err
	}
	return bench.Engine{HTTPAddr: m.HTTPAddr, Service: m.svc, Stop: func() { stop(); <-done }}, nil
}
