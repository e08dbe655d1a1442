// Package bench is `flashotp bench`: it measures this machine against a SIPp callee on loopback (the SIPp
// reference caller, the dialer alone, the whole path, ringing memory and drain, verifies, pacing, a soak)
// and prints one table. docs/benchmarks.md explains the figures.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
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

	"github.com/valyala/fasthttp"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/configs"
	"flashotp/dialer"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/sip"
)

// Config is what a bench runs.
type Config struct {
	Rates    []int         // (a) and (b): rising rates, calls/s
	Step     time.Duration // (a) and (b): how long each rate runs
	Whole    int           // (c): the fixed rate of POST /otp/send
	Duration time.Duration // (c): how long
	Ringing  int           // (d): concurrent ringing calls
	Verify   time.Duration // (e): how long verifies run
	Clients  int           // (e): concurrent clients
	CPS      int           // (p): the trunk's max_cps
	Soak     time.Duration // (s): how long the soak runs
	SoakRate int           // (s): its sends/s
	Only     string        // letters of the parts to run; empty: all
	Profile  string        // CPU profile file; empty: none
	Heap     string        // (s): heap profile files, this prefix and the minute; empty: none
	// Start runs the engine in-process with cfg until ctx ends (parts c and e); cmd/flashotp's Main.
	Start func(ctx context.Context, cfg configs.Config) (Engine, error)

	dir string // the run's temporary files
}

// Engine is an engine the bench runs in-process: it sends to HTTPAddr and reads the outcomes from the
// engine's own records.
type Engine struct {
	HTTPAddr string
	Service  *otp.Service
	Stop     func() // stops the engine and waits until it has stopped
}

// benchRow is one line of the table.
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

// Run runs the parts c asks for and prints their table to out, its progress to progress.
func Run(ctx context.Context, c Config, out, progress io.Writer) error {
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
	// The soak (s) is long: it runs only when asked for by name.
	run := func(part string) bool { return c.Only == "" && part != "s" || strings.Contains(c.Only, part) }
	var rows []benchRow
	var ref, own float64
	if run("a") {
		row, err := benchReference(c, callee.Addr, logf)
		if err != nil {
			return fmt.Errorf("a: %w", err)
		}
		ref = row.rate
		rows = append(rows, row)
	}
	if run("b") {
		row, err := benchDialer(ctx, c, callee, logf)
		if err != nil {
			return fmt.Errorf("b: %w", err)
		}
		own = row.rate
		rows = append(rows, row)
	}
	if run("d") {
		row, err := benchRinging(ctx, c, callee.Addr, logf)
		if err != nil {
			return fmt.Errorf("d: %w", err)
		}
		rows = append(rows, row)
	}
	if run("p") {
		row, err := benchPacing(ctx, c, logf)
		if err != nil {
			return fmt.Errorf("p: %w", err)
		}
		rows = append(rows, row)
	}
	if run("s") {
		row, err := benchSoak(ctx, c, callee, logf)
		if err != nil {
			return fmt.Errorf("s: %w", err)
		}
		rows = append(rows, row)
	}
	if run("c") || run("e") {
		parts, err := benchWhole(ctx, c, callee, run("c"), run("e"), logf)
		if err != nil {
			return err
		}
		rows = append(rows, parts...)
	}
	printBench(out, rows, ref, own)
	return nil
}

func printBench(out io.Writer, rows []benchRow, ref, own float64) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "part\twhat\tsustained/s\tcompleted\tp50 / p99\t180→CANCEL p50 / p99\tCPU per call\tmemory per call\tnote")
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	for _, r := range rows {
		lat, lat2, cpu, mem := "", "", "", ""
		if r.p99 > 0 {
			lat = ms(r.p50) + " / " + ms(r.p99) + " ms"
		}
		if r.p99b > 0 {
			lat2 = ms(r.p50b) + " / " + ms(r.p99b) + " ms"
		}
		if r.cpuPerCall > 0 {
			cpu = strconv.FormatFloat(float64(r.cpuPerCall)/1e6, 'f', 3, 64) + " ms"
		}
		if r.bytesPerCall > 0 {
			mem = strconv.FormatFloat(r.bytesPerCall/1024, 'f', 1, 64) + " KiB"
		}
		rate := ""
		if r.rate > 0 {
			rate = strconv.FormatFloat(r.rate, 'f', 0, 64)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f%%\t%s\t%s\t%s\t%s\t%s\n", r.part, r.what, rate, 100*r.completion, lat, lat2, cpu, mem, r.note)
	}
	w.Flush()
	if ref > 0 && own > 0 {
		fmt.Fprintf(out, "dialer alone / SIPp reference: %.2f\n", own/ref)
	}
}

