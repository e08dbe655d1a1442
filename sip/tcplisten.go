package sip

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// TCPLimits bound what peers may hold of the SIP TCP listener. sipgo's TCP transport reads each accepted
// connection in a goroutine of its own with no deadline and no cap, so without them idle connections
// pile up until the process runs out of file descriptors.
type TCPLimits struct {
	// MaxConns is how many accepted connections may be open at once; one more is closed at once.
	MaxConns int `mapstructure:"max_tcp_conns"`
	// MaxConnsPerSource is the same cap per remote IP address.
	MaxConnsPerSource int `mapstructure:"max_tcp_conns_per_source"`
	// IdleTimeout is the longest wait for a message to begin; the connection is closed after it.
	IdleTimeout time.Duration `mapstructure:"tcp_idle_timeout"`
	// MessageTimeout is the longest time a message may take to arrive once its first byte has, and the
	// longest a write may block.
	MessageTimeout time.Duration `mapstructure:"tcp_message_timeout"`
}

// DefaultTCPLimits are the limits sip.max_tcp_conns and the other keys default to (docs/configuration.md
// says why these figures).
var DefaultTCPLimits = TCPLimits{MaxConns: 256, MaxConnsPerSource: 32, IdleTimeout: 30 * time.Second, MessageTimeout: 5 * time.Second}

const (
	// acceptRetryMin and acceptRetryMax bound the wait after a failed accept, as net/http's Server does: a
	// process out of descriptors (EMFILE) gets some back when connections close.
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
	// tcpLogEvery spaces the lines about failed accepts and refused connections.
	tcpLogEvery = 10 * time.Second
)

// limitListener is the SIP TCP listener given to sipgo: it keeps accepting after an error, closes the
// connections over its caps at once and gives sipgo connections with deadlines.
type limitListener struct {
	net.Listener
	limits TCPLimits
	log    *slog.Logger
	// admits, when set, says whether a connection's source may be held at all: a stranger's is closed at
	// accept, before it takes a place under the caps that a trunk's connection may need.
	admits func(net.Addr) bool

	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	open     int
	bySource map[netip.Addr]int
	refused  int // since the last line about it
	failed   int // accept errors since the last line about them

	refusedLog, failedLog rate.Sometimes
}

// newLimitListener wraps inner with limits; a limit of zero takes DefaultTCPLimits' value.
func newLimitListener(inner net.Listener, limits TCPLimits, log *slog.Logger) *limitListener {
	d := DefaultTCPLimits
	if limits.MaxConns <= 0 {
		limits.MaxConns = d.MaxConns
	}
	if limits.MaxConnsPerSource <= 0 {
		limits.MaxConnsPerSource = d.MaxConnsPerSource
	}
	if limits.IdleTimeout <= 0 {
		limits.IdleTimeout = d.IdleTimeout
	}
	if limits.MessageTimeout <= 0 {
		limits.MessageTimeout = d.MessageTimeout
	}
	return &limitListener{
		Listener: inner, limits: limits, log: log, done: make(chan struct{}), bySource: map[netip.Addr]int{},
		refusedLog: rate.Sometimes{First: 1, Interval: tcpLogEvery},
		failedLog:  rate.Sometimes{First: 1, Interval: tcpLogEvery},
	}
}

