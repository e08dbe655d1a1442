package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkThreads is how many threads wrk runs: one per core of the 2-core machine the figures are for, beside
// the engine's own.
const wrkThreads = 2

// errNoWrk is returned by Run when a part that needs wrk is asked for and wrk is not installed.
var errNoWrk = errors.New("wrk not found: install the Debian package wrk (scripts/deps.sh does this as root)")

// wrkCommon is the part of both wrk scripts the bench writes: the API key's headers, each thread's number
// (setup), and done(), which prints the one line runWrk reads (latencies in µs).
const wrkCommon = `-- Written by flashotp bench.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "bench"
wrk.headers["X-API-Secret"] = "bench-secret"

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("flashotp-bench requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkSends is the script of parts c and n: POST /otp/send, each request to another recipient. Thread t
// sends to +1415 and 7 digits from base + t × span on (a valid US number from 2,000,000 on: no exchange
// starts with 0 or 1), so threads never repeat one another. {{BASE}}: where the script's numbers start;
// {{SPAN}}: the numbers each thread has.
const wrkSends = wrkCommon + `
local base = {{BASE}}
local span = {{SPAN}}
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, "/otp/send", nil,
    string.format('{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}', base + tid * span + n % span))
end
`

// sendsScript writes wrkSends into dir, the k-th of scripts: each script's recipients apart from the
// others' (engines on one database would otherwise meet in one recipient's history).
func sendsScript(dir string, k, scripts int) (string, error) {
	span := 8_000_000 / wrkThreads / scripts
	return writeWrkScript(dir, fmt.Sprintf("send-%d.lua", k), wrkSends, map[string]string{
		"BASE": strconv.Itoa(2_000_000 + k*span*wrkThreads), "SPAN": strconv.Itoa(span)})
}

// wrkVerifies is the script of part e: POST /otp/verify with a wrong code, cycling over the verification
// IDs in the file ids (one a line), thread t taking the t-th, then every {{THREADS}}-th on. {{IDS}}: the file, quoted.
const wrkVerifies = wrkCommon + `
local ids = {}
for line in io.lines({{IDS}}) do ids[#ids + 1] = line end
local n = 0
function request()
  local id = ids[(tid + n * {{THREADS}}) % #ids + 1]
  n = n + 1
  return wrk.format(nil, "/otp/verify", nil,
    '{"appid":"bench","verification_id":"' .. id .. '","otp_code":"00000"}')
end
`

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests     int64 // answers received
	Non2xx       int64 // of them, with a status of 400 or more
	SocketErrors int64 // connect, read, write errors and timeouts
	Duration     time.Duration
	P50, P99     time.Duration
}

// runWrk runs wrk with the script file against base from conns connections for d (whole seconds), and
// returns what its done() printed. wrk is stopped by its PID if it runs long past d.
func runWrk(script, base string, conns int, d time.Duration) (wrkResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	threads := min(wrkThreads, max(conns, 1))
	cmd := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(max(conns, threads)),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", script, base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return wrkResult{}, fmt.Errorf("start wrk: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out.String())
		}
	case <-time.After(time.Duration(secs)*time.Second + 30*time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return wrkResult{}, fmt.Errorf("wrk still running %d s past its %d s: %s", 30, secs, out.String())
	}
	return parseWrk(out.String())
}

// parseWrk reads the line the bench's done() prints.
func parseWrk(out string) (wrkResult, error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "flashotp-bench ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, f := range strings.Fields(rest) {
			k, s, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("wrk's %s: %q", k, s)
			}
			v[k] = n
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		return wrkResult{Requests: v["requests"], Non2xx: v["non2xx"], SocketErrors: v["socket_errors"],
			Duration: us("duration_us"), P50: us("p50_us"), P99: us("p99_us")}, nil
	}
	return wrkResult{}, fmt.Errorf("wrk printed no result: %s", out)
}

// writeWrkScript writes script into dir as name, each {{KEY}} in it replaced by vars' KEY, and returns its
// path.
func writeWrkScript(dir, name, script string, vars map[string]string) (string, error) {
	for k, v := range vars {
		script = strings.ReplaceAll(script, "{{"+k+"}}", v)
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(script), 0o644)
}
