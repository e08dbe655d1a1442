package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first fails Accepts with err, then accepts from the real listener.
type failingListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

var _ net.Listener = (*failingListener)(nil)

// Accept errors (EMFILE and the like) are retried with a growing wait and logged once, never returned:
// sipgo's Serve would stop at the first.
func TestLimitListenerRetriesAcceptErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}
	fl.fails.Store(5)
	var logs bytes.Buffer
	l := newLimitListener(fl, TCPLimits{}, slog.New(slog.NewTextHandler(&logs, nil)))
	defer l.Close()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	got, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v, want the connection after 5 failures", err)
	}
	got.Close()
	// 5 + 10 + 20 + 40 + 80 ms.
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("5 failures retried in %s, want about 155 ms", d)
	}
	if n := strings.Count(logs.String(), "sip tcp accept failed"); n != 1 {
		t.Errorf("%d lines about failed accepts, want 1 (one per 10 s):\n%s", n, logs.String())
	}

	// Closed, also while waiting to retry: Accept returns net.ErrClosed.
	fl.fails.Store(1000)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still retrying after Close")
	}
}

// Connections over either cap are closed at once; closing one gives its place back.
// acceptAndDial accepts from l, passing each connection on, and returns a dialer to l from a loopback
// source address.
func acceptAndDial(t *testing.T, l *limitListener) (<-chan net.Conn, func(src string) net.Conn) {
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return accepted, dial
}

func TestLimitListenerCaps(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, TCPLimits{MaxConns: 3, MaxConnsPerSource: 2}, slog.New(slog.DiscardHandler))
	defer l.Close()
	accepted, dial := acceptAndDial(t, l)
	// closedAtOnce reports whether the listener closed c (EOF) rather than holding it.
	closedAtOnce := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	a1, a2 := dial("127.0.0.2"), dial("127.0.0.2")
	<-accepted
	<-accepted
	if a3 := dial("127.0.0.2"); !closedAtOnce(a3) {
		t.Error("a third connection from one source was held (max 2 per source)")
	}
	dial("127.0.0.3")
	held := <-accepted // its server side
	if b2 := dial("127.0.0.3"); !closedAtOnce(b2) {
		t.Error("a fourth connection was held (max 3)")
	}
	held.Close()
	dial("127.0.0.4")
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("no place given back by a closed connection")
	}
	for _, c := range []net.Conn{a1, a2} {
		if closedAtOnce(c) {
			t.Error("a connection within the caps was closed")
		}
	}
}

// The framer finds message boundaries as sipgo's stream parser does, however the bytes are split.
func TestFramer(t *testing.T) {
	msg := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello"
	compact := "SIP/2.0 200 OK\r\nl:  3\r\n\r\nabc"
	tests := []struct {
		name      string
		stream    string
		inMessage bool
		begun     int
	}{
		{"nothing", "", false, 0},
		{"keep-alives", "\r\n\r\n\r\n", false, 0},
		{"start line only", "OPTIONS sip:a@b SIP/2.0\r\n", true, 1},
		{"headers without the empty line", msg[:60], true, 1},
		{"body short", msg[:len(msg)-1], true, 1},
		{"whole message", msg, false, 1},
		{"two messages and a keep-alive", msg + "\r\n\r\n" + msg, false, 2},
		{"compact Content-Length", compact, false, 1},
		{"no body", "BYE sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n", false, 1},
		{"bare LF lines", "BYE sip:a@b SIP/2.0\nl: 2\n\nok", false, 1},
		{"a second message begun", msg + "INV", true, 2},
		{"a long line", "X: " + strings.Repeat("y", 500) + "\r\nContent-Length: 1\r\n\r\n", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 7, len(tc.stream) + 1} {
				var f framer
				for s := tc.stream; len(s) > 0; {
					n := min(step, len(s))
					f.feed([]byte(s[:n]))
					s = s[n:]
				}
				if f.inMessage() != tc.inMessage || f.begun != tc.begun {
					t.Errorf("in %d-byte reads: inMessage %t begun %d, want %t %d", step, f.inMessage(), f.begun, tc.inMessage, tc.begun)
				}
			}
		})
	}
}

// sipgo's lines go out at most 10 a second, each value cut to 64 printable bytes, the rest counted as
// suppressed=N on the next line; every malformed message is counted.
func TestBoundedLogger(t *testing.T) {
	var out bytes.Buffer
	var malformed int
	log := BoundedLogger(slog.New(slog.NewTextHandler(&out, nil)), func() { malformed++ }).With("caller", "Transport<UDP>")
	data := "\x00\xff" + strings.Repeat("A", 5000)
	for i := 0; i < 100; i++ {
		log.Error(malformedMsg, "data", data, "error", errors.New(strings.Repeat("e", 500)))
	}
	log.Debug("not written at info")
	if malformed != 100 {
		t.Errorf("malformed counted %d times, want 100", malformed)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) > sipgoLogBurst+2 {
		t.Errorf("%d lines written for 100 at once, want about %d", len(lines), sipgoLogBurst)
	}
	for _, l := range lines {
		if len(l) > 300 {
			t.Errorf("a line of %d bytes: %.100s", len(l), l)
		}
		if strings.IndexByte(l, 0) >= 0 || strings.IndexByte(l, 0xff) >= 0 {
			t.Errorf("a control byte in %q", l)
		}
	}
	if !strings.Contains(lines[0], "caller=Transport<UDP>") || !strings.Contains(lines[0], `data=..AAAA`) {
		t.Errorf("first line %q lacks its caller or data", lines[0])
	}
	out.Reset()
	time.Sleep(150 * time.Millisecond) // lets the limiter refill one token: its clock is the real one
	log.Warn("SIP request handler not found", "method", "REGISTER")
	if !strings.Contains(out.String(), "suppressed=") {
		t.Errorf("the line after the dropped ones does not say how many: %q", out.String())
	}
}

// A stranger's connections are closed at accept and take no place under the caps: the trunk's still get in.
func TestLimitListenerRefusesStrangers(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := newPeerFilter([]string{"127.0.0.2:5060"}, nil, func(string) {}, slog.New(slog.DiscardHandler))
	f.refresh(context.Background())
	l := newLimitListener(inner, TCPLimits{MaxConns: 2, MaxConnsPerSource: 2}, slog.New(slog.DiscardHandler))
	l.admits = f.admits
	defer l.Close()
	accepted, dial := acceptAndDial(t, l)
	for range 5 {
		c := dial("127.0.0.3")
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("a stranger's connection was held: read %v, want EOF", err)
		}
	}
	dial("127.0.0.2")
	dial("127.0.0.2")
	for i := range 2 {
		select {
		case <-accepted:
		case <-time.After(2 * time.Second):
			t.Fatalf("trunk connection %d not accepted after the strangers'", i+1)
		}
	}
}
