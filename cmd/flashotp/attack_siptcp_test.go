package main

import (
	"errors"
	"fmt"
	"io"
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
	"flashotp/sip"
)

// The attacker's addresses: loopback addresses other than the engine's and its trunk's.
var strangers = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}

var (
	sipServingLine = regexp.MustCompile(`msg="flashotp serving" http=(\S+) sip=(\S+)`)
	missedAny      = regexp.MustCompile(`^missed call from (\+[0-9]+) to ` + regexp.QuoteMeta(recipient) + `$`)
)

// attackEngine runs `flashotp serve` as its own process with the built-in phone as its one (UDP) trunk,
// sipKeys added to the sip section, trunkKeys to the trunk, and, if nofile > 0, at most nofile descriptors (soft and hard: Go
// raises the soft limit to the hard one at start). It returns the process, an API client and the SIP
// address.
func attackEngine(t *testing.T, sipKeys, trunkKeys string, nofile int) (*proc, client, string) {
	t.Helper()
	config := engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")
	config = strings.Replace(config, "sip:\n  listen: 127.0.0.1:0\n", "sip:\n  listen: 127.0.0.1:0\n"+sipKeys, 1)
	config = strings.Replace(config, "  - name: trunk\n", "  - name: trunk\n"+trunkKeys, 1)
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if nofile > 0 {
		prlimit := peers.Require(t, "prlimit", "util-linux")
		cmd = exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--", binary(t), "serve", "--config", path)
	} else {
		cmd = exec.Command(binary(t), "serve", "--config", path)
	}
	p := startCmd(t, cmd)
	m := p.stderr.waitFor(t, sipServingLine, 15*time.Second)
	return p, client{t, "http://" + m[1]}, m[2]
}

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return d.Dial("tcp", addr)
}

// sipPing opens a connection from src to the SIP address and sends a double-CRLF keep-alive (RFC 5626
// 3.5.1); it reports whether the UA answered the CRLF that only a connection it accepted and reads can
// give.
func sipPing(src, addr string) error {
	c, err := dialFrom(src, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
		return err
	}
	pong := make([]byte, 2)
	if _, err := io.ReadFull(c, pong); err != nil {
		return fmt.Errorf("no pong: %w", err)
	}
	return nil
}

