package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// Config configures a UA.
type Config struct {
	// Listen is the host:port the UA binds; port 0 picks a free one.
	Listen string
	// PublicAddress, when set, is the host[:port] put in Via, Contact and SDP instead of the bound address.
	PublicAddress string
	// TLS is the client configuration for trunks reached over TLS; nil: the system's roots.
	TLS    *tls.Config
	Logger *slog.Logger
	// TCP binds a TCP listener on the UDP socket's address too, for peers that open connections to the UA.
	TCP bool
	// TCPLimits bound that listener; zero values take DefaultTCPLimits'.
	TCPLimits TCPLimits
	// Malformed, if not nil, is called for each SIP message that could not be parsed.
	Malformed func()
	// Peers are the host:port of the trunks and their outbound proxies. SIP messages are read only from
	// their hosts' IP addresses (any port) and from AcceptFrom; everything else is dropped before it is
	// parsed, without an answer. A host name is resolved at Listen and every PeerRefresh after. With neither
	// Peers nor AcceptFrom, nothing is read.
	Peers      []string
	AcceptFrom []netip.Prefix
	// Dropped, if not nil, is called for each message dropped, with why: DropStranger or DropDialogs.
	Dropped func(reason string)
	// TLSListen, when set, is the host:port of a TLS listener for peers that open TLS connections to the UA
	// (a carrier's SBC sending its responses and requests back on a connection of its own), served with
	// TLSServer (its certificate; a ClientCAs pool and RequireAndVerifyClientCert to check the peer's). The
	// peers and TCPLimits apply to it as to the TCP listener.
	TLSListen string
	TLSServer *tls.Config
	// Inbound are the trunks whose INVITEs the UA takes (channel inbound: SetInbound's handler hears of each,
	// and it is rejected unanswered). An INVITE from any other peer is refused 403, without a dialog.
	Inbound []InboundTrunk
}

// UA is a running SIP user agent. It is safe for concurrent use: each Dial is one call.
type UA struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client // UDP: requests leave from the listening socket
	stream *sipgo.Client // TCP and TLS: connections to the trunk, reused
	conn   net.PacketConn
	tcp    net.Listener // same address as conn, for requests peers open over TCP; nil without Config.TCP
	tls    net.Listener // Config.TLSListen's; nil without it
	media  *MediaSink
	log    *slog.Logger
	peers  *peerFilter
	// inbound are Config.Inbound with the filters of their addresses; onInbound is SetInbound's handler.
	inbound   []inboundTrunk
	onInbound atomic.Pointer[func(InboundCall)]
	seen      seenInvites     // inbound INVITEs told to onInbound: their retransmissions are not
	done      context.Context // cancelled by Close: ends the peers' refresh
	stop      context.CancelFunc

	host string // for Via, Contact, SDP
	port int

	wg      sync.WaitGroup // serving goroutines and BYE clean-ups
	closeMu sync.RWMutex   // orders track's wg.Add before Close's wg.Wait
	closing bool

	calls sync.Map // Call-ID → chan *sipgosip.Response: responses no transaction matched, for the call
	ended sync.Map // Call-ID → *dial: calls that ended, for watchLateAnswer and onBye
	icmp  sync.Map // Call-ID → chan error: ICMP errors (port unreachable) caused by the call's UDP requests
	byes  sync.Map // Call-ID → chan struct{}: the callee's BYE, for a voice call while it plays
}

