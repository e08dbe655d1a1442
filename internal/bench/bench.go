// Package bench is `flashotp bench`: it measures this machine against a SIPp callee on loopback (the SIPp
// reference caller, the dialer alone, the whole path with the engine as its own process under wrk, ringing
// memory and drain, verifies, pacing, a soak), each part repeated, and prints one table of medians with
// each run's figure and the ratios to the reference. docs/benchmarks.md explains the figures.
package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"flashotp/call"
	"flashotp/dialer"
	"flashotp/internal/pgserver"
	"flashotp/sip"
)

// Config is what a bench runs.
type Config struct {
	Rates         []int         // (a) and (b): rising rates, calls/s
	Step          time.Duration // (a) and (b): how long each rate runs
	Connections   int           // (c) and (e): wrk's connections
	Duration      time.Duration // (c) and (c1): how long
	Whole         int           // (c1): the fixed rate of POST /otp/send
	Ringing       int           // (d): concurrent ringing calls
	Verify        time.Duration // (e): how long verifies run
	VerifyIDs     int           // (e): the verifications the wrong codes cycle over
	CPS           int           // (p): the trunk's max_cps
	Repeat        int           // every part but s runs this many times; the table shows medians
	Soak          time.Duration // (s): how long the soak runs
	SoakRate      int           // (s): its sends/s
	Only          string        // letters of the parts to run (c: c and c1); empty: all but s
	Profile       string        // CPU profile file of the bench process; empty: none
	EngineProfile string        // (c): CPU profile file of the engine process during the first run; empty: none
	Heap          string        // (s): heap profile files, this prefix and the minute; empty: none
	Engine        string        // (c, c1, e, s): the flashotp binary that serves; empty: this one

	dir string // the run's temporary files
}

// parts are the letters --only takes.
const parts = "abcdenps"

// benchRow is one part's figures from one run, or (printBench) the line of the table.
type benchRow struct {
	part, what   string
	rate         float64 // sustained calls/s (or req/s)
	completion   float64 // fraction
	p50, p99     time.Duration
	p50b, p99b   time.Duration // second latency pair (180 to CANCEL)
	cpuPerCall   time.Duration
	bytesPerCall float64
	note         string
}