// benchReference is part a: SIPp as the caller at rising rates.
func benchReference(c Config, callee string, logf func(string, ...any)) (benchRow, error) {
	best := benchRow{part: "a", what: "SIPp caller → SIPp callee (reference)"}
	for _, r := range c.Rates {
		calls := int(float64(r) * c.Step.Seconds())
		st, err := runReferenceCaller(c.dir, callee, r, calls)
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
func benchPacing(ctx context.Context, c Config, logf func(string, ...any)) (benchRow, error) {
	cps := c.CPS
	row := benchRow{part: "p", what: fmt.Sprintf("max_cps %d, offered %d/s", cps, 2*cps)}
	callee, err := startCallee(c.dir, filepath.Join(c.dir, "pacing.csv"))
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

// benchEngineOn runs the engine in-process against callee, with every rate limit off, and returns it and a
// poster of signed requests to it.
func benchEngineOn(ctx context.Context, c Config, callee *callee) (Engine, poster, error) {
	cfg := configs.Default()
	cfg.HTTP.Listen, cfg.SIP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.Path = filepath.Join(c.dir, "engine", "flashotp.db")
	cfg.Trunks = []dialer.Trunk{{Name: "sipp", Address: callee.Addr, Transport: "udp", DownAfter: 1 << 30}}
	cfg.Pool = []numberpool.FilePool{{Name: "bench", Numbers: []string{"+4420794XXXXX"}, Cooldown: time.Second}}
	off := apps.Limit{}
	cfg.Apps = []apps.ConfigApp{{App: apps.App{ID: "bench", MaxAttempts: 20,
		RateLimits: map[string]apps.Limit{"recipient": off, "app": off, "client": off, "prefix": off, "failed_verifications": off}},
		APIKey: "bench", APISecret: "bench-secret"}}
	cfg.Dialer.QueueSize = 1 << 20
	cfg.HTTP.DrainDelay = 0 // no load balancer to wait for: part d times the dialer's drain alone
	cfg.Phone.Enabled = false
	if err := cfg.Validate(); err != nil {
		return Engine{}, nil, err
	}
	e, err := c.Start(ctx, cfg)
	if err != nil {
		return Engine{}, nil, err
	}
	return e, newPoster("http://" + e.HTTPAddr), nil
}

// newPoster is the load generator's client for the API at base. It shares the machine with the engine:
// fasthttp's client (already linked, for fiber) costs it less CPU than net/http's. Connections are reused
// last-in first-out, so that those a burst opened go idle and are closed.
func newPoster(base string) poster {
	client := &fasthttp.Client{MaxConnsPerHost: 256, MaxConnWaitTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ConnPoolStrategy: fasthttp.LIFO}
	return func(path, body string) (int, []byte, time.Duration) {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(base + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("X-API-Key", "bench")
		req.Header.Set("X-API-Secret", "bench-secret")
		req.SetBodyString(body)
		t0 := time.Now()
		if err := client.Do(req, res); err != nil {
			return 0, nil, time.Since(t0)
		}
		return res.StatusCode(), append([]byte(nil), res.Body()...), time.Since(t0)
	}
}

// benchWhole runs the engine in-process against callee for parts c (sends) and e (verifies).
func benchWhole(ctx context.Context, c Config, callee *callee, sends, verifies bool, logf func(string, ...any)) ([]benchRow, error) {
	e, post, err := benchEngineOn(ctx, c, callee)
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	var rows []benchRow
	var ids []string
	if sends {
		row, sent, err := benchSends(ctx, c, e.Service, callee, post, logf)
		if err != nil {
			return nil, fmt.Errorf("c: %w", err)
		}
		rows, ids = append(rows, row), sent
	}
	if verifies {
		if len(ids) == 0 {
			for i := range 2000 {
				if code, b, _ := post("/otp/send", fmt.Sprintf(`{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}`, 9_000_000+i)); code == 202 {
					var v otp.Verification
					_ = json.Unmarshal(b, &v)
					ids = append(ids, v.ID)
				}
			}
		}
		row := benchVerifies(ctx, c, ids, post, logf)
		rows = append(rows, row)
	}
	return rows, nil
}

type poster func(path, body string) (int, []byte, time.Duration)

// benchSends is part c: POST /otp/send at a fixed rate; every call should end missed.
func benchSends(ctx context.Context, c Config, svc *otp.Service, callee *callee, post poster, logf func(string, ...any)) (benchRow, []string, error) {
	row := benchRow{part: "c", what: fmt.Sprintf("POST /otp/send → SIPp callee, %d/s for %s", c.Whole, c.Duration)}
	var (
		mu       sync.Mutex
		ids      []string
		lat      []time.Duration
		refused  atomic.Int64
		inflight sync.WaitGroup
	)
	sem := make(chan struct{}, 512)
	before, err := callee.arrivals()
	if err != nil {
		return row, nil, err
	}
	cpu0, t0 := cpuTime(), time.Now()
	total := int(float64(c.Whole) * c.Duration.Seconds())
	tick := time.NewTicker(time.Millisecond)
	n := 0
	for n < total && ctx.Err() == nil {
		<-tick.C
		due := min(total, int(float64(c.Whole)*time.Since(t0).Seconds()))
		for ; n < due; n++ {
			sem <- struct{}{}
			inflight.Add(1)
			go func(i int) {
				defer func() { <-sem; inflight.Done() }()
				code, b, d := post("/otp/send", fmt.Sprintf(`{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}`, 2_000_000+i))
				if code != 202 {
					refused.Add(1)
					return
				}
				var v otp.Verification
				_ = json.Unmarshal(b, &v)
				mu.Lock()
				ids, lat = append(ids, v.ID), append(lat, d)
				mu.Unlock()
			}(n)
		}
	}
	tick.Stop()
	inflight.Wait()
	elapsed := time.Since(t0)
	// Every accepted call ends: count the outcomes in the engine's own reports.
	var missed int64
	waitUntil(60*time.Second, func() bool {
		rows, _ := svc.Reports(ctx, "bench", time.Now().Add(-24*time.Hour), time.Now(), otp.GroupChannel)
		missed = 0
		var ended int64
		for _, r := range rows {
			missed, ended = r.Missed, r.Missed+r.Answered+r.Failed
		}
		return ended >= int64(len(ids))
	})
	cpu := cpuTime() - cpu0
	after, err := callee.arrivals()
	if err != nil {
		return row, nil, err
	}
	row.rate = float64(len(ids)) / elapsed.Seconds()
	row.completion = float64(min(missed, int64(after-before))) / float64(max(n, 1))
	row.p50, row.p99 = percentiles(lat)
	row.cpuPerCall = cpu / time.Duration(max(len(ids), 1))
	// Send to INVITE: from each verification's record (created_at → call.started_at).
	var toInvite []time.Duration
	others := map[string]int{}
	for _, id := range ids {
		v, err := svc.Status(ctx, "bench", id)
		if err != nil {
			continue
		}
		if v.Call.StartedAt != nil {
			toInvite = append(toInvite, v.Call.StartedAt.Sub(v.CreatedAt))
		}
		if v.Call.State != call.StateMissed {
			others[string(v.Call.State)+"/"+v.Call.Reason]++
		}
	}
	p50, p99 := percentiles(toInvite)
	row.note = fmt.Sprintf("HTTP p50/p99 above; send→INVITE p50 %.2f p99 %.2f ms; %d refused; the callee saw %d INVITEs; CPU includes the load generator",
		float64(p50)/1e6, float64(p99)/1e6, refused.Load(), after-before)
	logf("c: %d sends in %.1f s, %d missed, %d refused, others %v", len(ids), elapsed.Seconds(), missed, refused.Load(), others)
	return row, ids, nil
}

// benchVerifies is part e: POST /otp/verify from c.Clients clients for c.Verify; each answer is a durable
// attempt.
func benchVerifies(ctx context.Context, c Config, ids []string, post poster, logf func(string, ...any)) benchRow {
	row := benchRow{part: "e", what: fmt.Sprintf("POST /otp/verify, %d clients", c.Clients)}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		bad  atomic.Int64
		wg   sync.WaitGroup
		next atomic.Int64
		odd  sync.Map // unexpected status → count
	)
	t0 := time.Now()
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Since(t0) < c.Verify && ctx.Err() == nil {
				id := ids[int(next.Add(1))%len(ids)]
				code, _, d := post("/otp/verify", fmt.Sprintf(`{"appid":"bench","verification_id":%q,"otp_code":"00000"}`, id))
				// A wrong code: 422, or 410 once its attempts are used (200 and then 409 when "0000" is the code); each
				// answer records the attempt durably.
				if code != 422 && code != 410 && code != 200 && code != 409 {
					bad.Add(1)
					n, _ := odd.LoadOrStore(code, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	row.rate = float64(len(lat)) / elapsed.Seconds()
	row.completion = 1 - float64(bad.Load())/float64(max(len(lat), 1))
	row.p50, row.p99 = percentiles(lat)
	row.note = fmt.Sprintf("%d verifies, %d unexpected answers", len(lat), bad.Load())
	odd.Range(func(k, v any) bool {
		row.note += fmt.Sprintf(" (%d: %d)", k, v.(*atomic.Int64).Load())
		return true
	})
	logf("e: %s", row.note)
	return row
}

// benchSoak is part s: the engine as a process of its own (`flashotp serve`, so that the load generator's
// connections and memory are not counted), sends at c.SoakRate, each verified, for c.Soak; every 30 s its
// Go heap (after a GC, through /admin/debug/pprof/heap?gc=1), goroutines, open files and resident memory
// are read from its own /metrics. They must stay flat.
func benchSoak(ctx context.Context, c Config, callee *callee, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "s", what: fmt.Sprintf("soak: %d sends/s and their verifies for %s", c.SoakRate, c.Soak)}
	dir := filepath.Join(c.dir, "soak")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return row, err
	}
	config := filepath.Join(dir, "flashotp.yaml")
	dbFile := filepath.Join(dir, "flashotp.db")
	const token = "soak-admin-token"
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`http: {listen: "127.0.0.1:0", admin_token: %s}
sip: {listen: "127.0.0.1:0"}
store: {path: %s}
trunks: [{name: sipp, address: "%s", down_after: 1000000000}]
pool: [{name: bench, numbers: ["+4420794XXXXX"], cooldown: 1s}]
dialer: {queue_size: 1000000}
apps:
  - id: bench
    api_key: bench
    api_secret: bench-secret
    max_attempts: 20
    rate_limits: {recipient: {limit: 0}, app: {limit: 0}, client: {limit: 0}, prefix: {limit: 0}, failed_verifications: {limit: 0}}
phone: {enabled: false}
`, token, dbFile, callee.Addr)), 0o600); err != nil {
		return row, err
	}
	exe, err := os.Executable()
	if err != nil {
		return row, err
	}
	engine := exec.Command(exe, "serve", "--config", config)
	engine.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // not left behind if the bench dies
	stderr, err := engine.StderrPipe()
	if err != nil {
		return row, err
	}
	if err := engine.Start(); err != nil {
		return row, err
	}
	defer func() {
		_ = engine.Process.Signal(syscall.SIGTERM)
		_ = engine.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, after, ok := strings.Cut(sc.Text(), `msg="flashotp serving" http=`); ok {
				addr <- strings.Fields(after)[0]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // the engine must never block on its log
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(15 * time.Second):
		return row, errors.New("the engine did not start within 15 s")
	}
	post := newPoster(base)
	type sample struct {
		rss, heap, db     float64
		goroutines, files int
	}
	get := func(path string) []byte {
		code, body, err := fasthttp.GetTimeout(nil, base+path, 30*time.Second)
		if err != nil || code != 200 {
			return nil
		}
		return body
	}
	var profile []byte
	take := func() sample {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(base + "/admin/debug/pprof/heap?gc=1")
		req.Header.Set("Authorization", "Bearer "+token)
		if err := fasthttp.DoTimeout(req, res, 30*time.Second); err == nil {
			profile = append(profile[:0], res.Body()...)
		}
		m := promValues(get("/metrics"))
		var db float64
		if fi, err := os.Stat(dbFile); err == nil {
			db = float64(fi.Size())
		}
		return sample{m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"], db, int(m["go_goroutines"]), int(m["process_open_fds"])}
	}
	var (
		sent, failed atomic.Int64
		wg           sync.WaitGroup
		samples      []sample
	)
	t0 := time.Now()
	tick, every := time.NewTicker(time.Second/time.Duration(max(c.SoakRate, 1))), time.NewTicker(30*time.Second)
	defer tick.Stop()
	defer every.Stop()
	var i int64
	for time.Since(t0) < c.Soak && ctx.Err() == nil {
		select {
		case <-every.C:
			s := take()
			samples = append(samples, s)
			if c.Heap != "" && profile != nil {
				_ = os.WriteFile(fmt.Sprintf("%s-%s.pprof", c.Heap, time.Since(t0).Round(time.Second)), profile, 0o600)
			}
			logf("s: %s: %.1f MiB resident, %.1f MiB Go heap in use, %.1f MiB database file (mapped), %d goroutines, %d open files, %d sent, %d failed",
				time.Since(t0).Round(time.Second), s.rss/(1<<20), s.heap/(1<<20), s.db/(1<<20), s.goroutines, s.files, sent.Load(), failed.Load())
		case <-tick.C:
			i++
			wg.Add(1)
			go func(i int64) {
				defer wg.Done()
				code, b, _ := post("/otp/send", fmt.Sprintf(`{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}`, 2_000_000+i%7_000_000))
				if code != 202 {
					failed.Add(1)
					return
				}
				sent.Add(1)
				var v otp.Verification
				_ = json.Unmarshal(b, &v)
				if code, _, _ := post("/otp/verify", fmt.Sprintf(`{"appid":"bench","verification_id":%q,"otp_code":"00000"}`, v.ID)); code >= 500 || code == 0 {
					failed.Add(1)
				}
			}(i)
		}
	}
	wg.Wait()
	if len(samples) < 3 {
		return row, fmt.Errorf("only %d samples: give --soak of at least 90s", len(samples))
	}
	// The first sample is the warm-up; from the second on, nothing may keep growing.
	first, last := samples[1], samples[len(samples)-1]
	row.rate = float64(sent.Load()) / time.Since(t0).Seconds()
	row.completion = 1 - float64(failed.Load())/float64(max(sent.Load()+failed.Load(), 1))
	row.note = fmt.Sprintf("the engine's own, from 60 s in to the end: Go heap %.1f → %.1f MiB, goroutines %d → %d, open files %d → %d; resident %.1f → %.1f MiB with the database file (kept for otp.retention) %.1f → %.1f MiB",
		first.heap/(1<<20), last.heap/(1<<20), first.goroutines, last.goroutines, first.files, last.files,
		first.rss/(1<<20), last.rss/(1<<20), first.db/(1<<20), last.db/(1<<20))
	logf("s: %s", row.note)
	return row, nil
}

// promValues reads the unlabelled samples of a Prometheus text exposition.
func promValues(text []byte) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(text), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = f
		}
	}
	return out
}