// Listen binds the UA's SIP socket and its media socket and starts serving.
func Listen(cfg Config) (*UA, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	conn, tcp, err := listenBoth(cfg.Listen, cfg.TCP)
	if err != nil {
		return nil, err
	}
	bound := conn.LocalAddr().(*net.UDPAddr)
	u := &UA{log: log, host: bound.IP.String(), port: bound.Port}
	u.done, u.stop = context.WithCancel(context.Background())
	u.peers = newPeerFilter(cfg.Peers, cfg.AcceptFrom, cfg.Dropped, log)
	u.peers.refresh(context.Background())
	for _, t := range cfg.Inbound {
		f := newPeerFilter(t.Peers, t.AcceptFrom, nil, log)
		f.refresh(context.Background())
		u.inbound = append(u.inbound, inboundTrunk{InboundTrunk: t, from: f})
	}
	if tcp != nil {
		l := newLimitListener(tcp, cfg.TCPLimits, log)
		l.admits = u.peers.admits
		u.tcp = l
	}
	if cfg.TLSListen != "" {
		raw, err := net.Listen("tcp", cfg.TLSListen)
		if err != nil {
			conn.Close()
			if tcp != nil {
				tcp.Close()
			}
			return nil, fmt.Errorf("sip.tls_listen %s: %w", cfg.TLSListen, err)
		}
		l := newLimitListener(raw, cfg.TCPLimits, log)
		l.admits = u.peers.admits
		u.tls = tls.NewListener(l, cfg.TLSServer)
	}
	sipLog := BoundedLogger(log, cfg.Malformed)
	u.conn = watchICMP(conn, u.unreachable)
	if cfg.PublicAddress != "" {
		if h, p, err := net.SplitHostPort(cfg.PublicAddress); err == nil {
			u.host = h
			u.port, _ = strconv.Atoi(p)
		} else {
			u.host = cfg.PublicAddress
		}
	}
	fail := func(err error) (*UA, error) {
		u.stop()
		u.closeParts()
		return nil, err
	}
	u.media, err = ListenMedia(net.JoinHostPort(bound.IP.String(), "0"), log)
	if err != nil {
		return fail(err)
	}
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("flashotp"), sipgo.WithUserAgentHostname(u.host),
		sipgo.WithUserAgenTLSConfig(cfg.TLS),
		sipgo.WithUserAgentTransportLayerOptions(sipgosip.WithTransportLayerLogger(sipLog),
			sipgosip.WithTransportLayerReadFilter(u.peers.read)),
		sipgo.WithUserAgentTransactionLayerOptions(sipgosip.WithTransactionLayerLogger(sipLog),
			sipgosip.WithTransactionLayerUnhandledResponseHandler(u.stray)))
	if err != nil {
		return fail(err)
	}
	if u.srv, err = sipgo.NewServer(u.ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return fail(err)
	}
	// Every request the UA sends (INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE) takes its Via from one of
	// these two clients (sipgo builds it when the request has none; a CANCEL and the ACK of a failure copy
	// the INVITE's). WithClientNAT puts ;rport in it (RFC 3581), on every transport: over UDP a trunk answers
	// to the port the request came from, the NAT's; over TCP and TLS, to the connection the request came
	// on. Without it, a callee that honours sent-by (linphone's belle-sip) answers a TCP INVITE on a new
	// connection to the Via's host and port (the UDP port, or public_address), where nothing listens: the
	// phone rings, the 180 never comes back, and the call ends no_ring. sipgo reads every connection it
	// opens and hands its responses to the transactions by Via branch, whatever the sent-by says.
	u.client, err = sipgo.NewClient(u.ua,
		sipgo.WithClientLogger(sipLog),
		sipgo.WithClientHostname(u.host),
		sipgo.WithClientPort(u.port),
		sipgo.WithClientConnectionAddr(bound.String()), // INVITEs leave from the listening socket
		sipgo.WithClientNAT(),
	)
	if err != nil {
		return fail(err)
	}
	if u.stream, err = sipgo.NewClient(u.ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(u.host), sipgo.WithClientPort(u.port),
		sipgo.WithClientNAT()); err != nil {
		return fail(err)
	}
	// Only the peers' requests get here.
	u.srv.OnOptions(u.onOptions)
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(func(*sipgosip.Request, sipgosip.ServerTransaction) {}) // an ACK is never answered
	u.srv.OnCancel(u.onCancel)
	u.srv.OnBye(u.onBye)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = u.srv.ServeUDP(u.conn) // returns when conn is closed
	}()
	if u.tls != nil {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			_ = u.srv.ServeTLS(u.tls) // returns when u.tls is closed
		}()
	}
	if u.tcp != nil {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			_ = u.srv.ServeTCP(u.tcp) // returns when u.tcp is closed: its Accept retries every other error
		}()
	}
	// ServeUDP registers the socket with the transport layer in its goroutine; a Dial before that would
	// bind a second socket to the same address.
	for i := 0; ; i++ {
		if c, _ := u.ua.TransportLayer().GetConnection("udp", bound.String()); c != nil {
			break
		}
		if i == 1000 {
			return fail(fmt.Errorf("sip listen %s: transport did not start", bound))
		}
		time.Sleep(time.Millisecond)
	}
	if len(u.peers.names) > 0 {
		u.wg.Add(1)
		go u.refreshPeers()
	}
	return u, nil
}

