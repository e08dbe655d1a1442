// Package peers runs real SIP peers on loopback for tests: SIPp with a scenario from testdata/sipp,
// Kamailio with a config from testdata/kamailio, baresip, linphone (linphonec) and a Net::SIP registrar and
// proxy (testdata/netsip). Each process is the test's own: it is stopped by
// PID (and process group) in t.Cleanup. `flashotp bench` runs its SIPp processes through RunSIPp and
// ListenSIPp too: the one SIPp runner.
package peers

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require returns the path of the named tool. Without it the test is skipped, or fails under CI=true, naming
// the Debian package that provides it.
func Require(t testing.TB, tool, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	Missing(t, fmt.Sprintf("%s not found: install the Debian package %s (make test does this as root)", tool, debPackage))
	return ""
}

// Missing ends a test that cannot run here, saying why: it fails under CI=true, where nothing may be
// skipped, and is skipped elsewhere.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Scenario returns the path of a scenario file in the repository's testdata/sipp.
func Scenario(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sipp", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	return p
}

// SIPp is a SIPp process on loopback, stopped by its PID (and process group) with Stop.
type SIPp struct {
	Addr     string // 127.0.0.1:port it uses
	port     int
	cmd      *exec.Cmd
	done     chan struct{} // closed when it has exited
	exitCode int
	out      lockedBuffer
}

// RunSIPp starts sipp in dir with args, on a free loopback port of transport (udp, tcp, or tls: give
// -tls_cert and -tls_key in args). It does not wait for SIPp to listen: a caller's scenario needs no one to
// reach it.
func RunSIPp(dir, transport string, args ...string) (*SIPp, error) {
	mode := map[string]string{"udp": "u1", "tcp": "t1", "tls": "l1"}[transport]
	if mode == "" {
		return nil, fmt.Errorf("sipp transport %q", transport)
	}
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		return nil, errors.New("sipp not found: install the Debian package sip-tester")
	}
	port, err := loopbackPort(transport)
	if err != nil {
		return nil, err
	}
	p := &SIPp{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, done: make(chan struct{})}
	p.cmd = exec.Command(sipp, append([]string{"-t", mode, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sipp: %w", err)
	}
	go func() {
		var ee *exec.ExitError
		if err := p.cmd.Wait(); errors.As(err, &ee) {
			p.exitCode = ee.ExitCode()
		}
		close(p.done)
	}()
	return p, nil
}

// ListenSIPp is RunSIPp for a callee: it returns once SIPp listens on its port (another try on another
// port if something took the port first).
func ListenSIPp(dir, transport string, args ...string) (*SIPp, error) {
	for attempt := 0; ; attempt++ {
		p, err := RunSIPp(dir, transport, args...)
		if err != nil {
			return nil, err
		}
		if waitBound(transport, p.port, 5*time.Second, p.done, p.cmd.Process.Pid) {
			return p, nil
		}
		p.Stop()
		if attempt == 2 || !strings.Contains(p.Output(), "bind") {
			return nil, fmt.Errorf("sipp did not start on %s: %s", p.Addr, p.Output())
		}
	}
}

// Done is closed when SIPp has exited.
func (p *SIPp) Done() <-chan struct{} { return p.done }

// Output is what SIPp printed so far.
func (p *SIPp) Output() string { return p.out.String() }

// PID is SIPp's process ID (and its process group's: Stop signals the group).
func (p *SIPp) PID() int { return p.cmd.Process.Pid }

// Stop ends SIPp: SIGTERM, then SIGKILL after 3 s.
func (p *SIPp) Stop() { stopGroup(p.cmd, p.done) }

// UAS is a running SIPp callee of a test.
type UAS struct {
	*SIPp
	msgFile string
}

// StartUAS starts SIPp as a callee on a free loopback UDP port, running scenario (a file name in
// testdata/sipp) for at most calls calls, then exiting. Extra args go to SIPp as they are.
func StartUAS(t testing.TB, scenario string, calls int, extra ...string) *UAS {
	t.Helper()
	return StartUASOn(t, "udp", scenario, calls, extra...)
}

// StartUASOn is StartUAS over transport: udp, tcp, or tls (give -tls_cert and -tls_key in extra).
func StartUASOn(t testing.TB, transport, scenario string, calls int, extra ...string) *UAS {
	t.Helper()
	Require(t, "sipp", "sip-tester")
	dir := t.TempDir()
	u := &UAS{msgFile: filepath.Join(dir, "messages.log")}
	p, err := ListenSIPp(dir, transport, append([]string{
		"-sf", Scenario(t, scenario),
		"-m", strconv.Itoa(calls),
		"-trace_msg", "-message_file", u.msgFile,
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-timeout_error", "-timeout", "120s",
	}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	u.SIPp = p
	t.Cleanup(p.Stop)
	return u
}

// StartUAC starts SIPp as a caller over transport (udp or tcp) from a free loopback port, running scenario
// (a file name in testdata/sipp) once against target, then exiting: Wait gives 0 only if every step and
// check of the scenario held within 10 s. The *UAS is the same handle a callee's is.
func StartUAC(t testing.TB, transport, scenario, target string, extra ...string) *UAS {
	t.Helper()
	Require(t, "sipp", "sip-tester")
	dir := t.TempDir()
	u := &UAS{msgFile: filepath.Join(dir, "messages.log")}
	p, err := RunSIPp(dir, transport, append(append([]string{
		"-sf", Scenario(t, scenario),
		"-m", "1",
		"-trace_msg", "-message_file", u.msgFile,
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-timeout_error", "-timeout", "10s",
	}, extra...), target)...)
	if err != nil {
		t.Fatal(err)
	}
	u.SIPp = p
	t.Cleanup(p.Stop)
	return u
}

// Wait waits up to d for SIPp to exit and returns its exit code (0: every call completed its scenario).
func (u *UAS) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-u.done:
		return u.exitCode
	case <-time.After(d):
		t.Fatalf("sipp still running after %s; messages:\n%s", d, u.Messages())
		return -1
	}
}

// Messages returns SIPp's message trace so far.
func (u *UAS) Messages() string {
	b, _ := os.ReadFile(u.msgFile)
	return string(b)
}

// Received returns the SIP messages SIPp received whose first line starts with startLine (e.g. "INVITE ").
func (u *UAS) Received(startLine string) []string {
	var out []string
	for _, block := range strings.Split(u.Messages(), "----------------------------------------------- ") {
		i := strings.Index(block, "message received")
		if i < 0 {
			continue
		}
		body := strings.TrimLeft(block[i:], "\n")
		// skip the "message received [n] bytes :" line
		if nl := strings.Index(body, "\n"); nl >= 0 {
			body = strings.TrimLeft(body[nl+1:], "\r\n")
		}
		if strings.HasPrefix(body, startLine) {
			out = append(out, body)
		}
	}
	return out
}

func freeUDPPort(t testing.TB) int { return freePort(t, "udp") }

// freePort returns a loopback port free for transport (tcp and tls: a TCP port).
func freePort(t testing.TB, transport string) int {
	t.Helper()
	port, err := loopbackPort(transport)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// loopbackPort returns a loopback port free for transport (tcp and tls: a TCP port) a moment ago.
func loopbackPort(transport string) (int, error) {
	if transport == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer is a bytes.Buffer a process writes while a test reads it. The tests' copy is fakes.Buffer; this
// package keeps its own because internal/bench (in the binary) runs SIPp through it, and fakes pulls in the
// domain packages its fakes stand in for.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
