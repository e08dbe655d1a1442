package peers

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SMSC is a running SMPP server for the engine's SMPP client to bind to: testdata/smsc/smsc.js on
// node-smpp (npm smpp), which parses every PDU itself. See smsc.js for what it answers to which number.
type SMSC struct {
	Addr     string // 127.0.0.1:port
	SystemID string
	Password string
	t        testing.TB
	node     string
	tlsFiles []string // key and certificate: the SMSC speaks TLS
	script   string
	cmd      *exec.Cmd
	out      lockedBuffer
	done     chan struct{}
}

// SMSCEvent is one line the SMSC printed: a bind, a submit_sm it took, a receipt it sent.
type SMSCEvent struct {
	Event          string   `json:"event"`
	MessageID      string   `json:"message_id"`
	SourceAddr     string   `json:"source_addr"`
	SourceTON      int      `json:"source_addr_ton"`
	SourceNPI      int      `json:"source_addr_npi"`
	DestAddr       string   `json:"destination_addr"`
	DestTON        int      `json:"dest_addr_ton"`
	DestNPI        int      `json:"dest_addr_npi"`
	ESMClass       int      `json:"esm_class"`
	DataCoding     int      `json:"data_coding"`
	Registered     int      `json:"registered_delivery"`
	UDH            []string `json:"udh"`
	Text           string   `json:"text"`
	Stat           string   `json:"stat"`
	SystemType     string   `json:"system_type"`
	InterfaceVersn int      `json:"interface_version"`
}

// StartSMSC runs the test SMSC on a free loopback port, taking binds with systemID and password. It needs
// node (Debian nodejs) and testdata/smsc/node_modules (scripts/deps.sh runs npm ci there); without them the
// test is skipped, or fails under CI=true. It is stopped by PID when the test ends.
func StartSMSC(t testing.TB, systemID, password string) *SMSC {
	t.Helper()
	return StartSMSCTLS(t, systemID, password, "", "")
}

// StartSMSCTLS is StartSMSC speaking SMPP over TLS with the key and certificate in these PEM files (none:
// plain TCP).
func StartSMSCTLS(t testing.TB, systemID, password, keyFile, certFile string) *SMSC {
	t.Helper()
	node := Require(t, "node", "nodejs")
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "smsc")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "smpp")); err != nil {
		Missing(t, "testdata/smsc/node_modules/smpp missing: run scripts/deps.sh (npm ci in testdata/smsc)")
	}
	s := &SMSC{SystemID: systemID, Password: password, t: t, node: node, script: filepath.Join(dir, "smsc.js")}
	if keyFile != "" {
		s.tlsFiles = []string{keyFile, certFile}
	}
	t.Cleanup(s.Stop)
	for attempt := 0; ; attempt++ { // another port if something took this one first
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "tcp")))
		if s.start() {
			return s
		}
		if attempt == 2 || !strings.Contains(s.out.String(), "EADDRINUSE") {
			t.Fatalf("the SMSC did not listen on %s:\n%s", s.Addr, s.out.String())
		}
	}
}

// Start starts the SMSC again on its address after Stop (a restarted SMSC: the client must rebind).
func (s *SMSC) Start() {
	s.t.Helper()
	if !s.start() {
		s.t.Fatalf("the SMSC did not listen on %s:\n%s", s.Addr, s.out.String())
	}
}

// start runs the SMSC on s.Addr and reports whether it listens there (if not, it is stopped).
func (s *SMSC) start() bool {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(s.node, append([]string{s.script, port, s.SystemID, s.Password}, s.tlsFiles...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start the SMSC: %v", err)
	}
	s.done = make(chan struct{})
	done := s.done
	go func() { _ = s.cmd.Wait(); close(done) }()
	p, _ := strconv.Atoi(port)
	if !waitBound("tcp", p, 10*time.Second, s.done, s.cmd.Process.Pid) {
		s.Stop()
		return false
	}
	return true
}

// Stop stops the SMSC (SIGTERM, then SIGKILL): its sessions drop.
func (s *SMSC) Stop() {
	s.Resume() // a paused process takes no SIGTERM
	stopGroup(s.cmd, s.done)
}

// Pause stops the SMSC's process without closing its sockets (SIGSTOP): connections stay up, nothing is
// answered, as with an SMSC that hangs.
func (s *SMSC) Pause() { _ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume lets a paused SMSC run again (SIGCONT).
func (s *SMSC) Resume() { _ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) }

// Events returns what the SMSC printed so far, the kind event only ("" for all).
func (s *SMSC) Events(event string) []SMSCEvent {
	var evs []SMSCEvent
	for _, line := range strings.Split(s.out.String(), "\n") {
		var e SMSCEvent
		if json.Unmarshal([]byte(line), &e) == nil && e.Event != "" && (event == "" || e.Event == event) {
			evs = append(evs, e)
		}
	}
	return evs
}

// WaitEvents waits up to d for at least n events of the kind and returns them.
func (s *SMSC) WaitEvents(event string, n int, d time.Duration) []SMSCEvent {
	deadline := time.Now().Add(d)
	for {
		evs := s.Events(event)
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns what the SMSC printed.
func (s *SMSC) Log() string { return s.out.String() }