// waitPing retries sipPing from 127.0.0.1 until it succeeds, for up to d.
func waitPing(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := sipPing("127.0.0.1", addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SIP TCP listener does not serve a connection %s after the flood: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flood opens perSource idle connections to addr from each of sources, concurrently, and returns those
// the kernel completed (the engine may close them at once), closed when the test ends or by the caller.
func flood(t *testing.T, addr string, sources []string, perSource int) []net.Conn {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perSource; i++ {
				c, err := dialFrom(src, addr)
				if err != nil {
					continue // the backlog full: the kernel refused it
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() { closeAll(conns) })
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// held counts the connections the engine still holds open: a read ending in a timeout rather than EOF.
func held(conns []net.Conn) (total int, bySource map[string]int) {
	bySource = map[string]int{}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	deadline := time.Now().Add(300 * time.Millisecond)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				total++
				bySource[c.LocalAddr().(*net.TCPAddr).IP.String()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total, bySource
}

// waitDescriptors waits until the process pid holds at least n descriptors.
func waitDescriptors(t *testing.T, pid, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		if len(fds) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine holds %d descriptors after 10 s, want %d", len(fds), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendAndMiss sends a verification and waits for its missed call on the built-in phone.
func sendAndMiss(t *testing.T, p *proc, c client) {
	t.Helper()
	sent, ok := c.trySend(recipient)
	if !ok || sent.status != 202 {
		t.Fatalf("send: ok=%t %d %s\n%s", ok, sent.status, sent.raw, p.stderr)
	}
	id := sent.body["verification_id"].(string)
	if call := c.waitCall(id)["call"].(map[string]any); call["state"] != "missed" {
		t.Fatalf("call %v, want missed\n%s", call, p.stderr)
	}
	p.stdout.waitFor(t, missedAny, 5*time.Second)
}

// Idle connections to the SIP TCP port, more than the engine has descriptors, from a few stranger
// addresses: with the caps below the descriptor limit the engine holds at most sip.max_tcp_conns of them
// (sip.max_tcp_conns_per_source per address), closes the rest at once and keeps serving sends; with caps
// above it, accept fails (EMFILE), is retried and logged, and the listener serves again once the flood
// ends.
func TestAttackSIPTCPFlood(t *testing.T) {
	const nofile = 256
	// The caps are for hosts the engine hears (a trunk's accept_from network, here all of loopback):
	// strangers' connections take no place under them (the last subtest).
	const peerHosts = "    accept_from: [\"127.0.0.0/8\"]\n"
	t.Run("under the caps", func(t *testing.T) {
		p, c, sipAddr := attackEngine(t, "  listen_tcp: \"on\"\n  max_tcp_conns: 100\n  max_tcp_conns_per_source: 20\n", peerHosts, nofile)
		conns := flood(t, sipAddr, strangers, 50) // 300 > 256 descriptors
		if len(conns) < 250 {
			t.Fatalf("only %d of 300 connections opened", len(conns))
		}
		// A connection still in the backlog reads as held too: wait until the engine has taken them all.
		total, bySource := held(conns)
		over := func(by map[string]int) bool {
			for _, n := range by {
				if n > 20 {
					return true
				}
			}
			return false
		}
		for deadline := time.Now().Add(5 * time.Second); (total > 100 || over(bySource)) && time.Now().Before(deadline); {
			total, bySource = held(conns)
		}
		if total > 100 {
			t.Errorf("the engine holds %d connections, over sip.max_tcp_conns 100", total)
		}
		for src, n := range bySource {
			if n > 20 {
				t.Errorf("the engine holds %d connections from %s, over sip.max_tcp_conns_per_source 20", n, src)
			}
		}
		sendAndMiss(t, p, c) // during the flood
		closeAll(conns)
		waitPing(t, sipAddr, 5*time.Second)
		sendAndMiss(t, p, c)
	})
	t.Run("descriptors exhausted", func(t *testing.T) {
		p, c, sipAddr := attackEngine(t, "  listen_tcp: \"on\"\n  max_tcp_conns: 1000\n  max_tcp_conns_per_source: 1000\n", peerHosts, nofile)
		conns := flood(t, sipAddr, strangers[:2], 200) // 400 > 256 descriptors
		waitDescriptors(t, p.cmd.Process.Pid, nofile-2)
		closeAll(conns)
		waitPing(t, sipAddr, 5*time.Second)
		sendAndMiss(t, p, c)
		p.stderr.waitFor(t, regexp.MustCompile(`sip tcp accept failed: retrying.*too many open files`), time.Second)
		if n := strings.Count(p.stderr.String(), "sip tcp accept failed"); n > 3 {
			t.Errorf("%d lines about failed accepts, want at most one per 10 s", n)
		}
	})
	t.Run("strangers", func(t *testing.T) {
		p, c, sipAddr := attackEngine(t, "  listen_tcp: \"on\"\n", "", nofile)
		conns := flood(t, sipAddr, strangers, 50) // 300 > 256 descriptors
		total, _ := held(conns)
		for deadline := time.Now().Add(5 * time.Second); total > 0 && time.Now().Before(deadline); {
			total, _ = held(conns)
		}
		if total > 0 {
			t.Errorf("the engine holds %d connections from strangers, want none", total)
		}
		sendAndMiss(t, p, c) // during the flood
		closeAll(conns)
		waitPing(t, sipAddr, 5*time.Second)
	})
}

// A connection that sends nothing is closed after sip.tcp_idle_timeout; one that starts a message and
// stops is closed sip.tcp_message_timeout after its first byte. A stranger's (no trunk's address) is
// closed as it is accepted, unanswered.
func TestAttackSIPTCPIdle(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:5062")
	cfg.SIP.ListenTCP = sip.ListenTCPOn
	cfg.SIP.IdleTimeout = 2 * time.Second
	cfg.SIP.MessageTimeout = 300 * time.Millisecond
	m := startMain(t, cfg)
	const trunkIP = "127.0.0.1" // the trunk's address: its bytes are read
	closedAfter := func(t *testing.T, src, send string) (time.Duration, int64) {
		t.Helper()
		c, err := dialFrom(src, m.SIPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if send != "" {
			if _, err := c.Write([]byte(send)); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.SetReadDeadline(start.Add(6 * time.Second))
		n, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after 6 s (send %q)", send)
		}
		return time.Since(start), n
	}
	t.Run("idle", func(t *testing.T) {
		if d, _ := closedAfter(t, trunkIP, ""); d < 1900*time.Millisecond || d > 4*time.Second {
			t.Errorf("idle connection closed after %s, want about tcp_idle_timeout 2s", d)
		}
	})
	t.Run("half-sent message", func(t *testing.T) {
		if d, _ := closedAfter(t, trunkIP, "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\n"); d > 1500*time.Millisecond {
			t.Errorf("half-sent message's connection closed after %s, want about tcp_message_timeout 300ms", d)
		}
	})
	t.Run("keep-alives are not a message", func(t *testing.T) {
		if d, _ := closedAfter(t, trunkIP, "\r\n\r\n"); d < 1900*time.Millisecond {
			t.Errorf("connection closed after %s: a keep-alive was taken for a message begun", d)
		}
	})
	t.Run("a stranger's message", func(t *testing.T) {
		options := "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bK2\r\n" +
			"From: <sip:x@127.0.0.2>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: stranger-tcp\r\nCSeq: 1 OPTIONS\r\n" +
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if d, n := closedAfter(t, strangers[0], options); d > time.Second || n != 0 {
			t.Errorf("a stranger's OPTIONS got %d bytes back and its connection was closed after %s; want none, closed at once", n, d)
		}
	})
}

// A flood of unparsable datagrams and unsolicited REGISTERs grows the engine's log by a bounded amount: a
// few lines a second, each cut short. From the trunk's address each datagram is parsed and counted in
// flashotp_sip_malformed_total; from a stranger's each is dropped unread and counted in
// flashotp_sip_dropped_total{reason="stranger"}.
func TestAttackSIPMalformedLog(t *testing.T) {
	p, c, sipAddr := attackEngine(t, "", "", 0)
	to, err := net.ResolveUDPAddr("udp", sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	logBefore := len(p.stderr.String())
	const (
		n     = 1000
		size  = 1000
		batch = 100
	)
	garbage := []byte(strings.Repeat("\x01garbage ", size/9+1)[:size])
	sent := 0
	for _, src := range []struct{ ip, counter string }{
		{"127.0.0.1", "flashotp_sip_malformed_total"}, // the trunk's address (any port)
		{strangers[0], `flashotp_sip_dropped_total{reason="stranger"}`},
	} {
		from, err := net.ListenPacket("udp", src.ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer from.Close()
		for i := 0; i < n; i += batch {
			for j := 0; j < batch; j++ {
				w, err := from.WriteTo(garbage, to)
				if err != nil {
					t.Fatal(err)
				}
				sent += w
			}
			// Paced so that the socket's buffer drops none: the count must be exact.
			deadline := time.Now().Add(5 * time.Second)
			for c.metric(src.counter) < float64(i+batch) {
				if time.Now().After(deadline) {
					t.Fatalf("%s %v after %d datagrams from %s", src.counter, c.metric(src.counter), i+batch, src.ip)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		for i := 0; i < 300; i++ {
			reg := fmt.Sprintf("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKreg%d\r\n"+
				"From: <sip:x@%s>;tag=%d\r\nTo: <sip:x@%s>\r\nCall-ID: reg%d\r\nCSeq: 1 REGISTER\r\n"+
				"Contact: <sip:x@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", from.LocalAddr(), i, src.ip, i, src.ip, i, src.ip)
			w, err := from.WriteTo([]byte(reg), to)
			if err != nil {
				t.Fatal(err)
			}
			sent += w
		}
	}
	// A line of known cause after the flood's: once it is read, so is every line before it.
	c.do("GET", "/otp/status?verification_id=x", "", "X-API-Secret", "wrong")
	p.stderr.waitFor(t, regexp.MustCompile(`msg="auth failed"`), 5*time.Second)

	if got := c.metric("flashotp_sip_malformed_total"); got != n {
		t.Errorf("flashotp_sip_malformed_total = %v, want %d", got, n)
	}
	if got := c.metric(`flashotp_sip_dropped_total{reason="stranger"}`); got != n+300 {
		t.Errorf(`flashotp_sip_dropped_total{reason="stranger"} = %v, want %d`, got, n+300)
	}
	grown := p.stderr.String()[logBefore:]
	ratio := float64(len(grown)) / float64(sent)
	t.Logf("sent %d bytes, log grew %d bytes (%.4f), %d lines", sent, len(grown), ratio, strings.Count(grown, "\n"))
	if ratio > 0.05 {
		t.Errorf("log grew %d bytes for %d sent (%.3f), want under 0.05:\n%.2000s", len(grown), sent, ratio, grown)
	}
	for _, line := range strings.Split(grown, "\n") {
		if len(line) > 400 {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
	sendAndMiss(t, p, c)
}

// No TCP port listens unless a trunk uses tcp or sip.listen_tcp asks for it.
func TestAttackSIPNoTCPListenerForUDPTrunks(t *testing.T) {
	tests := []struct {
		name      string
		listenTCP string
		transport string
		listens   bool
	}{
		{"udp trunk", sip.ListenTCPAuto, "udp", false},
		{"tls trunk", sip.ListenTCPAuto, "tls", false},
		{"tcp trunk", sip.ListenTCPAuto, "tcp", true},
		{"udp trunk, listen_tcp on", sip.ListenTCPOn, "udp", true},
		{"tcp trunk, listen_tcp off", sip.ListenTCPOff, "tcp", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "127.0.0.1:5062")
			cfg.SIP.ListenTCP = tc.listenTCP
			cfg.Trunks[0].Transport = tc.transport
			m := startMain(t, cfg)
			c, err := dialFrom(strangers[0], m.SIPAddr)
			if c != nil {
				c.Close()
			}
			if listens := err == nil; listens != tc.listens {
				t.Fatalf("TCP on the SIP address %s: listening %t (%v), want %t", m.SIPAddr, listens, err, tc.listens)
			}
			if !tc.listens && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial: %v, want connection refused", err)
			}
		})
	}
}
