package peers

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Linphone is a running linphonec (Debian's linphone-cli, liblinphone and its SIP stack belle-sip): a phone
// with no account that rings on any INVITE to its TCP port and is never answered.
type Linphone struct {
	Addr  string // 127.0.0.1:port of its SIP TCP socket
	cmd   *exec.Cmd
	out   lockedBuffer
	trace string // the liblinphone log file (-l): every SIP message it sent and received
	done  chan struct{}
}

// linphoneConfig is linphonec's configuration file (-c; the keys liblinphone reads from ~/.linphonerc). SIP
// over TCP only (0 disables UDP and TLS; -1 would pick a random port), bound to loopback; an incoming call
// rings for inc_timeout seconds, answered by no one (linphonec answers only with -a). liblinphone finds no
// sound card here and plays nothing: it needs none to ring, and RTP only starts once a call is answered.
const linphoneConfig = `# written by flashotp's internal/peers for one test
[sip]
sip_port=0
sip_tcp_port=PORT
sip_tls_port=0
bind_address=127.0.0.1
use_ipv6=0
guess_hostname=0
inc_timeout=120
register_only_when_network_is_up=0
[rtp]
audio_rtp_port=RTPPORT
[video]
automatically_initiate=0
automatically_accept=0
[sound]
echocancellation=0
`

// StartLinphone runs linphonec with a configuration in t.TempDir() (its HOME too, where liblinphone keeps
// its call history database), listening for SIP over TCP on a free loopback port. It is its own process
// group, stopped by PID when the test ends. What it prints (an incoming call: "Receiving new incoming call
// from <From>") is in Log; its SIP trace is in Trace.
func StartLinphone(t testing.TB) *Linphone {
	t.Helper()
	bin := Require(t, "linphonec", "linphone-cli")
	dir := t.TempDir()
	// Without the directory of its database, liblinphone 5.1 spins at start and never listens.
	if err := os.MkdirAll(filepath.Join(dir, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := &Linphone{trace: filepath.Join(dir, "linphone.log")}
	for attempt := 0; ; attempt++ {
		port := freePort(t, "tcp")
		l.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cfg := strings.NewReplacer("RTPPORT", strconv.Itoa(freeUDPPort(t)), "PORT", strconv.Itoa(port)).Replace(linphoneConfig)
		rc := filepath.Join(dir, "linphonerc")
		if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		l.cmd = exec.Command(bin, "-c", rc, "-d", "6", "-l", l.trace)
		l.cmd.Dir = dir
		l.cmd.Env = append(os.Environ(), "HOME="+dir)
		l.cmd.Stdout, l.cmd.Stderr = &l.out, &l.out
		l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// linphonec reads commands from stdin and quits at its end: it stays open until the process is stopped.
		if _, err := l.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := l.cmd.Start(); err != nil {
			t.Fatalf("start linphonec: %v", err)
		}
		l.done = make(chan struct{})
		go func() { _ = l.cmd.Wait(); close(l.done) }()
		if waitBound("tcp", port, 10*time.Second, l.done, l.cmd.Process.Pid) {
			break
		}
		l.stop()
		// Another process may have taken the port: retry.
		if attempt == 2 || !strings.Contains(l.Trace(), "Address already in use") {
			t.Fatalf("linphonec did not start on %s:\n%s\n%s", l.Addr, l.Log(), l.Trace())
		}
	}
	t.Cleanup(l.stop)
	return l
}

// stop stops linphonec; its stdin is closed by Wait when it has exited.
func (l *Linphone) stop() { stopGroup(l.cmd, l.done) }

// Log returns what linphonec printed so far.
func (l *Linphone) Log() string { return l.out.String() }

// Trace returns liblinphone's log so far, with every SIP message it sent and received.
func (l *Linphone) Trace() string {
	b, _ := os.ReadFile(l.trace)
	return string(b)
}
