package peers

import (
	"fmt"
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

// Baresip is a running baresip softphone: one local account, never registered, that rings on an incoming
// INVITE and waits for an answer that never comes (answermode=manual).
type Baresip struct {
	Addr string // 127.0.0.1:port of its SIP socket
	// AOR is the account's address of record: INVITEs whose Request-URI user is this user reach it.
	AOR  string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{} // closed when the process has exited
}

// BaresipUser is the user part of the account's AOR: the number a test dials.
const BaresipUser = "+447700900123"

// baresipConfig is baresip's config file (keys as in the template baresip 1.0 writes on first start and
// /usr/share/doc/baresip-core/examples/config). Headless: aubridge stands in for the sound card for the
// player, the source and the ring tone (an aubridge player without a source with the same device name
// never runs), so no audio device is opened. No UI module reads stdin; menu.so prints the call events.
const baresipConfig = `# written by flashotp's internal/peers for one test
poll_method		epoll
sip_listen		LISTEN
net_interface		127.0.0.1
call_local_timeout	120
call_max_calls		4
audio_path		/usr/share/baresip
audio_player		aubridge,nil
audio_source		aubridge,nil
audio_alert		aubridge,nil
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
`

// StartBaresip runs baresip in the foreground with a config directory in t.TempDir(), listening for SIP on
// a free loopback port, with one account, sip:+447700900123@127.0.0.1, that does not register and does not
// answer. baresip is its own process group, stopped by PID when the test ends. Its output (with -s, every
// SIP message it sent and received) is in Log.
func StartBaresip(t testing.TB) *Baresip {
	t.Helper()
	return startBaresip(t, "")
}

// StartBaresipRegistered is StartBaresip with the account sip:+447700900123@<registrar> (ip:port), which
// registers there over UDP: it returns once the registrar has accepted the registration.
func StartBaresipRegistered(t testing.TB, registrar string) *Baresip {
	t.Helper()
	b := startBaresip(t, registrar)
	if !b.waitLog("[1 binding]", 5*time.Second) {
		t.Fatalf("baresip did not register at %s:\n%s", registrar, b.Log())
	}
	return b
}

func startBaresip(t testing.TB, registrar string) *Baresip {
	t.Helper()
	bin := Require(t, "baresip", "baresip-core")
	dir := t.TempDir()
	b := &Baresip{AOR: "sip:" + BaresipUser + "@127.0.0.1"}
	// regint=0: no REGISTER; answermode=manual: an INVITE rings (180) until answered, which nobody does.
	regint := 0
	if registrar != "" {
		b.AOR, regint = "sip:"+BaresipUser+"@"+registrar, 600
	}
	account := fmt.Sprintf("<%s>;regint=%d;answermode=manual;audio_codecs=pcmu,pcma\n", b.AOR, regint)
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o600); err != nil {
		t.Fatal(err)
	}
	// Present so that baresip writes no template of its own.
	if err := os.WriteFile(filepath.Join(dir, "contacts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		port := freeUDPPort(t)
		b.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cfg := strings.Replace(baresipConfig, "LISTEN", b.Addr, 1)
		if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		// -4: IPv4 only; -s: SIP trace in the log. stdin is /dev/null and no UI module reads it.
		b.cmd = exec.Command(bin, "-f", dir, "-4", "-s")
		b.cmd.Dir = dir
		b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := b.cmd.Start(); err != nil {
			t.Fatalf("start baresip: %v", err)
		}
		b.done = make(chan struct{})
		go func() { _ = b.cmd.Wait(); close(b.done) }()
		if waitBound("udp", port, 5*time.Second, b.done, b.cmd.Process.Pid) && b.waitReady(5*time.Second) {
			break
		}
		b.stop()
		// Another process may have taken the port (UDP, or the TCP one baresip also listens on): retry.
		if attempt == 2 || !strings.Contains(b.out.String(), "in use") {
			t.Fatalf("baresip did not start on %s:\n%s", b.Addr, b.out.String())
		}
	}
	t.Cleanup(b.stop)
	return b
}

// waitReady reports whether baresip said it is ready (after its SIP transports and account are up) within
// d: its port bound is not yet its account up.
func (b *Baresip) waitReady(d time.Duration) bool { return b.waitLog("baresip is ready.", d) }

// waitLog reports whether baresip printed want within d.
func (b *Baresip) waitLog(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(b.out.String(), want) {
			return true
		}
		select {
		case <-b.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

func (b *Baresip) stop() { stopGroup(b.cmd, b.done) }

// Log returns everything baresip printed so far.
func (b *Baresip) Log() string { return b.out.String() }
