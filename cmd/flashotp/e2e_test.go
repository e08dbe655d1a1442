package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flashotp/internal/peers"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds flashotp once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flashotp-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flashotp")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a flashotp process the test started; it is stopped by PID when the test ends.
type proc struct {
	cmd    *exec.Cmd
	stdout *lineBuffer
	stderr *lineBuffer
	done   chan struct{}
}

type lineBuffer struct {
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

func newLineBuffer() *lineBuffer {
	b := &lineBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *lineBuffer) add(line string) {
	b.mu.Lock()
	b.lines = append(b.lines, line)
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// waitFor returns the first submatch of the first line matching re, waiting up to d.
func (b *lineBuffer) waitFor(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, b.cond.Broadcast)
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for _, l := range b.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %s within %s; got:\n%s", re, d, strings.Join(b.lines, "\n"))
		}
		b.cond.Wait()
	}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary(t), args...))
}

// startCmd runs cmd (the binary, or a wrapper of it) with its output kept, until the test ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, stdout: newLineBuffer(), stderr: newLineBuffer(), done: make(chan struct{})}
	outPipe, _ := p.cmd.StdoutPipe()
	errPipe, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	for pipe, buf := range map[*os.File]*lineBuffer{outPipe.(*os.File): p.stdout, errPipe.(*os.File): p.stderr} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				buf.add(sc.Text())
			}
		}()
	}
	go func() {
		readers.Wait()
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

// kill signals the process and waits for it to exit.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

var servingLine = regexp.MustCompile(`msg="flashotp serving" http=(\S+)`)

// serve starts `flashotp serve` with the YAML config and returns it and an API client.
func serve(t *testing.T, config string) (*proc, client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "serve", "--config", path)
	m := p.stderr.waitFor(t, servingLine, 15*time.Second)
	return p, client{t, "http://" + m[1]}
}

func engineConfig(dataDir, trunk, phone string) string {
	phoneEnabled := phone != ""
	if phone == "" {
		phone = "127.0.0.1:0"
	}
	return fmt.Sprintf(`http:
  listen: 127.0.0.1:0
  drain_delay: 0s
sip:
  listen: 127.0.0.1:0
store:
  path: %s/flashotp.db
trunks:
  - name: trunk
    address: %s
pool:
  - name: demo
    numbers: ["+44207946XXXX"]
dialer:
  dial_timeout: 3s
  cancel_guard: 1s
apps:
  - id: demo
    api_key: demo
    api_secret: demo-secret
phone:
  enabled: %t
  listen: %s
`, dataDir, trunk, phoneEnabled, phone)
}

// The built binary against a SIPp callee: send, read the CLI from SIPp's log, verify; then kill -9 right
// after a 202 and verify that code after a restart.
func TestBinaryAgainstSIPp(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel.xml", 2)
	data := t.TempDir()
	config := engineConfig(data, uas.Addr, "")
	p, c := serve(t, config)

	sent := c.send(recipient)
	if sent.status != 202 || sent.body["status"] != "pending" || sent.body["cli_prefix"] != "+44207946" {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	v := c.waitCall(id)
	if call := v["call"].(map[string]any); call["state"] != "missed" || call["sip_code"] != 487.0 {
		t.Fatalf("call: %v", call)
	}
	cli := cliOf(t, uas, recipient)
	if a := c.verify(id, cli[len(cli)-4:]); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}

	// kill -9 just after the 202, as soon as the INVITE is on the wire.
	other := "+33612345678"
	sent = c.send(other)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id = sent.body["verification_id"].(string)
	deadline := time.Now().Add(5 * time.Second)
	for len(uas.Received("INVITE sip:"+other+"@")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("INVITE never reached SIPp")
		}
		time.Sleep(time.Millisecond)
	}
	p.kill(syscall.SIGKILL)

	p, c = serve(t, config)
	cli = cliOf(t, uas, other)
	v = c.do("GET", "/otp/status?verification_id="+id, "").body
	if state := v["call"].(map[string]any)["state"]; state == "queued" || state == "dialing" || state == "ringing" {
		t.Fatalf("call left %v after restart", state)
	}
	if a := c.verify(id, cli[len(cli)-4:]); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify after kill -9: %d %s", a.status, a.raw)
	}

	// SIGTERM: a clean exit.
	p.kill(syscall.SIGTERM)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.stderr)
	}
}

