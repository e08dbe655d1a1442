package httpapi

import (
	"container/list"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"flashotp/setting"

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
	// MaxConns caps the connections open at once. 0: no cap. At the cap, a new connection takes the place of
	// the oldest one that has not been answered yet (an idle connection that never sent a whole request is
	// the cheapest way to hold a place); with none such, the new one is closed at once.
	MaxConns int
	// MaxConnsPerIP caps the connections open at once from one address; 0: no cap. The trusted proxies
	// are exempt (every client behind them shares their address) and held only to MaxConns.
	MaxConnsPerIP int
	// Trusted are the addresses exempt from MaxConnsPerIP.
	Trusted []netip.Prefix
}

// Listener wraps the API's net.Listener so that no client can exhaust the engine's descriptors or stop it
// serving: connections are capped in all and per source address (a connection over a cap is closed as
// soon as it is accepted, so it holds a descriptor for no time; at the cap in all, the oldest connection
// not answered yet is closed for it instead, so that idle connections from many addresses cannot keep a
// real client out), and a failed accept (EMFILE, ENFILE, …)
// is retried with a backoff and logged, never returned: fasthttp's Serve, like net/http's, would return on
// it and the engine would exit.
type Listener struct {
	net.Listener
	cfg ListenerConfig
	log *slog.Logger

	closed    chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	open       int
	perIP      map[netip.Addr]int
	unanswered *list.List // of *conn, oldest first: the connections nothing was written to yet

	logLimit  *rate.Limiter
	refused   atomic.Int64 // connections closed over a cap since the last line
	evicted   atomic.Int64 // unanswered connections closed for a new one since the last line
	failed    atomic.Int64 // accepts failed since the last line
	lastError atomic.Value // the last accept error, for the line
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{
		Listener: ln, cfg: cfg, log: log, closed: make(chan struct{}), perIP: map[netip.Addr]int{}, unanswered: list.New(),
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
	refused, failed, evicted := l.refused.Swap(0), l.failed.Swap(0), l.evicted.Swap(0)
	if failed > 0 {
		last, _ := l.lastError.Load().(string)
		l.log.Error("http accept failing, retrying", "failed", failed, "err", last)
	}
	if refused > 0 || evicted > 0 {
		l.log.Warn("http connections over the cap closed", "refused", refused, "unanswered_closed", evicted,
			"max_conns", l.cfg.MaxConns, "max_conns_per_ip", l.cfg.MaxConnsPerIP)
	}
}

// admit counts c if it is within the caps, closing the oldest unanswered connection for it at the cap in
// all.
func (l *Listener) admit(c net.Conn) (net.Conn, bool) {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	perIP := l.cfg.MaxConnsPerIP > 0 && !l.trusted(ip)
	var victim *conn
	l.mu.Lock()
	if perIP && l.perIP[ip] >= l.cfg.MaxConnsPerIP {
		l.mu.Unlock()
		return nil, false
	}
	if l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns {
		oldest := l.unanswered.Front()
		if oldest == nil {
			l.mu.Unlock()
			return nil, false
		}
		victim = oldest.Value.(*conn)
		l.releaseLocked(victim)
	}
	l.open++
	if perIP {
		l.perIP[ip]++
	}
	lc := &conn{Conn: c, l: l, ip: ip, perIP: perIP}
	lc.elem = l.unanswered.PushBack(lc)
	l.mu.Unlock()
	if victim != nil {
		// Its place is already free; its reader sees the close and closes it again, which does nothing.
		_ = victim.Conn.Close()
		l.evicted.Add(1)
		l.report()
	}
	return lc, true
}

func (l *Listener) trusted(ip netip.Addr) bool { return setting.Contains(l.cfg.Trusted, ip) }

// release frees c's place, once.
func (l *Listener) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked(c)
}

func (l *Listener) releaseLocked(c *conn) {
	if c.released {
		return
	}
	c.released = true
	l.open--
	if c.perIP {
		if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
			delete(l.perIP, c.ip)
		}
	}
	if c.elem != nil {
		l.unanswered.Remove(c.elem)
		c.elem = nil
	}
}

// answered takes c off the list of connections that may be closed for a new one.
func (l *Listener) answered(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem != nil {
		l.unanswered.Remove(c.elem)
		c.elem = nil
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
	l        *Listener
	ip       netip.Addr
	perIP    bool
	once     sync.Once
	answered atomic.Bool

	// Guarded by l.mu.
	released bool
	elem     *list.Element // in l.unanswered until something is written
}

// Write marks the connection answered, so it is not closed for a new one, and writes b.
func (c *conn) Write(b []byte) (int, error) {
	if !c.answered.Load() {
		c.answered.Store(true)
		c.l.answered(c)
	}
	return c.Conn.Write(b)
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
			c.l.release(c)
			return
		}
		go func() {
			defer c.l.release(c)
			defer c.Conn.Close()
			if c.Conn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
			}
		}()
	})
	return nil
}