// Accept returns the next connection within the caps. It returns an error only once the listener is
// closed: sipgo's Serve stops at the first error Accept gives, so every other error (EMFILE, ENFILE,
// ECONNABORTED) is retried here, after a wait that doubles from 5 ms to 1 s.
func (l *limitListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			wait = min(max(2*wait, acceptRetryMin), acceptRetryMax)
			l.mu.Lock()
			l.failed++
			l.mu.Unlock()
			l.failedLog.Do(func() {
				l.mu.Lock()
				n := l.failed
				l.failed = 0
				l.mu.Unlock()
				l.log.Error("sip tcp accept failed: retrying", "err", err, "retry_in", wait, "failures", n)
			})
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		wait = 0
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c against the caps and wraps it, or closes it (nil) when a cap is reached.
func (l *limitListener) admit(c net.Conn) net.Conn {
	if l.admits != nil && !l.admits(c.RemoteAddr()) {
		c.Close()
		return nil
	}
	src, _ := addrIP(c.RemoteAddr())
	l.mu.Lock()
	ok := l.open < l.limits.MaxConns && l.bySource[src] < l.limits.MaxConnsPerSource
	if ok {
		l.open++
		l.bySource[src]++
	} else {
		l.refused++
	}
	l.mu.Unlock()
	if !ok {
		c.Close()
		l.refusedLog.Do(func() {
			l.mu.Lock()
			n, open := l.refused, l.open
			l.refused = 0
			l.mu.Unlock()
			l.log.Warn("sip tcp connections refused: over sip.max_tcp_conns or sip.max_tcp_conns_per_source",
				"remote", src, "refused", n, "open", open)
		})
		return nil
	}
	return &limitConn{Conn: c, l: l, src: src}
}

func (l *limitListener) release(src netip.Addr) {
	l.mu.Lock()
	l.open--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
	l.mu.Unlock()
}

// Close stops Accept, also one waiting to retry.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn is an accepted connection with a read deadline on every Read: IdleTimeout while no message
// has begun, the message's start plus MessageTimeout once one has. It follows the message boundaries the
// way sipgo's stream parser finds them (headers to the empty line, then Content-Length bytes); should the
// two ever disagree, a deadline is only as long as the other, never absent.
type limitConn struct {
	net.Conn
	l         *limitListener
	src       netip.Addr
	closeOnce sync.Once

	frame    framer
	msgStart time.Time
}

// Read reads with the deadline the connection's state calls for. A deadline reached reads as io.EOF,
// which sipgo takes for a closed connection (it logs any other read error at ERROR, once per connection).
func (c *limitConn) Read(b []byte) (int, error) {
	now := time.Now()
	deadline := now.Add(c.l.limits.IdleTimeout)
	if c.frame.inMessage() {
		deadline = c.msgStart.Add(c.l.limits.MessageTimeout)
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		begun := c.frame.begun
		c.frame.feed(b[:n])
		if c.frame.begun != begun {
			c.msgStart = now // a message began in this read (the time before it, so no later)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.l.log.Debug("sip tcp connection timed out", "remote", c.RemoteAddr(), "in_message", c.frame.inMessage())
		return n, io.EOF
	}
	return n, err
}

// Write writes within MessageTimeout: a peer that stops reading cannot hold a transaction's goroutine.
func (c *limitConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.l.limits.MessageTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// Close closes the connection and gives its place back, once.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.l.release(c.src) })
	return err
}

// framer follows SIP message boundaries on a stream (RFC 3261 7.5 and 18.3): CRLFs between messages are
// keep-alives, a message's headers end with an empty line, its body is Content-Length bytes.
type framer struct {
	state  int // frameIdle, frameHead or frameBody
	begun  int // messages begun so far
	line   []byte
	long   bool // the current line is longer than line keeps
	length int  // Content-Length of the message being read
	body   int  // body bytes still to come
}

const (
	frameIdle = iota
	frameHead
	frameBody
	// frameLineKeep is as much of a header line as the framer keeps: enough for "Content-Length: " and
	// any length sipgo would take.
	frameLineKeep = 64
)

func (f *framer) inMessage() bool { return f.state != frameIdle }

func (f *framer) feed(b []byte) {
	for len(b) > 0 {
		switch f.state {
		case frameIdle:
			i := 0
			for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
				i++
			}
			b = b[i:]
			if len(b) > 0 {
				f.state, f.begun, f.line, f.long, f.length = frameHead, f.begun+1, f.line[:0], false, 0
			}
		case frameHead:
			c := b[0]
			b = b[1:]
			if c != '\n' {
				if len(f.line) < frameLineKeep {
					f.line = append(f.line, c)
				} else {
					f.long = true
				}
				continue
			}
			line := strings.TrimSuffix(string(f.line), "\r")
			long := f.long
			f.line, f.long = f.line[:0], false
			switch {
			case line == "" && !long:
				f.state, f.body = frameIdle, f.length
				if f.length > 0 {
					f.state = frameBody
				}
			case !long:
				if name, value, ok := strings.Cut(line, ":"); ok {
					if name = strings.TrimSpace(name); strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "l") {
						if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n > 0 {
							f.length = n
						}
					}
				}
			}
		case frameBody:
			n := min(f.body, len(b))
			f.body -= n
			b = b[n:]
			if f.body == 0 {
				f.state = frameIdle
			}
		}
	}
}