// Run runs the parts c asks for, each c.Repeat times (the soak once), and prints their table to out, its
// progress to progress.
func Run(ctx context.Context, c Config, out, progress io.Writer) error {
	for _, p := range c.Only {
		if !strings.ContainsRune(parts, p) {
			return fmt.Errorf("--only: no part %q (the parts: %s)", p, parts)
		}
	}
	run := func(part string) bool { return c.Only == "" && part != "s" || strings.Contains(c.Only, part) }
	if c.Repeat < 1 {
		return errors.New("--repeat: want at least 1")
	}
	if run("c") || run("e") {
		if c.Connections < wrkThreads {
			return fmt.Errorf("--connections: want at least %d (one per wrk thread)", wrkThreads)
		}
		if _, err := exec.LookPath("wrk"); err != nil {
			return errNoWrk
		}
	}
	dir, err := os.MkdirTemp("", "flashotp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.dir = dir
	if err := writeScenarios(c.dir); err != nil {
		return err
	}
	if c.Profile != "" {
		f, err := os.Create(c.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	callee, err := startCallee(c.dir, filepath.Join(c.dir, "callee.csv"))
	if err != nil {
		return err
	}
	defer callee.Stop()
	logf := func(format string, a ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", a...) }
	// sipgo logs through the default logger; under load its retransmission notices would drown the table.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	type part struct {
		name string
		run  func(run int) (benchRow, error)
	}
	all := []part{
		{"a", func(int) (benchRow, error) { return benchReference(c, callee.Addr, logf) }},
		{"b", func(int) (benchRow, error) { return benchDialer(ctx, c, callee, logf) }},
		{"d", func(int) (benchRow, error) { return benchRinging(ctx, c, callee.Addr, logf) }},
		{"p", func(run int) (benchRow, error) { return benchPacing(ctx, c, run, logf) }},
		{"c", func(run int) (benchRow, error) {
			profile := ""
			if run == 0 {
				profile = c.EngineProfile
			}
			return benchWrkSends(c, callee, run, profile, logf)
		}},
		{"c1", func(run int) (benchRow, error) { return benchPacedSends(c, callee, run, logf) }},
		{"e", func(run int) (benchRow, error) { return benchWrkVerifies(c, callee, run, logf) }},
	}
	if run("n") {
		pg, err := pgserver.Start()
		if err != nil {
			return fmt.Errorf("n: %w", err)
		}
		defer pg.Remove()
		defer pg.Stop()
		for engines := 1; engines <= 3; engines++ {
			all = append(all, part{fmt.Sprintf("n%d", engines), func(run int) (benchRow, error) {
				return benchCluster(c, pg, callee, engines, run, logf)
			}})
		}
	}
	// The runs take turns (a b … e, then again), so that a slower minute of the machine falls on every part
	// alike and the ratios of medians compare like with like.
	runs := map[string][]benchRow{}
	for i := range c.Repeat {
		for _, p := range all {
			if !run(p.name[:1]) {
				continue
			}
			logf("%s: run %d of %d", p.name, i+1, c.Repeat)
			row, err := p.run(i)
			if err != nil {
				return fmt.Errorf("%s (run %d): %w", p.name, i+1, err)
			}
			runs[p.name] = append(runs[p.name], row)
		}
	}
	if run("s") {
		row, err := benchSoak(ctx, c, callee, logf)
		if err != nil {
			return fmt.Errorf("s: %w", err)
		}
		runs["s"] = []benchRow{row}
		all = append(all, part{name: "s"})
	}
	var table []summary
	for _, p := range all {
		if rows := runs[p.name]; len(rows) > 0 {
			table = append(table, summarize(rows))
		}
	}
	printBench(out, table)
	return nil
}

// summary is a part's line of the table: the median of each figure over its runs, and each run's.
type summary struct {
	benchRow            // the medians; note: the median run's
	runs     []benchRow // in the order they ran
}

// summarize takes the median of each figure of a part's runs, the worst completion, and the note of the
// run whose headline figure (the rate, or the memory per call) is the median.
func summarize(rows []benchRow) summary {
	s := summary{runs: rows}
	fig := func(f func(benchRow) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = f(r)
		}
		return median(v)
	}
	dur := func(f func(benchRow) time.Duration) time.Duration {
		return time.Duration(fig(func(r benchRow) float64 { return float64(f(r)) }))
	}
	byHeadline := slices.Clone(rows)
	slices.SortStableFunc(byHeadline, func(x, y benchRow) int {
		return cmp.Compare(x.rate+x.bytesPerCall, y.rate+y.bytesPerCall)
	})
	s.benchRow = byHeadline[len(byHeadline)/2]
	s.rate = fig(func(r benchRow) float64 { return r.rate })
	s.completion = slices.MinFunc(rows, func(x, y benchRow) int { return cmp.Compare(x.completion, y.completion) }).completion
	s.p50, s.p99 = dur(func(r benchRow) time.Duration { return r.p50 }), dur(func(r benchRow) time.Duration { return r.p99 })
	s.p50b, s.p99b = dur(func(r benchRow) time.Duration { return r.p50b }), dur(func(r benchRow) time.Duration { return r.p99b })
	s.cpuPerCall = dur(func(r benchRow) time.Duration { return r.cpuPerCall })
	s.bytesPerCall = fig(func(r benchRow) float64 { return r.bytesPerCall })
	return s
}

// median is the middle of v, or the mean of the two middle values when v has an even count.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// grouped writes n rounded, with thousands separators: 11765.4 → "11,765".
func grouped(n float64) string { return english.Sprintf("%.0f", n) }

var english = message.NewPrinter(language.English)

// withRuns is the median as text, followed by each run's figure in parentheses when there was more than one.
func withRuns(s summary, text func(benchRow) string) string {
	out := text(s.benchRow)
	if len(s.runs) < 2 {
		return out
	}
	each := make([]string, len(s.runs))
	for i, r := range s.runs {
		each[i] = text(r)
	}
	return out + " (" + strings.Join(each, " / ") + ")"
}

// ratioLines are the ratios of medians the table ends with: numerator part, denominator part, what.
var ratioLines = []struct{ num, den, what string }{
	{"b", "a", "dialer alone / SIPp reference"},
	{"c", "a", "whole path / SIPp reference"},
	{"c", "b", "whole path / dialer alone"},
	{"n1", "c", "1 engine on PostgreSQL / 1 engine on bbolt"},
	{"n2", "c", "2 engines on PostgreSQL / 1 engine on bbolt"},
	{"n3", "c", "3 engines on PostgreSQL / 1 engine on bbolt"},
	{"n3", "a", "3 engines on PostgreSQL / SIPp reference"},
}

func printBench(out io.Writer, table []summary) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "part\twhat\tsustained/s, median (each run)\tcompleted (worst run)\tp50 / p99 (each run's p99)\t180→CANCEL p50 / p99\tCPU per call\tmemory per call\tnote (median run)")
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	rates := map[string]float64{}
	for _, s := range table {
		rates[s.part] = s.rate
		lat, lat2, cpu, mem, rate := "", "", "", "", ""
		if s.p99 > 0 {
			lat = ms(s.p50) + " / " + withRuns(s, func(r benchRow) string { return ms(r.p99) }) + " ms"
		}
		if s.p99b > 0 {
			lat2 = ms(s.p50b) + " / " + ms(s.p99b) + " ms"
		}
		if s.cpuPerCall > 0 {
			cpu = withRuns(s, func(r benchRow) string { return strconv.FormatFloat(float64(r.cpuPerCall)/1e6, 'f', 3, 64) }) + " ms"
		}
		if s.bytesPerCall > 0 {
			mem = withRuns(s, func(r benchRow) string { return strconv.FormatFloat(r.bytesPerCall/1024, 'f', 1, 64) }) + " KiB"
		}
		if s.rate > 0 {
			rate = withRuns(s, func(r benchRow) string { return grouped(r.rate) })
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f%%\t%s\t%s\t%s\t%s\t%s\n", s.part, s.what, rate, 100*s.completion, lat, lat2, cpu, mem, s.note)
	}
	w.Flush()
	for _, r := range ratioLines {
		if rates[r.num] > 0 && rates[r.den] > 0 {
			fmt.Fprintf(out, "ratio of medians %s / %s (%s): %.2f\n", r.num, r.den, r.what, rates[r.num]/rates[r.den])
		}
	}
}

// benchReference is part a: SIPp as the caller at rising rates. A rate at which the caller does not
// complete its calls, or does not finish within its bound, is not sustained: the rise stops there and the
// best rate so far stands.
func benchReference(c Config, callee string, logf func(string, ...any)) (benchRow, error) {
	best := benchRow{part: "a", what: "SIPp caller → SIPp callee (reference)"}
	for _, r := range c.Rates {
		calls := int(float64(r) * c.Step.Seconds())
		st, err := runReferenceCaller(c.dir, callee, r, calls, c.Step)
		if errors.Is(err, errCallerStuck) {
			logf("a: rate %d: %v: not sustained", r, err)
			break
		}
		if err != nil {
			return best, err
		}
		completion := float64(st.Successful) / float64(max(st.Created, 1))
		logf("a: rate %d: %d created, %d completed (%.2f%%), %.0f calls/s", r, st.Created, st.Successful, 100*completion, st.Rate)
		if completion < 0.999 || st.Created < calls || st.Rate < 0.95*float64(r) {
			break
		}
		best.rate, best.completion = st.Rate, completion
	}
	return best, nil
}

// benchReporter counts a dialer's outcomes and keeps their timings.
type benchReporter struct {
	ringing atomic.Int64
	ended   atomic.Int64
	missed  atomic.Int64
	mu      sync.Mutex
	cancel  []time.Duration // 180 to CANCEL
	other   map[string]int  // outcomes other than missed: "state/reason" → calls
}

func (r *benchReporter) CallProgress(_, _ string, state call.State, _ time.Time) {
	if state == call.StateRinging {
		r.ringing.Add(1)
	}
}

func (r *benchReporter) CallEnded(_, _, _ string, res call.Result) {
	if res.State == call.StateMissed {
		r.missed.Add(1)
	} else {
		r.mu.Lock()
		if r.other == nil {
			r.other = map[string]int{}
		}
		r.other[string(res.State)+"/"+string(res.Reason)]++
		r.mu.Unlock()
	}
	if !res.CancelledAt.IsZero() && !res.RingingAt.IsZero() {
		r.mu.Lock()
		r.cancel = append(r.cancel, res.CancelledAt.Sub(res.RingingAt))
		r.mu.Unlock()
	}
	r.ended.Add(1)
}

var _ dialer.Reporter = (*benchReporter)(nil)

// benchDialerOn starts a UA and a dialer calling callee, reporting to rep.
func benchDialerOn(callee string, ringTime time.Duration, rep dialer.Reporter, maxCPS int) (*sip.UA, *dialer.Dialer, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Logger: log, Peers: []string{callee}})
	if err != nil {
		return nil, nil, err
	}
	d := dialer.New(dialer.Config{
		Trunks:   []dialer.Trunk{{Name: "sipp", Address: callee, Transport: "udp", DownAfter: 1 << 30, MaxCPS: maxCPS}},
		Settings: dialer.Settings{RingTime: ringTime, DialTimeout: 10 * time.Second, CancelGuard: 4 * time.Second, QueueSize: 1 << 20},
	}, ua, rep, log)
	d.Start()
	return ua, d, nil
}

