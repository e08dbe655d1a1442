package httpapi_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flashotp/httpapi"
	"flashotp/internal/testwait"
)

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connections over the caps (in all, per address) are closed as soon as accepted; a trusted proxy is held
// only to the cap in all; a closed connection frees its slot.
// acceptAll accepts from l until the test ends, passing each connection on.
func acceptAll(t *testing.T, l *httpapi.Listener) <-chan net.Conn {
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return accepted
}

func TestListenerCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := httpapi.NewListener(ln, httpapi.ListenerConfig{
		MaxConns: 5, MaxConnsPerIP: 2, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")},
	}, slog.New(slog.DiscardHandler))
	accepted := acceptAll(t, l)
	addr := ln.Addr().String()

	// admitted returns the client's and the server's end, answered (so that it is not closed for a newer one).
	admitted := func(src string) (net.Conn, net.Conn) {
		t.Helper()
		client := dialFrom(t, src, addr)
		select {
		case c := <-accepted:
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			return client, c
		case <-time.After(5 * time.Second):
			t.Fatalf("connection from %s not admitted", src)
			return nil, nil
		}
	}
	refused := func(src string) {
		t.Helper()
		c := dialFrom(t, src, addr)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection from %s over the cap not closed: %v", src, err)
		}
	}

	client, first := admitted("127.0.0.2")
	admitted("127.0.0.2")
	refused("127.0.0.2") // per address
	admitted("127.0.0.1")
	admitted("127.0.0.9")
	admitted("127.0.0.9") // trusted: past the per-address cap
	refused("127.0.0.3")  // in all
	if n := l.Open(); n != 5 {
		t.Fatalf("Open() = %d, want 5", n)
	}
	first.Close()
	client.Close() // the server drains the connection until the client's end closes, then frees the slot
	if !testwait.Until(5*time.Second, func() bool { return l.Open() == 4 }) {
		t.Fatalf("Open() = %d after a close, want 4", l.Open())
	}
	admitted("127.0.0.2")
}

// At the cap in all, a new connection takes the place of the oldest one not answered yet: idle connections
// from many addresses cannot keep a real client out. Answered connections keep theirs; with no unanswered
// one left, the new one is refused.
func TestListenerClosesOldestUnanswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := httpapi.NewListener(ln, httpapi.ListenerConfig{MaxConns: 3, MaxConnsPerIP: 3}, slog.New(slog.DiscardHandler))
	accepted := acceptAll(t, l)
	addr := ln.Addr().String()
	open := func(src string) (client, server net.Conn) {
		t.Helper()
		client = dialFrom(t, src, addr)
		select {
		case server = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection from %s not admitted", src)
		}
		t.Cleanup(func() { server.Close() })
		return client, server
	}
	// closed reports whether the client's end sees the connection closed (rather than still open).
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}

	idle1, _ := open("127.0.0.2")
	idle2, _ := open("127.0.0.3")
	answeredClient, answered := open("127.0.0.4")
	if _, err := answered.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	open("127.0.0.5") // takes idle1's place
	if !closed(idle1) {
		t.Error("the oldest unanswered connection was not closed for a new one at the cap")
	}
	if closed(idle2) || closed(answeredClient) {
		t.Error("a connection other than the oldest unanswered one was closed")
	}
	if n := l.Open(); n != 3 {
		t.Errorf("Open() = %d, want 3", n)
	}
}

// flakyListener fails its first n accepts with err, then accepts from a pipe; with n < 0 it fails forever.
type flakyListener struct {
	mu     sync.Mutex
	n      int
	err    error
	closed chan struct{}
}

var _ net.Listener = (*flakyListener)(nil)

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
		return nil, net.ErrClosed
	default:
	}
	if f.n != 0 {
		f.n--
		return nil, f.err
	}
	c, _ := net.Pipe()
	return c, nil
}

func (f *flakyListener) Close() error   { close(f.closed); return nil }
func (f *flakyListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// A failed accept (out of descriptors) is retried and logged, never returned: fasthttp would stop serving
// on it and the engine exit.
func TestListenerRetriesAcceptErrors(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var logs bytes.Buffer
	l := httpapi.NewListener(&flakyListener{n: 5, err: emfile, closed: make(chan struct{})}, httpapi.ListenerConfig{}, slog.New(slog.NewTextHandler(&logs, nil)))
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	c.Close()
	if got := strings.Count(logs.String(), "http accept failing"); got != 1 {
		t.Errorf("%d log lines about failed accepts, want 1 (rate-limited):\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("the log does not say why:\n%s", logs.String())
	}

	t.Run("closed while backing off", func(t *testing.T) {
		l := httpapi.NewListener(&flakyListener{n: -1, err: emfile, closed: make(chan struct{})}, httpapi.ListenerConfig{}, slog.New(slog.DiscardHandler))
		errc := make(chan error, 1)
		go func() { _, err := l.Accept(); errc <- err }()
		l.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Accept did not return after Close")
		}
	})
	t.Run("other errors returned", func(t *testing.T) {
		l := httpapi.NewListener(&flakyListener{n: 1, err: io.ErrUnexpectedEOF, closed: make(chan struct{})}, httpapi.ListenerConfig{}, slog.New(slog.DiscardHandler))
		if _, err := l.Accept(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Accept: %v, want the error", err)
		}
	})
}
