package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Bounds of the connection front (see Listener).
const (
	// acceptBackoffMin and acceptBackoffMax bound the wait after a failed accept: long enough not to spin
	// while descriptors are exhausted, short enough to serve again soon after they are freed.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// lingerTime and lingerBytes bound how long and how much of a request's unread rest (a body refused
	// over max_body_bytes) is read and dropped before the socket is closed: closing with unread input
	// makes the kernel reset the connection, and the client loses the 413 it was sent.
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
	// connLogEvery: at most one line per this long about refused connections or failed accepts; the
	// counts of what was left out go in the next line.
	connLogEvery = 10 * time.Second
)

// ListenerConfig bounds the connections a Listener holds open.
type ListenerConfig struct {
	// MaxConns caps the connections open at once; past it a new connection is closed at once. 0: no cap.
	MaxConns int
	// MaxConnsPerIP caps the connections open at once from one address; 0: no cap. The trusted proxies
	// are exempt (every client behind them shares their address) and held only to MaxConns.
	MaxConnsPerIP int
	// Trusted are the addresses exempt from MaxConnsPerIP.
	Trusted []netip.Prefix
}

// Listener wraps the API's net.Listener so that no client can exhaust the engine's descriptors or stop it
// serving: connections are capped in all and per source address (a connection over a cap is closed as
// soon as it is accepted, so it holds a descriptor for no time), and a failed accept (EMFILE, ENFILE, …)
// is retried with a backoff and logged, never returned: fasthttp's Serve, like net/http's, would return on
// it and the engine would exit.
type Listener struct {
	net.Listener
	cfg ListenerConfig
	log *slog.Logger

	closed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	open  int
	perIP map[netip.Addr]int

	logLimit  *rate.Limiter
	refused   atomic.Int64 // connections closed over a cap since the last line
	failed    atomic.Int64 // accepts failed since the last line
	lastError atomic.Value // the last accept error, for the line
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{
		Listener: ln, cfg: cfg, log: log, closed: make(chan struct{}), perIP: map[netip.Addr]int{},
		logLimit: rate.NewLimiter(rate.Every(connLogEvery), 1),
	}
}

// Accept returns the next connection within the caps. It returns an error only once the listener is
// closed (or on an error no wait can cure).
func (l *Listener) Accept() (net.Conn, error) {
	backoff := acceptBackoffMin
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !retryable(err) {
				return nil, err
			}
			l.failed.Add(1)
			l.lastError.Store(err.Error())
			l.report()
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, acceptBackoffMax)
			continue
		}
		backoff = acceptBackoffMin
		if lc, ok := l.admit(c); ok {
			return lc, nil
		}
		_ = c.Close()
		l.refused.Add(1)
		l.report()
	}
}

// retryable reports whether a failed accept may succeed later: out of descriptors or memory, a
// connection aborted before it was accepted, or any timeout. A closed listener is not.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// report logs refused connections and failed accepts, at most once per connLogEvery.
func (l *Listener) report() {
	if !l.logLimit.Allow() {
		return
	}
	refused, failed := l.refused.Swap(0), l.failed.Swap(0)
	if failed > 0 {
		last, _ := l.lastError.Load().(string)
		l.log.Error("http accept failing, retrying", "failed", failed, "err", last)
	}
	if refused > 0 {
		l.log.Warn("http connections over the cap closed", "refused", refused, "max_conns", l.cfg.MaxConns, "max_conns_per_ip", l.cfg.MaxConnsPerIP)
	}
}

// admit counts c if it is within the caps.
func (l *Listener) admit(c net.Conn) (net.Conn, bool) {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	perIP := l.cfg.MaxConnsPerIP > 0 && !l.trusted(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns {
		return nil, false
	}
	if perIP && l.perIP[ip] >= l.cfg.MaxConnsPerIP {
		return nil, false
	}
	l.open++
	if perIP {
		l.perIP[ip]++
	}
	return &conn{Conn: c, l: l, ip: ip, perIP: perIP}, true
}

func (l *Listener) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *Listener) release(ip netip.Addr, perIP bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if perIP {
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}
}

// Open is the number of connections held open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Close closes the listener; an Accept waiting out a backoff returns.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// conn is an admitted connection: its slot is freed when it is closed, after its unread input is drained.
type conn struct {
	net.Conn
	l     *Listener
	ip    netip.Addr
	perIP bool
	once  sync.Once
}

// Close half-closes the connection and reads what the client still sends (bounded by lingerTime and
// lingerBytes) in the background before closing it, so that a response to a request not read whole (a
// body refused at max_body_bytes) reaches the client. The slot stays taken until then: the drains are
// bounded by the caps too.
func (c *conn) Close() error {
	c.once.Do(func() {
		cw, ok := c.Conn.(interface{ CloseWrite() error })
		if !ok || cw.CloseWrite() != nil {
			_ = c.Conn.Close()
			c.l.release(c.ip, c.perIP)
			return
		}
		go func() {
			defer c.l.release(c.ip, c.perIP)
			defer c.Conn.Close()
			if c.Conn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
			}
		}()
	})
	return nil
}
