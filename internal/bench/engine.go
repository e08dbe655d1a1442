package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
)

// adminToken is the http.admin_token of the engines the bench starts: their profiles are read through
// /admin/debug/pprof with it.
const adminToken = "bench-admin-token"

// engineProc is the engine under test as a process of its own, as a user runs it: `flashotp serve
// --config` with a config the bench wrote (its trunk the SIPp callee, every rate limit of the app "bench"
// off), so that the load generator's CPU and memory are never counted as the engine's.
type engineProc struct {
	Base   string // http://127.0.0.1:port of its HTTP API
	PID    int
	Stop   func() // SIGTERM, then waits for it to exit (SIGKILL after 30 s)
	dbFile string // its bbolt file; empty on PostgreSQL
	// client is the bench's own HTTP client of the engine (its reads, and c1's and e's sends): its idle
	// connections are closed before the engine is stopped, which would otherwise wait for them.
	client *fasthttp.Client
}

// engineConfig is the config of the engines the bench starts: %s are the admin token, the store section (a
// YAML flow map) and the callee's address. max_attempts is the most an app may have (apps.MaxAttempts), so
// that part e's wrong codes are spread over fewer verifications.
const engineConfig = `http: {listen: "127.0.0.1:0", admin_token: %s, drain_delay: 0s}
sip: {listen: "127.0.0.1:0"}
store: %s
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
`

// startEngine writes a config into dir (created if missing) and starts this executable's `serve` with it
// against the SIPp callee at callee, on a bbolt file in dir; it returns once the engine serves HTTP.
func startEngine(exe, dir, callee string) (*engineProc, error) {
	db := filepath.Join(dir, "flashotp.db")
	e, err := startEngineOn(exe, dir, callee, fmt.Sprintf("{path: %q}", db))
	if e != nil {
		e.dbFile = db
	}
	return e, err
}

// startEngineOn is startEngine on the store the YAML flow map store configures.
func startEngineOn(exe, dir, callee, store string) (*engineProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "flashotp.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, engineConfig, adminToken, store, callee), 0o600); err != nil {
		return nil, err
	}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(exe, "serve", "--config", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // not left behind if the bench dies
	log := &serveLog{addr: make(chan string, 1)}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	client := newClient()
	stop := sync.OnceFunc(func() {
		client.CloseIdleConnections()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case a := <-log.addr:
		return &engineProc{Base: "http://" + a, PID: cmd.Process.Pid, Stop: stop, client: client}, nil
	case <-exited:
		return nil, fmt.Errorf("flashotp serve exited at start: %s", log.head())
	case <-time.After(15 * time.Second):
		stop()
		return nil, fmt.Errorf("flashotp serve did not serve within 15 s: %s", log.head())
	}
}

// serveLog is the engine's stderr: it finds the line that says where the engine serves, keeps what came
// before it (for an error at start), and drops the rest, so that the engine never blocks on its log.
type serveLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found bool
	addr  chan string
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.found || l.buf.Len() > 64<<10 {
		return len(p), nil
	}
	l.buf.Write(p)
	if _, after, ok := strings.Cut(l.buf.String(), `msg="flashotp serving" http=`); ok {
		if f := strings.Fields(after); len(f) > 0 {
			l.found = true
			l.addr <- f[0]
		}
	}
	return len(p), nil
}

func (l *serveLog) head() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.buf.String())
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on Linux (fixed for user
// space whatever the kernel's HZ; Go reads no sysconf without cgo).
const clockTick = 10 * time.Millisecond

// procCPU is the user and system CPU time the process pid has used so far, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: the fields are counted after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpu is procCPU of the engine, 0 when it cannot be read.
func (e *engineProc) cpu() time.Duration {
	d, _ := procCPU(e.PID)
	return d
}

// get GETs path from the engine with the bench app's API key and returns the body of a 200.
func (e *engineProc) get(path string, header ...string) ([]byte, error) {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(e.Base + path)
	req.Header.Set("X-API-Key", "bench")
	req.Header.Set("X-API-Secret", "bench-secret")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if err := e.client.DoTimeout(req, res, 2*time.Minute); err != nil {
		return nil, err
	}
	if res.StatusCode() != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode(), res.Body())
	}
	return append([]byte(nil), res.Body()...), nil
}

// outcomes are the bench app's counts in the engine's own reports.
type outcomes struct {
	Sent, Missed, Answered, Failed int64
}

// ended is how many calls have an outcome.
func (o outcomes) ended() int64 { return o.Missed + o.Answered + o.Failed }

// outcomes reads the app's report counters (GET /otp/reports, by day, every day summed).
func (e *engineProc) outcomes() (outcomes, error) {
	b, err := e.get("/otp/reports?appid=bench&group_by=day")
	if err != nil {
		return outcomes{}, err
	}
	var r struct {
		Rows []outcomes `json:"rows"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return outcomes{}, err
	}
	var o outcomes
	for _, row := range r.Rows {
		o.Sent, o.Missed, o.Answered, o.Failed = o.Sent+row.Sent, o.Missed+row.Missed, o.Answered+row.Answered, o.Failed+row.Failed
	}
	return o, nil
}

// waitOutcomes polls the engine's reports until every call sent (at least atLeast) has an outcome, for at
// most bound; it returns the last counts and whether they were complete.
func (e *engineProc) waitOutcomes(atLeast int64, bound time.Duration) (outcomes, bool) {
	var o outcomes
	complete := waitUntil(bound, func() bool {
		time.Sleep(190 * time.Millisecond) // waitUntil's 10 ms: too often for a request to the engine under test
		var err error
		o, err = e.outcomes()
		return err == nil && o.Sent >= atLeast && o.ended() >= o.Sent
	})
	return o, complete
}

// metrics reads the engine's /metrics (the Prometheus text format) into its metric families.
func (e *engineProc) metrics() (map[string]*dto.MetricFamily, error) {
	b, err := e.get("/metrics")
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// statuses are the engine's own counts of its answers on route, by status code (flashotp_http_requests_total).
func (e *engineProc) statuses(route string) (map[string]float64, error) {
	families, err := e.metrics()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range families["flashotp_http_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == route {
			out[labels["status"]] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}

// gauges are the engine's unlabelled gauges (goroutines, resident memory, …) by name.
func (e *engineProc) gauges() (map[string]float64, error) {
	families, err := e.metrics()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range families {
		if ms := f.GetMetric(); len(ms) == 1 && len(ms[0].GetLabel()) == 0 && ms[0].Gauge != nil {
			out[name] = ms[0].GetGauge().GetValue()
		}
	}
	return out, nil
}

// profile takes a CPU profile of the engine for d through /admin/debug/pprof/profile and writes it to file.
func (e *engineProc) profile(file string, d time.Duration) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	b, err := e.get(fmt.Sprintf("/admin/debug/pprof/profile?seconds=%d", secs), "Authorization", "Bearer "+adminToken)
	if err != nil {
		return fmt.Errorf("engine profile: %w", err)
	}
	return os.WriteFile(file, b, 0o644)
}