// inject submits calls at rate for d, spread over each millisecond, and returns how many it submitted.
func inject(ctx context.Context, dl *dialer.Dialer, rate int, d time.Duration, seq *int64) int {
	start := time.Now()
	n := 0
	total := int(float64(rate) * d.Seconds())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for n < total && ctx.Err() == nil {
		<-tick.C
		due := min(total, int(float64(rate)*time.Since(start).Seconds()))
		for ; n < due; n++ {
			i := atomic.AddInt64(seq, 1)
			_ = dl.Submit(dialer.Request{App: "bench", ID: "b" + strconv.FormatInt(i, 10),
				To: fmt.Sprintf("+1415%07d", i%10_000_000), CLI: fmt.Sprintf("+44207946%04d", i%10_000)})
		}
	}
	return n
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitUntil(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

// benchDialer is part b: the dialer alone, in-process, at rising rates.
func benchDialer(ctx context.Context, c Config, callee *callee, logf func(string, ...any)) (benchRow, error) {
	best := benchRow{part: "b", what: "flashotp dialer → SIPp callee"}
	var seq int64
	first := ""
	for _, r := range c.Rates {
		rep := &benchReporter{}
		ua, d, err := benchDialerOn(callee.Addr, 0, rep, 0)
		if err != nil {
			return best, err
		}
		before, err := callee.arrivals()
		if err != nil {
			return best, err
		}
		cpu0, t0 := cpuTime(), time.Now()
		n := inject(ctx, d, r, c.Step, &seq)
		elapsed := time.Since(t0)
		waitUntil(20*time.Second, func() bool { return rep.ended.Load() >= int64(n) })
		cpu := cpuTime() - cpu0
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = d.Stop(stopCtx)
		cancel()
		_ = ua.Close()
		completion := float64(rep.missed.Load()) / float64(max(n, 1))
		after, err := callee.arrivals()
		if err != nil {
			return best, err
		}
		if after-before != n {
			// A call placed twice, or never: the callee's count is the judge.
			logf("b: rate %d: the callee saw %d INVITEs for %d calls", r, after-before, n)
			completion = min(completion, float64(min(after-before, n))/float64(max(n, 1)))
		}
		p50, p99 := percentiles(rep.cancel)
		logf("b: rate %d: %d calls, %d missed (%.2f%%), others %v, 180→CANCEL p50 %s p99 %s, %.3f ms CPU per call",
			r, n, rep.missed.Load(), 100*completion, rep.other, p50, p99, float64(cpu)/1e6/float64(max(n, 1)))
		if completion < 0.999 || float64(n)/elapsed.Seconds() < 0.95*float64(r) {
			break
		}
		best.rate, best.completion = float64(n)/elapsed.Seconds(), completion
		best.p50b, best.p99b, best.cpuPerCall = p50, p99, cpu/time.Duration(max(n, 1))
		best.note = fmt.Sprintf("%d calls at the best rate, the callee saw %d", n, after-before)
		if r == c.Rates[0] {
			first = fmt.Sprintf("; at %d/s: 180→CANCEL p50 %.3f p99 %.3f ms", r, float64(p50)/1e6, float64(p99)/1e6)
		}
	}
	best.note += first
	return best, nil
}

// benchPacing is part p: a trunk with max_cps, offered twice that, against a callee of its own that
// counts arrivals each second: the rate SIPp sees must be within 5% of max_cps.
func benchPacing(ctx context.Context, c Config, run int, logf func(string, ...any)) (benchRow, error) {
	cps := c.CPS
	row := benchRow{part: "p", what: fmt.Sprintf("max_cps %d, offered %d/s", cps, 2*cps)}
	callee, err := startCallee(c.dir, filepath.Join(c.dir, fmt.Sprintf("pacing-%d.csv", run)))
	if err != nil {
		return row, err
	}
	defer callee.Stop()
	rep := &benchReporter{}
	ua, d, err := benchDialerOn(callee.Addr, 0, rep, cps)
	if err != nil {
		return row, err
	}
	var seq int64
	n := inject(ctx, d, 2*cps, max(c.Step, 3*time.Second), &seq)
	waitUntil(60*time.Second, func() bool { return rep.ended.Load() >= int64(n) })
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = d.Stop(stopCtx)
	cancel()
	_ = ua.Close()
	time.Sleep(2 * time.Second) // the callee's last dump
	callee.Stop()
	arrived, total, err := arrivalRate(callee.stats)
	if err != nil {
		return row, err
	}
	row.rate, row.completion = arrived, float64(rep.missed.Load())/float64(max(n, 1))
	row.note = fmt.Sprintf("SIPp saw %.0f calls/s (%+.1f%% of max_cps), %d calls in all", arrived, 100*(arrived-float64(cps))/float64(cps), total)
	logf("p: %s", row.note)
	return row, nil
}

// rss is the process's resident memory in bytes.
func rss() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// benchRinging is part d: many calls ringing at once (ring_time long), resident memory per call, then the
// drain: Stop CANCELs them all.
func benchRinging(ctx context.Context, c Config, callee string, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "d", what: fmt.Sprintf("%d calls ringing at once", c.Ringing)}
	rep := &benchReporter{}
	ua, d, err := benchDialerOn(callee, 10*time.Minute, rep, 0)
	if err != nil {
		return row, err
	}
	defer ua.Close()
	var seq int64
	debug.FreeOSMemory()
	base := rss()
	rate := 4000
	inject(ctx, d, rate, time.Duration(float64(c.Ringing)/float64(rate)*float64(time.Second)), &seq)
	if !waitUntil(60*time.Second, func() bool { return rep.ringing.Load() >= int64(c.Ringing) }) {
		return row, fmt.Errorf("only %d of %d calls ringing", rep.ringing.Load(), c.Ringing)
	}
	time.Sleep(time.Second)
	runtime.GC()
	row.bytesPerCall = (rss() - base) / float64(c.Ringing)
	logf("d: %d ringing, %.1f KiB resident per call", rep.ringing.Load(), row.bytesPerCall/1024)
	t0 := time.Now()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = d.Stop(stopCtx)
	cancel()
	drain := time.Since(t0)
	row.completion = float64(rep.ended.Load()) / float64(c.Ringing)
	rep.mu.Lock()
	row.note = fmt.Sprintf("drain on stop: %d of %d calls CANCELled and recorded in %.1f s (%d missed, others %v)",
		rep.ended.Load(), c.Ringing, drain.Seconds(), rep.missed.Load(), rep.other)
	rep.mu.Unlock()
	if err != nil {
		row.note += " (" + err.Error() + ")"
	}
	logf("d: %s", row.note)
	return row, nil
}
