package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/internal/peers"
	"flashotp/internal/rawhttp"
)

// attackNofile is the descriptor limit the engine runs with in these probes: a flood up to the limit
// takes a few thousand sockets rather than the machine's 20,000.
const attackNofile = 1024

// serveNofile starts `flashotp serve` with the YAML config and its descriptor limit lowered to nofile.
func serveNofile(t *testing.T, config string, nofile int) (*proc, client) {
	t.Helper()
	prlimit := peers.Require(t, "prlimit", "util-linux")
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	lim := fmt.Sprintf("--nofile=%d:%d", nofile, nofile)
	p := startCmd(t, exec.Command(prlimit, lim, "--", binary(t), "serve", "--config", path))
	m := p.stderr.waitFor(t, servingLine, 15*time.Second)
	return p, client{t, "http://" + m[1]}
}

// alive fails the test if the engine process has exited.
func alive(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the engine exited:\n%s", p.stderr.String())
	default:
	}
}

// Idle connections past the descriptor limit neither stop the engine nor keep a client at another address
// from sending; once they end, the engine serves every client.
func TestAttackHTTPConnectionFlood(t *testing.T) {
	p, c := serveNofile(t, withoutLimits(engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")), attackNofile)
	addr := strings.TrimPrefix(c.base, "http://")

	// One stranger: held to http.max_conns_per_ip, the rest of the engine's capacity stays free.
	conns := flood(t, addr, strangers[:1], 2*attackNofile)
	if len(conns) < attackNofile {
		t.Fatalf("only %d connections opened, want at least the descriptor limit %d; the engine:\n%s", len(conns), attackNofile, p.stderr.String())
	}
	if a, ok := c.trySend(recipient); !ok || a.status != 202 {
		alive(t, p)
		t.Fatalf("send during a flood from another address: %v %d %s", ok, a.status, a.raw)
	}
	// Many: held to http.max_conns, half the descriptor limit.
	conns = append(conns, flood(t, addr, strangers[1:5], attackNofile/2)...)
	alive(t, p)
	closeAll(conns)
	// The engine closes its ends as the clients' FINs arrive: sends succeed again within a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, ok := c.trySend(recipient)
		if ok && a.status == 202 {
			break
		}
		alive(t, p)
		if time.Now().After(deadline) {
			t.Fatalf("no send served after the flood ended: %v %d %s", ok, a.status, a.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	alive(t, p)
}

// Requests a reverse proxy could frame otherwise than the engine are refused 400 and their connection
// closed: the request smuggled in their body is never answered.
func TestAttackHTTPSmuggling(t *testing.T) {
	_, c := serve(t, engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"))
	addr := strings.TrimPrefix(c.base, "http://")
	smuggled := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for name, req := range map[string]string{
		"content-length and chunked": "POST /otp/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"two content-lengths":        "POST /otp/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\nContent-Length: 0\r\n\r\n" + smuggled,
		"bare CR":                    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + smuggled,
		"NUL":                        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + smuggled,
	} {
		t.Run(name, func(t *testing.T) {
			res, bodies, closed := rawhttp.Exchange(t, addr, req, 3)
			if len(res) != 1 || res[0].StatusCode != 400 || !closed {
				t.Fatalf("responses %q, connection closed %t; want one 400 and the connection closed", bodies, closed)
			}
		})
	}
}

// rssBytes is the resident memory of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A thousand unauthenticated requests announcing a 1 MiB body, each sending half of it and holding the
// rest, leave the engine's memory bounded: the body is refused from its Content-Length, never read.
func TestAttackHTTPBodyMemory(t *testing.T) {
	const (
		clients   = 1000
		sources   = 4 // under http.max_conns_per_ip each
		bodySize  = 1 << 20
		sent      = bodySize / 2
		maxGrowth = 200 << 20
	)
	p, c := serve(t, engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"))
	addr := strings.TrimPrefix(c.base, "http://")
	before := rssBytes(t, p.cmd.Process.Pid)

	head := fmt.Sprintf("POST /otp/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", bodySize)
	chunk := []byte(`{"appid":"demo","reference":"` + strings.Repeat("a", 64<<10) + `"`)
	var wg sync.WaitGroup
	conns := make(chan net.Conn, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}, Timeout: 5 * time.Second}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			conns <- conn
			_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(conn, head); err != nil {
				return
			}
			for n := 0; n < sent; n += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					return // refused and closed: what the fix does
				}
			}
		}()
	}
	wg.Wait()
	// The engine may still be reading what was sent: its peak over the next second is the figure.
	after := before
	for range 10 {
		after = max(after, rssBytes(t, p.cmd.Process.Pid))
		time.Sleep(100 * time.Millisecond)
	}
	close(conns)
	for conn := range conns {
		conn.Close()
	}
	alive(t, p)
	growth := after - before
	t.Logf("engine RSS %d MiB before, %d MiB with %d clients each sending %d KiB of a %d KiB body: +%d MiB",
		before>>20, after>>20, clients, sent>>10, bodySize>>10, growth>>20)
	if growth > maxGrowth {
		t.Fatalf("engine RSS grew %d MiB, want under %d MiB", growth>>20, maxGrowth>>20)
	}
	if a, ok := c.trySend(recipient); !ok || a.status != 202 {
		t.Fatalf("send after the flood: %v %d %s", ok, a.status, a.raw)
	}
}
