package peers

import (
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NetSIP is a running registrar and stateless proxy on Net::SIP (testdata/netsip/proxy.pl): a callee
// registers sip:user@Addr there, and INVITEs for that AOR go on to the contact it registered.
type NetSIP struct {
	Addr string // 127.0.0.1:port it listens on
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
}

// StartNetSIP runs testdata/netsip/proxy.pl with perl on a free loopback port of transport (udp or tcp),
// with Net::SIP's debug output (every message it handles) in Log. It is its own process group, stopped by
// PID when the test ends.
func StartNetSIP(t testing.TB, transport string) *NetSIP {
	t.Helper()
	perl := Require(t, "perl", "perl")
	if err := exec.Command(perl, "-MNet::SIP", "-e", "1").Run(); err != nil {
		Missing(t, "perl's Net::SIP not found: install the Debian package libnet-sip-perl (make test does this as root)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "netsip", "proxy.pl")
	n := &NetSIP{}
	for attempt := 0; ; attempt++ {
		port := freePort(t, transport)
		n.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		n.cmd = exec.Command(perl, script, transport, n.Addr, "5")
		n.cmd.Stdout, n.cmd.Stderr = &n.out, &n.out
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", script, err)
		}
		n.done = make(chan struct{})
		go func() { _ = n.cmd.Wait(); close(n.done) }()
		if waitBound(transport, port, 5*time.Second, n.done, n.cmd.Process.Pid) {
			break
		}
		n.stop()
		if attempt == 2 || !strings.Contains(n.Log(), "in use") {
			t.Fatalf("net::sip proxy did not start on %s:\n%s", n.Addr, n.Log())
		}
	}
	t.Cleanup(n.stop)
	return n
}

func (n *NetSIP) stop() { stopGroup(n.cmd, n.done) }

// Log returns what the proxy printed so far.
func (n *NetSIP) Log() string { return n.out.String() }