// The demo: `flashotp phone` as its own process prints the missed call; the code from that line verifies.
// The same with the phone built into serve.
func TestBinaryDemoPhone(t *testing.T) {
	missed := regexp.MustCompile(`^missed call from (\+[0-9]+) to ` + regexp.QuoteMeta(recipient) + `$`)
	t.Run("phone command", func(t *testing.T) {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.LocalAddr().String()
		l.Close()
		phone := start(t, "phone", "--listen", addr, "--mode", "ring")
		phone.stderr.waitFor(t, regexp.MustCompile(`phone listening`), 10*time.Second)
		_, c := serve(t, engineConfig(t.TempDir(), addr, ""))
		sent := c.send(recipient)
		cli := phone.stdout.waitFor(t, missed, 10*time.Second)[1]
		id := sent.body["verification_id"].(string)
		if a := c.verify(id, cli[len(cli)-4:]); a.status != 200 {
			t.Fatalf("verify: %d %s", a.status, a.raw)
		}
	})
	t.Run("built-in phone", func(t *testing.T) {
		p, c := serve(t, engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"))
		sent := c.send(recipient)
		cli := p.stdout.waitFor(t, missed, 10*time.Second)[1]
		id := sent.body["verification_id"].(string)
		if a := c.verify(id, "+"+strings.TrimPrefix(cli, "+")); a.status != 200 {
			t.Fatalf("verify with the whole CLI: %d %s", a.status, a.raw)
		}
	})
}

func TestBinaryVersion(t *testing.T) {
	p := start(t, "version")
	<-p.done
	if got := p.stdout.String(); !strings.HasPrefix(got, "flashotp ") {
		t.Fatalf("version printed %q", got)
	}
}

// `flashotp bench` at toy sizes, each part twice: every part runs against the SIPp callee (c and e with the
// engine as its own process under wrk) and every call it places ends as it should; the table gives each
// part's median with both runs, and the ratios (the real figures are in docs/benchmarks.md; speed is never
// asserted here).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every bench part twice, even at toy sizes, takes 50 s; make test runs it")
	}
	peers.Require(t, "sipp", "sip-tester")
	peers.Require(t, "wrk", "wrk")
	profile := filepath.Join(t.TempDir(), "engine.pprof")
	p := start(t, "bench", "--repeat", "2", "--rates", "100,200", "--step", "1s", "--connections", "16", "--duration", "1s", "--rate", "100",
		"--ringing", "200", "--verify", "1s", "--verify-ids", "200", "--cps", "100", "--engine-profile", profile)
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("bench still running after 3 minutes")
	}
	out := p.stdout.String()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("bench exit %d:\n%s\n%s", code, out, p.stderr.String())
	}
	// A part's median, then its two runs: "11,765 (11,700 / 11,830)".
	twoRuns := regexp.MustCompile(`\s[0-9,]+ \([0-9,]+ / [0-9,]+\)\s`)
	for _, part := range []string{"a ", "b ", "c ", "c1 ", "d ", "e ", "p "} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, part) {
				found = true
				if !strings.Contains(line, "100.00%") {
					t.Errorf("part %q did not complete every call: %s", part, line)
				}
				if part != "d " && !twoRuns.MatchString(line) {
					t.Errorf("part %q: no median with both runs' figures: %s", part, line)
				}
			}
		}
		if !found {
			t.Errorf("no row for part %q:\n%s", part, out)
		}
	}
	for _, ratio := range []string{"ratio of medians b / a (dialer alone / SIPp reference): ", "ratio of medians c / a (whole path / SIPp reference): "} {
		if !strings.Contains(out, ratio) {
			t.Errorf("no line %q:\n%s", ratio, out)
		}
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("no profile of the engine process: %v", err)
	}
}