// refreshPeers resolves the peers' host names every PeerRefresh until Close, so that a trunk that moves to
// another address (its DNS changed) is still heard.
func (u *UA) refreshPeers() {
	defer u.wg.Done()
	t := time.NewTicker(PeerRefresh)
	defer t.Stop()
	for {
		select {
		case <-u.done.Done():
			return
		case <-t.C:
			u.peers.refresh(u.done)
			for _, t := range u.inbound {
				t.from.refresh(u.done)
			}
		}
	}
}

// listenBoth binds UDP, and TCP on the same address if withTCP (else the listener is nil). With port 0 the
// UDP socket picks the port, and another try is made if TCP finds that port taken (by some connection's
// ephemeral port).
func listenBoth(addr string, withTCP bool) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sip listen %s: %w", addr, err)
		}
		sizeBuffers(conn)
		if !withTCP {
			return conn, nil, nil
		}
		bound := conn.LocalAddr().String()
		tcp, err := net.Listen("tcp", bound)
		if err == nil {
			return conn, tcp, nil
		}
		conn.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" || attempt == 10 {
			return nil, nil, fmt.Errorf("sip listen tcp %s: %w", bound, err)
		}
	}
}

// udpBuffer is the socket buffer the UA asks for. Every call's messages share one UDP socket; at thousands
// of calls per second the default (about 200 KiB) overflows within a few milliseconds of scheduling delay,
// and a lost 180 (never retransmitted: a provisional response stops the INVITE's retransmissions) leaves a
// call without ring until dial_timeout. The kernel caps the size at net.core.rmem_max / wmem_max
// (docs/operations.md).
const udpBuffer = 4 << 20

func sizeBuffers(conn net.PacketConn) {
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
	}
}

// Addr returns the bound SIP address.
func (u *UA) Addr() string { return u.conn.LocalAddr().String() }

// TLSAddr returns the address of the TLS listener (Config.TLSListen), "" without one.
func (u *UA) TLSAddr() string {
	if u.tls == nil {
		return ""
	}
	return u.tls.Addr().String()
}

// Close stops serving and waits for clean-ups (BYEs) in flight.
func (u *UA) Close() error {
	u.closeMu.Lock()
	u.closing = true
	u.closeMu.Unlock()
	u.stop()
	err := u.closeParts()
	u.wg.Wait()
	return err
}

// track counts one more clean-up goroutine, unless the UA is closing (then it reports false).
func (u *UA) track() bool {
	u.closeMu.RLock()
	defer u.closeMu.RUnlock()
	if u.closing {
		return false
	}
	u.wg.Add(1)
	return true
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (u *UA) closeParts() error {
	var errs []error
	if u.ua != nil {
		errs = append(errs, u.ua.Close())
	}
	if u.conn != nil {
		errs = append(errs, u.conn.Close())
	}
	if u.tcp != nil {
		errs = append(errs, ignoreClosed(u.tcp.Close()))
	}
	if u.tls != nil {
		errs = append(errs, ignoreClosed(u.tls.Close()))
	}
	if u.media != nil {
		errs = append(errs, u.media.Close())
	}
	return errors.Join(errs...)
}

// clientFor returns the client that sends over transport.
func (u *UA) clientFor(transport string) *sipgo.Client {
	if transport == "tcp" || transport == "tls" {
		return u.stream
	}
	return u.client
}

// do is client.Do without its (nil, nil): sipgo's Terminate (Close does it to every transaction) closes
// Done before it sets the error, so a request in flight then gets neither a response nor an error.
func do(ctx context.Context, client *sipgo.Client, req *sipgosip.Request) (*sipgosip.Response, error) {
	res, err := client.Do(ctx, req)
	if err == nil && res == nil {
		err = sipgosip.ErrTransactionTerminated
	}
	return res, err
}
