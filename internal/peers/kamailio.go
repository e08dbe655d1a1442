package peers

import (
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

// Kamailio is a running Kamailio proxy.
type Kamailio struct {
	Addr string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{} // closed when the process has exited
}

// StartKamailio runs Kamailio in the foreground with testdata/kamailio/<config>, on a free loopback UDP
// port, forwarding to callee. It is stopped by PID when the test ends.
func StartKamailio(t testing.TB, config, callee string) *Kamailio {
	t.Helper()
	return StartKamailioOn(t, "udp", config, callee, nil)
}

// StartKamailioOn is StartKamailio listening on transport (udp, tcp, tls: a TCP port); vars are further
// placeholders of the config file and their values. For tls the Debian package kamailio-tls-modules is
// needed.
func StartKamailioOn(t testing.TB, transport, config, callee string, vars map[string]string) *Kamailio {
	t.Helper()
	bin := Require(t, "kamailio", "kamailio")
	if transport == "tls" {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so"); err != nil {
			Require(t, "kamailio-tls-module-missing", "kamailio-tls-modules")
		}
	}
	_, file, _, _ := runtime.Caller(0)
	tmpl, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "kamailio", config))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &Kamailio{}
	for attempt := 0; ; attempt++ {
		port := freePort(t, transport)
		k.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		pairs := []string{"LISTEN", k.Addr, "CALLEE", callee}
		for k, v := range vars {
			pairs = append(pairs, k, v)
		}
		cfg := strings.NewReplacer(pairs...).Replace(string(tmpl))
		path := filepath.Join(dir, "kamailio.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		k.cmd = exec.Command(bin, "-f", path, "-DD", "-E", "-P", filepath.Join(dir, "kamailio.pid"),
			"-m", "64", "-M", "8", "-Y", dir)
		k.cmd.Stdout, k.cmd.Stderr = &k.out, &k.out
		k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its children go with it
		if err := k.cmd.Start(); err != nil {
			t.Fatalf("start kamailio: %v", err)
		}
		k.done = make(chan struct{})
		go func() { _ = k.cmd.Wait(); close(k.done) }()
		if waitBound(transport, port, 5*time.Second, k.done, k.cmd.Process.Pid) {
			break
		}
		k.stop()
		if attempt == 2 || !strings.Contains(k.out.String(), "bind") {
			t.Fatalf("kamailio did not start on %s:\n%s", k.Addr, k.out.String())
		}
	}
	t.Cleanup(k.stop)
	return k
}

func (k *Kamailio) stop() { stopGroup(k.cmd, k.done) }

// stopGroup stops the process group a test started (the process and whatever it forked): SIGTERM, then
// SIGKILL after 3 s; done is closed when the process has exited.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Log returns what Kamailio printed.
func (k *Kamailio) Log() string { return k.out.String() }
