package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"flashotp/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var c bench.Config
	var rates string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: SIPp reference caller, the dialer alone, the whole path under wrk, ringing memory, verifies",
		Long: `Runs, against a SIPp callee on loopback (Debian package sip-tester), with wrk (Debian package wrk) as
the load generator of c and e:
  a.  SIPp as the caller at rising rates: the highest rate with at least 99.9% of calls completed
      (a rate whose caller does not finish is not sustained);
  b.  flashotp's dialer alone (calls injected in-process), the same way;
  c.  the whole path: the engine as its own process (flashotp serve, with a config the bench writes, the
      SIPp callee as its trunk, rate limits off), wrk POSTing /otp/send from --connections connections
      (2 threads) for --duration, each to another recipient: sends/s (202s per second), the engine
      process's CPU per completed send (/proc), and every call must end missed (the engine's reports);
  c1. the same engine at a fixed --rate from the bench's own client: HTTP send latency p50/p99;
  d.  many concurrent ringing calls (in-process): resident memory per call, then the drain on stop;
  e.  verifies: the engine as its own process, --verify-ids sends, then wrk POSTing /otp/verify with wrong
      codes over them for --verify: durable verifies/s and latency percentiles;
  p.  a trunk's max_cps as its callee counts arrivals;
  n.  the cluster: 1, 2 and 3 engines (n1, n2, n3; flashotp serve, each its own process) on one
      PostgreSQL server the bench starts on this machine (Debian package postgresql), one wrk per engine
      with --connections shared among them: sends/s summed, the worst p99, the engines' CPU per send.
Every part runs --repeat times, taking turns; the table shows each figure's median with each run's
beside it, and ends with the ratios of medians (b/a, c/a, c/b; n1, n2, n3 against c, the one engine on
bbolt, and n3 against a: run --only acn to have them). Part s (the soak) runs only when asked
for (--only s), once. docs/benchmarks.md explains the figures.`,
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
	cmd.Flags().IntVar(&c.Connections, "connections", 64, "wrk's connections in parts c and e")
	cmd.Flags().DurationVar(&c.Duration, "duration", 10*time.Second, "how long parts c and c1 run (whole seconds for wrk)")
	cmd.Flags().IntVar(&c.Whole, "rate", 1000, "the fixed rate of part c1, sends/s")
	cmd.Flags().IntVar(&c.Ringing, "ringing", 20000, "concurrent ringing calls of part d")
	cmd.Flags().DurationVar(&c.Verify, "verify", 10*time.Second, "how long part e's wrk runs (whole seconds)")
	cmd.Flags().IntVar(&c.VerifyIDs, "verify-ids", 8000, "the verifications part e's wrong codes cycle over (20 attempts each)")
	cmd.Flags().IntVar(&c.CPS, "cps", 1000, "the max_cps of part p (offered twice that)")
	cmd.Flags().IntVar(&c.Repeat, "repeat", 3, "how many times every part but s runs; the table shows medians")
	cmd.Flags().DurationVar(&c.Soak, "soak", 30*time.Minute, "how long part s runs (only with --only s)")
	cmd.Flags().IntVar(&c.SoakRate, "soak-rate", 200, "the sends/s of part s, each verified")
	cmd.Flags().StringVar(&c.Only, "only", "", "run only these parts, e.g. ac (c runs c and c1, n runs n1, n2 and n3)")
	cmd.Flags().StringVar(&c.Profile, "cpuprofile", "", "write a CPU profile of the bench process (parts b, d, p in-process; c1's client) to this file (go tool pprof)")
	cmd.Flags().StringVar(&c.EngineProfile, "engine-profile", "", "write a CPU profile of the engine process during part c's first run to this file (go tool pprof)")
	cmd.Flags().StringVar(&c.Engine, "engine", "", "c, c1, e and s: the flashotp binary to serve and measure (another build, side by side); default this one")
	cmd.Flags().StringVar(&c.Heap, "heapprofile", "", "part s: write a heap profile at each sample to PREFIX-<elapsed>.pprof")
	return cmd
}
