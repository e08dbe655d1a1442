package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"flashotp/otp"
)

// outcomeBound is how long a part waits, after its load, for every call it caused to have an outcome.
const outcomeBound = 60 * time.Second

// benchWrkSends is part c: the engine as its own process, wrk POSTing /otp/send from c.Connections
// connections for c.Duration, the SIPp callee as its trunk; every call should end missed. profile: the
// file for a CPU profile of the engine during the load (empty: none).
func benchWrkSends(c Config, callee *callee, run int, profile string, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "c", what: fmt.Sprintf("wrk %d conns POST /otp/send → flashotp serve → SIPp callee, %s", c.Connections, c.Duration)}
	dir := filepath.Join(c.dir, fmt.Sprintf("c-%d", run))
	e, err := startEngine(c.Engine, dir, callee.Addr)
	if err != nil {
		return row, err
	}
	defer e.Stop()
	script, err := sendsScript(dir, 0, 1)
	if err != nil {
		return row, err
	}
	before, err := callee.arrivals()
	if err != nil {
		return row, err
	}
	var profiled chan error
	if profile != "" {
		profiled = make(chan error, 1)
		go func() { profiled <- e.profile(profile, c.Duration) }()
	}
	cpu0 := e.cpu()
	w, err := runWrk(script, e.Base, c.Connections, c.Duration)
	if err != nil {
		return row, err
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			return row, err
		}
		logf("c: the engine's CPU profile during the load: %s", profile)
	}
	accepted := w.Requests - w.Non2xx
	out, complete := e.waitOutcomes(accepted, outcomeBound)
	cpu := e.cpu() - cpu0
	after, err := callee.arrivals()
	if err != nil {
		return row, err
	}
	// The engine may have accepted a few sends more than wrk counted: those still in flight when wrk stopped.
	sent := max(out.Sent, accepted)
	row.rate = float64(accepted) / w.Duration.Seconds()
	row.completion = float64(min(out.Missed, int64(after-before))) / float64(max(sent, 1))
	row.p50, row.p99 = w.P50, w.P99
	row.cpuPerCall = cpu / time.Duration(max(sent, 1))
	row.note = fmt.Sprintf("%d accepted (202) in %.1f s, %d other answers, %d socket errors; the engine recorded %d sent, %d missed, %d answered, %d failed; the callee saw %d INVITEs; CPU: the engine process's own",
		accepted, w.Duration.Seconds(), w.Non2xx, w.SocketErrors, out.Sent, out.Missed, out.Answered, out.Failed, after-before)
	if !complete {
		row.note += fmt.Sprintf("; not every call had an outcome %s after the load", outcomeBound)
	}
	logf("c: run %d: %.0f sends/s, %s", run+1, row.rate, row.note)
	return row, nil
}

// benchPacedSends is part c1: the engine as its own process, the bench's own client (this process) POSTing
// /otp/send at the fixed rate c.Whole for c.Duration: the HTTP latency of a send at a rate the engine
// carries.
func benchPacedSends(c Config, callee *callee, run int, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "c1", what: fmt.Sprintf("bench client POST /otp/send → flashotp serve → SIPp callee, %d/s for %s", c.Whole, c.Duration)}
	e, err := startEngine(c.Engine, filepath.Join(c.dir, fmt.Sprintf("c1-%d", run)), callee.Addr)
	if err != nil {
		return row, err
	}
	defer e.Stop()
	post := e.poster()
	var (
		mu       sync.Mutex
		ids      []string
		lat      []time.Duration
		refused  atomic.Int64
		inflight sync.WaitGroup
	)
	sem := make(chan struct{}, 512)
	cpu0, t0 := e.cpu(), time.Now()
	total := int(float64(c.Whole) * c.Duration.Seconds())
	tick := time.NewTicker(time.Millisecond)
	n := 0
	for n < total {
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
	out, complete := e.waitOutcomes(int64(len(ids)), outcomeBound)
	cpu := e.cpu() - cpu0
	row.rate = float64(len(ids)) / elapsed.Seconds()
	row.completion = float64(out.Missed) / float64(max(n, 1))
	row.p50, row.p99 = percentiles(lat)
	row.cpuPerCall = cpu / time.Duration(max(len(ids), 1))
	// Send to INVITE, from the records of up to 1,000 verifications (created_at → call.started_at), read
	// after the load.
	var toInvite []time.Duration
	for i, id := range ids {
		if i >= 1000 {
			break
		}
		b, err := e.get("/otp/status?appid=bench&verification_id=" + id)
		var v otp.Verification
		if err == nil && json.Unmarshal(b, &v) == nil && v.Call.StartedAt != nil {
			toInvite = append(toInvite, v.Call.StartedAt.Sub(v.CreatedAt))
		}
	}
	p50, p99 := percentiles(toInvite)
	row.note = fmt.Sprintf("HTTP p50/p99 above; send→INVITE p50 %.2f p99 %.2f ms; %d of %d sends refused; the engine recorded %d missed, %d answered, %d failed; CPU: the engine process's own",
		float64(p50)/1e6, float64(p99)/1e6, refused.Load(), n, out.Missed, out.Answered, out.Failed)
	if !complete {
		row.note += fmt.Sprintf("; not every call had an outcome %s after the load", outcomeBound)
	}
	logf("c1: run %d: %s", run+1, row.note)
	return row, nil
}

// benchWrkVerifies is part e: the engine as its own process; c.VerifyIDs sends for verification IDs (their
// calls left to end), then wrk POSTing /otp/verify with a wrong code from c.Connections connections for
// c.Verify, cycling over the IDs. Each answer 422 (wrong code), 410 (attempts used up), 200 or 409 (the
// code guessed) is a durable attempt; 429, 5xx and socket errors are not.
func benchWrkVerifies(c Config, callee *callee, run int, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "e", what: fmt.Sprintf("wrk %d conns POST /otp/verify → flashotp serve, %s", c.Connections, c.Verify)}
	dir := filepath.Join(c.dir, fmt.Sprintf("e-%d", run))
	e, err := startEngine(c.Engine, dir, callee.Addr)
	if err != nil {
		return row, err
	}
	defer e.Stop()
	ids, err := sendFor(e, c.VerifyIDs)
	if err != nil {
		return row, err
	}
	if _, complete := e.waitOutcomes(int64(len(ids)), outcomeBound); !complete {
		logf("e: run %d: not every call of the %d sends had an outcome after %s", run+1, len(ids), outcomeBound)
	}
	idFile := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(idFile, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		return row, err
	}
	script, err := writeWrkScript(dir, "verify.lua", wrkVerifies, map[string]string{"IDS": strconv.Quote(idFile), "THREADS": strconv.Itoa(wrkThreads)})
	if err != nil {
		return row, err
	}
	before, err := e.statuses("/otp/verify")
	if err != nil {
		return row, err
	}
	w, err := runWrk(script, e.Base, c.Connections, c.Verify)
	if err != nil {
		return row, err
	}
	after, err := e.statuses("/otp/verify")
	if err != nil {
		return row, err
	}
	var durable, all float64
	others := map[string]float64{}
	for status, n := range after {
		n -= before[status]
		all += n
		switch status {
		case "422", "410", "200", "409":
			durable += n
		default:
			others[status] = n
		}
	}
	// The engine's counts hold answers wrk no longer waited for; the completion is the engine's, the rate wrk's.
	row.completion = durable / max(all+float64(w.SocketErrors), 1)
	row.rate = float64(w.Requests) * durable / max(all, 1) / w.Duration.Seconds()
	row.p50, row.p99 = w.P50, w.P99
	row.note = fmt.Sprintf("%d answers in %.1f s over %d verifications: %.0f wrong code (422), %.0f attempts used up (410), %d socket errors",
		w.Requests, w.Duration.Seconds(), len(ids), after["422"]-before["422"], after["410"]-before["410"], w.SocketErrors)
	if len(others) > 0 {
		row.note += fmt.Sprintf(", others %v", others)
	}
	logf("e: run %d: %.0f verifies/s, %s", run+1, row.rate, row.note)
	return row, nil
}

// sendFor sends n flash calls to the engine from 64 clients and returns their verification IDs.
func sendFor(e *engineProc, n int) ([]string, error) {
	post := e.poster()
	var (
		mu   sync.Mutex
		ids  []string
		next atomic.Int64
		wg   sync.WaitGroup
		bad  atomic.Int64
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				code, b, _ := post("/otp/send", fmt.Sprintf(`{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}`, 9_000_000+i%1_000_000))
				var v otp.Verification
				if code != 202 || json.Unmarshal(b, &v) != nil {
					bad.Add(1)
					continue
				}
				mu.Lock()
				ids = append(ids, v.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(ids) == 0 {
		return nil, fmt.Errorf("none of %d sends accepted", n)
	}
	return ids, nil
}

// newClient is the bench's own HTTP client of an engine. It shares the machine with the engine: fasthttp's
// client (already linked, for fiber) costs it less CPU than net/http's. Connections are reused last-in
// first-out, so that those a burst opened go idle and are closed.
func newClient() *fasthttp.Client {
	return &fasthttp.Client{MaxConnsPerHost: 256, MaxConnWaitTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ConnPoolStrategy: fasthttp.LIFO}
}

// poster is the engine's client POSTing to its API with the bench app's key.
func (e *engineProc) poster() poster {
	return func(path, body string) (int, []byte, time.Duration) {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(e.Base + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("X-API-Key", "bench")
		req.Header.Set("X-API-Secret", "bench-secret")
		req.SetBodyString(body)
		t0 := time.Now()
		if err := e.client.Do(req, res); err != nil {
			return 0, nil, time.Since(t0)
		}
		return res.StatusCode(), append([]byte(nil), res.Body()...), time.Since(t0)
	}
}

// poster POSTs body to path and returns the status (0: no answer), the body and the time it took.
type poster func(path, body string) (int, []byte, time.Duration)
