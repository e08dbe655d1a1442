// Package sip is flashotp's SIP user agent, on github.com/emiago/sipgo. It places flash calls: an INVITE from
// the listening socket with the CLI in the headers the trunk wants (From and P-Asserted-Identity by default)
// and an SDP offer for a media socket the
// UA really holds, a CANCEL once the phone rings, ACK and BYE for a 200 that wins the race, and exactly one
// call.Result per call.
//
// Transports: UDP listens on Config.Listen, and TCP on the same address when Config.TCP says so, within
// Config.TCPLimits; TLS is client-only (requests go out, nothing listens). sipgo's own log lines go
// through BoundedLogger. Only the peers (Config.Peers, Config.AcceptFrom) are heard, on every transport: a
// stranger's bytes are dropped before sipgo parses them, so no one else can answer a call's INVITE.
// sipgo's timers are package globals (sipgo's sip.SetTimers); only cmd may set them, never this package.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"flashotp/call"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
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
}

// UA is a running SIP user agent. It is safe for concurrent use: each Dial is one call.
type UA struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client // UDP: requests leave from the listening socket
	stream *sipgo.Client // TCP and TLS: connections to the trunk, reused
	conn   net.PacketConn
	tcp    net.Listener // same address as conn, for requests peers open over TCP; nil without Config.TCP
	media  *MediaSink
	log    *slog.Logger
	peers  *peerFilter
	done   context.Context // cancelled by Close: ends the peers' refresh
	stop   context.CancelFunc

	host string // for Via, Contact, SDP
	port int

	wg      sync.WaitGroup // serving goroutines and BYE clean-ups
	closeMu sync.RWMutex   // orders track's wg.Add before Close's wg.Wait
	closing bool

	calls sync.Map // Call-ID → chan *sipgosip.Response: responses no transaction matched, for the call
	ended sync.Map // Call-ID → *dial: calls that ended, for watchLateAnswer and onBye
	icmp  sync.Map // Call-ID → chan error: ICMP errors (port unreachable) caused by the call's UDP requests
}

// unreachable takes an ICMP error that one of the UA's UDP packets caused to the call it was sent for:
// the payload is the start of that packet, and names its Call-ID.
func (u *UA) unreachable(dest netip.AddrPort, payload []byte, errno syscall.Errno) {
	id := callIDOf(payload)
	ch, ok := u.icmp.Load(id)
	if !ok {
		u.log.Debug("icmp error for no call in flight", "dest", dest, "err", errno)
		return
	}
	select {
	case ch.(chan error) <- fmt.Errorf("%s: %w", dest, errno):
	default:
	}
}

// callIDOf returns the Call-ID of the SIP message that begins payload ("" if the header is not in it
// whole: an ICMP error quotes only the first few hundred bytes of a packet).
func callIDOf(payload []byte) string {
	lines := strings.Split(string(payload), "\r\n")
	for _, line := range lines[:len(lines)-1] { // the last line may be cut short
		if line == "" {
			break // end of the headers
		}
		name, value, ok := strings.Cut(line, ":")
		if name = strings.TrimSpace(name); ok && (strings.EqualFold(name, "Call-ID") || name == "i") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// stray takes a response that matched no transaction (a retransmission, or a peer that got CSeq or Via
// wrong) to the call it names, if that call is still running. For a call that ended unanswered, a 2xx is
// hung up and a final response ACKed; anything else is dropped.
func (u *UA) stray(r *sipgosip.Response) {
	id := r.CallID()
	if id == nil {
		return
	}
	d, ended := u.ended.Load(id.Value())
	if ch, ok := u.calls.Load(id.Value()); ok && !ended {
		select {
		case ch.(chan *sipgosip.Response) <- r:
		default:
		}
		return
	}
	if !ended || r.CSeq() == nil || r.CSeq().MethodName != sipgosip.INVITE {
		return
	}
	switch {
	case r.IsSuccess():
		if d.(*dial).hangUp(r) {
			u.log.Warn("late answer to a call already ended: hung up", "call_id", id.Value())
		}
	case r.StatusCode >= 300:
		d.(*dial).ackLateFinal(r)
	}
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
	if tcp != nil {
		l := newLimitListener(tcp, cfg.TCPLimits, log)
		l.admits = u.peers.admits
		u.tcp = l
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
	u.client, err = sipgo.NewClient(u.ua,
		sipgo.WithClientLogger(sipLog),
		sipgo.WithClientHostname(u.host),
		sipgo.WithClientPort(u.port),
		sipgo.WithClientConnectionAddr(bound.String()), // INVITEs leave from the listening socket
	)
	if err != nil {
		return fail(err)
	}
	if u.stream, err = sipgo.NewClient(u.ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(u.host), sipgo.WithClientPort(u.port)); err != nil {
		return fail(err)
	}
	// Only the peers' requests get here.
	u.srv.OnOptions(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(func(*sipgosip.Request, sipgosip.ServerTransaction) {}) // an ACK is never answered
	u.srv.OnCancel(u.onCancel)
	u.srv.OnBye(u.onBye)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = u.srv.ServeUDP(u.conn) // returns when conn is closed
	}()
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
		}
	}
}

// onInvite declines an INVITE (the UA places calls, it takes none) once, statelessly: a server transaction
// would send its 603 again eleven times over 32 s until an ACK came, to whatever address the request
// named. A retransmitted INVITE gets one 603 more, as it would from the transaction.
func (u *UA) onInvite(req *sipgosip.Request, _ sipgosip.ServerTransaction) {
	// Returning without a response through tx ends the transaction (sipgo's TerminateGracefully), and its
	// timers with it: no 100 Trying either.
	if err := u.srv.WriteResponse(sipgosip.NewResponseFromRequest(req, 603, "Decline", nil)); err != nil {
		u.log.Debug("603 to an incoming INVITE not sent", "err", err)
	}
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo answers those itself): there is
// nothing to cancel (RFC 3261 9.2).
func (u *UA) onCancel(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

// onBye answers a BYE: 200 for a call of the UA's (the callee hanging up as the UA does, their BYEs
// crossing), else 481: no such dialog (RFC 3261 15.1.2).
func (u *UA) onBye(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	code, reason := 481, "Call/Transaction Does Not Exist"
	if id := req.CallID(); id != nil {
		_, running := u.calls.Load(id.Value())
		_, ended := u.ended.Load(id.Value())
		if running || ended {
			code, reason = 200, "OK"
		}
	}
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, code, reason, nil))
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
	if u.media != nil {
		errs = append(errs, u.media.Close())
	}
	return errors.Join(errs...)
}

var (
	dialedRe = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)
	cliRe    = regexp.MustCompile(`^\+?[0-9]{4,16}$`)
)

// Dial places the flash call and returns its outcome. progress, if not nil, is called with call.StateDialing
// once the INVITE is out and call.StateRinging (after the CANCEL, when ring_time is 0) at the first 180/183, from Dial's goroutine. Cancelling ctx
// ends the call early: CANCEL if it may, else the call fails as interrupted. A call that rang is then
// missed, as it would be after ring_time; one that had only a 100 Trying fails as interrupted. Dial never waits longer than
// DialTimeout + RingTime + CancelGuard (plus a short BYE) whatever the trunk does.
func (u *UA) Dial(ctx context.Context, c call.Request, progress func(call.State, time.Time)) (res call.Result) {
	if progress == nil {
		progress = func(call.State, time.Time) {}
	}
	res.StartedAt = time.Now()
	defer func() { res.EndedAt = time.Now() }()
	if !dialedRe.MatchString(c.To) || !cliRe.MatchString(c.CLI) {
		// Upstream checks should make this impossible; it guards SIP headers all the same.
		u.log.Error("refusing call: a number is not digits")
		res.State, res.Reason = call.Outcome(call.Facts{Refused: true})
		return res
	}

	inv, err := u.newInvite(c)
	if err != nil {
		res.State, res.Reason = call.Outcome(call.Facts{}) // not sent: no response
		return res
	}
	res.CallID = inv.CallID().Value()
	var icmp chan error
	if orUDP(c.Transport) == "udp" {
		// Before the INVITE leaves: on loopback its ICMP error is back within microseconds.
		icmp = make(chan error, 1)
		u.icmp.Store(res.CallID, icmp)
		defer u.icmp.Delete(res.CallID)
	}
	tx, err := u.clientFor(c.Transport).TransactionRequest(ctx, inv)
	if err != nil {
		u.log.Warn("invite not sent", "call_id", res.CallID, "target", c.Target, "err", err)
		res.State, res.Reason = call.Outcome(call.Facts{})
		return res
	}
	progress(call.StateDialing, res.StartedAt)

	d := &dial{ua: u, client: u.clientFor(c.Transport), call: c, inv: inv, tx: tx, res: &res, stray: make(chan *sipgosip.Response, 4), icmp: icmp,
		cleanup: context.WithoutCancel(ctx)}
	u.calls.Store(res.CallID, d.stray)
	defer d.stopTimers()
	defer d.stopMedia()
	d.run(ctx, progress)
	res.SIPCode, res.Rang, res.Provisional = d.facts.Final, d.facts.Rang, d.facts.Provisional
	res.State, res.Reason = call.Outcome(d.facts)
	if d.cancelTx != nil {
		// Its 200 may never come; a transaction nobody reads would hold sipgo's goroutines forever.
		d.cancelTx.Terminate()
	}
	u.watchLateAnswer(d) // first: stray looks there first, so no response falls between
	if res.State != call.StateAnswered {
		// Ended unanswered, given up (no ring in time, no 487 after the CANCEL, shutdown) or with a final
		// response: a 200 may still come. After a final response the INVITE transaction would swallow it (a
		// fork's 200 that crossed the CANCEL, which RFC 3261 16.7 has proxies forward even after the 487), so
		// the transaction ends here and ended takes the 200, and the final response's retransmissions.
		d.tx.Terminate()
	}
	u.calls.Delete(res.CallID)
	return res
}

// watchLateAnswer remembers a call that ended for 64·T1 (sipgo's, read now), so that a 200 OK still on its
// way (from a slow trunk, or one that crossed the CANCEL) is ACKed and BYEd at once rather than left to
// run, a retransmitted final response is ACKed again, and the callee's BYE crossing the UA's is answered
// 200, not 481.
func (u *UA) watchLateAnswer(d *dial) {
	u.ended.Store(d.res.CallID, d)
	time.AfterFunc(64*sipgosip.T1, func() { u.ended.CompareAndDelete(d.res.CallID, d) })
}

// clientFor returns the client that sends over transport.
func (u *UA) clientFor(transport string) *sipgo.Client {
	if transport == "tcp" || transport == "tls" {
		return u.stream
	}
	return u.client
}

// Options sends OPTIONS to target over transport and returns the response's status code: any answer
// means the trunk is reachable.
func (u *UA) Options(ctx context.Context, target, transport string) (int, error) {
	host, port, err := splitHostPort(target)
	if err != nil {
		return 0, err
	}
	req := sipgosip.NewRequest(sipgosip.OPTIONS, sipgosip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: transportParam(transport)})
	req.SetTransport(strings.ToUpper(orUDP(transport)))
	req.SetDestination(target)
	res, err := do(ctx, u.clientFor(transport), req)
	if err != nil {
		return 0, fmt.Errorf("options %s: %w", target, err)
	}
	return res.StatusCode, nil
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

// cleanupTimeout bounds each request that cleans up after a call: a CANCEL's sending, a BYE's answer.
const cleanupTimeout = 4 * time.Second

// dial is the state of one call while Dial runs it. Only Dial's goroutine touches it, but for lateMu's.
type dial struct {
	ua     *UA
	client *sipgo.Client
	call   call.Request
	// cleanup is Dial's context without its cancellation: the CANCEL, and the BYE of a 200 (also one that
	// comes after Dial returned), must go out after the caller gave up. Each takes cleanupTimeout.
	cleanup context.Context
	inv     *sipgosip.Request
	tx      sipgosip.ClientTransaction
	res     *call.Result
	// stray receives responses of this call that matched no transaction.
	stray chan *sipgosip.Response
	// icmp receives the ICMP errors of this call's UDP requests (nil over TCP and TLS).
	icmp chan error

	// facts is what happened on the wire, for call.Outcome once the call ends.
	facts     call.Facts
	authTried bool
	cancelTx  sipgosip.ClientTransaction

	dialTimer, ringTimer, guardTimer *time.Timer

	// The INVITE transaction's retransmission hook and late responses reach the call from sipgo's goroutines,
	// also after Dial returned: lateMu guards what they change.
	lateMu     sync.Mutex
	dialogs    map[string]*sipgosip.Request // the ACK of each 2xx dialog hung up, by its To tag
	finalAcked time.Time                    // when a final response that came after the call ended was ACKed

	media     *atomic.Uint64 // early media packets from the address the callee's SDP gave
	mediaStop func()
}

func (d *dial) stopMedia() {
	if d.mediaStop != nil {
		d.mediaStop()
		d.res.EarlyMediaPackets = d.media.Load()
	}
}

// watchMedia starts counting the RTP that arrives from the address a provisional's SDP names.
func (d *dial) watchMedia(r *sipgosip.Response) {
	if d.media != nil || len(r.Body()) == 0 {
		return
	}
	if addr, ok := sdpMediaAddr(r.Body()); ok {
		d.media, d.mediaStop = d.ua.media.Watch(addr)
	}
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (d *dial) stopTimers() {
	for _, t := range []*time.Timer{d.dialTimer, d.ringTimer, d.guardTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

func (d *dial) run(ctx context.Context, progress func(call.State, time.Time)) {
	d.dialTimer = time.NewTimer(d.call.DialTimeout)
	ctxDone := ctx.Done()
	for {
		var cancelResponses <-chan *sipgosip.Response
		if d.cancelTx != nil {
			cancelResponses = d.cancelTx.Responses()
		}
		select {
		case r := <-d.tx.Responses():
			if !d.ours(r) {
				// The transaction layer matches by Via branch and method only (RFC 3261 17.1.3); a response
				// naming another Call-ID or CSeq is a broken or hostile peer's, and does not move this call.
				d.ua.log.Warn("response for another call or request ignored", "call_id", d.res.CallID, "status", r.StatusCode)
				continue
			}
			if r.StatusCode < 100 {
				// Not a SIP status, though sipgo passes it on as a provisional: no ring, and no sign of life
				// that would allow a CANCEL or forbid failing over.
				d.ua.log.Warn("response without a SIP status ignored", "call_id", d.res.CallID, "status", r.StatusCode)
				continue
			}
			if d.onResponse(ctx, r, progress) {
				return
			}
		case err := <-d.icmp:
			if d.res.Responded {
				// The trunk answered this call; its timers end it if the trunk went away since.
				d.ua.log.Warn("icmp error after a response ignored", "call_id", d.res.CallID, "err", err)
				continue
			}
			// Nothing listens at the trunk's address (port unreachable), or no route to it: a transport
			// error, at once rather than after dial_timeout.
			d.ua.log.Warn("trunk unreachable", "call_id", d.res.CallID, "err", err)
			d.tx.Terminate()
			return
		case <-d.tx.Done():
			// Timer B or a transport error: the trunk is gone.
			d.ua.log.Warn("invite transaction ended", "call_id", d.res.CallID, "err", d.tx.Err())
			return
		case <-timerC(d.ringTimer):
			d.ringTimer = nil
			d.cancel(call.StopNone)
		case <-timerC(d.dialTimer):
			d.dialTimer = nil
			if d.facts.Rang || d.facts.Cancelled {
				continue
			}
			if !d.facts.Provisional {
				// RFC 3261 9.1: no CANCEL before a provisional response; just stop.
				d.facts.Stopped = call.StopNoRing
				d.tx.Terminate()
				return
			}
			d.cancel(call.StopNoRing)
		case r := <-cancelResponses:
			if r.StatusCode == 200 {
				d.facts.CancelAnswered = true
			}
			if !r.IsProvisional() {
				// Ended at once, so that a response naming the CANCEL's CSeq after its 200 (a 487 from a
				// confused peer) reaches stray instead of being absorbed as a retransmission.
				d.cancelTx.Terminate()
				d.cancelTx = nil
			}
		case r := <-d.stray:
			// A 487 that names the CANCEL's CSeq instead of the INVITE's (a common scenario mistake) still
			// ends the cancelled INVITE: ACK it as the INVITE's and count the call missed.
			if r.StatusCode == 487 && d.facts.Cancelled && r.CSeq() != nil && r.CSeq().MethodName == sipgosip.CANCEL {
				d.ua.log.Warn("487 with the CANCEL's CSeq taken for the INVITE's", "call_id", d.res.CallID)
				d.ackFailure(r)
				d.tx.Terminate()
				d.onResponse(ctx, r, progress)
				return
			}
		case <-timerC(d.guardTimer):
			d.guardTimer = nil
			d.ua.log.Warn("no final response after CANCEL", "call_id", d.res.CallID, "cancel_answered", d.facts.CancelAnswered)
			d.tx.Terminate()
			return
		case <-ctxDone:
			ctxDone = nil
			switch {
			case d.facts.Cancelled:
			case d.facts.Rang:
				// The phone showed the call (ring_time had not run out): cancelled now, it is the missed
				// call a flash call is for, and recorded so.
				d.cancel(call.StopNone)
			case d.facts.Provisional:
				d.cancel(call.StopInterrupted)
			default:
				d.facts.Stopped = call.StopInterrupted
				d.tx.Terminate()
				return
			}
		}
	}
}

// onResponse handles one response to the INVITE and reports whether the call is over.
// ours reports whether r names this call's Call-ID and the INVITE's CSeq.
func (d *dial) ours(r *sipgosip.Response) bool {
	id, cseq := r.CallID(), r.CSeq()
	want := d.inv.CSeq()
	return id != nil && cseq != nil && id.Value() == d.inv.CallID().Value() &&
		cseq.SeqNo == want.SeqNo && cseq.MethodName == want.MethodName
}

func (d *dial) onResponse(ctx context.Context, r *sipgosip.Response, progress func(call.State, time.Time)) bool {
	code := r.StatusCode
	d.res.Responded = true
	switch {
	case r.IsProvisional():
		d.facts.Provisional = true
		if code != 180 && code != 183 {
			return false
		}
		d.watchMedia(r) // a 183 (or 180) with SDP: early media may follow
		if !d.facts.Rang {
			d.facts.Rang = true
			d.res.RingingAt = time.Now()
			if !d.facts.Cancelled {
				if d.call.RingTime <= 0 {
					d.cancel(call.StopNone) // first: every millisecond more of ringing risks an answer
				} else {
					d.ringTimer = time.NewTimer(d.call.RingTime)
				}
			}
			progress(call.StateRinging, d.res.RingingAt)
		}
		return false
	case r.IsSuccess():
		d.facts.Final = code
		d.hangUp(r)
		return true
	case (code == 401 || code == 407) && d.mayAuthenticate(r):
		d.authTried = true
		// The first INVITE stays with its transaction (which may still ACK a retransmitted challenge);
		// the authenticated one is a copy.
		d.inv = d.inv.Clone()
		tx, err := d.client.TransactionDigestAuth(ctx, d.inv, r, sipgo.DigestAuth{Username: d.authUser(), Password: d.call.Password})
		if err != nil {
			d.ua.log.Warn("digest auth not possible", "call_id", d.res.CallID, "err", err)
			d.facts.Final = code
			return true
		}
		d.tx = tx
		return false
	case code == 487 && d.facts.Cancelled:
		d.facts.Final = code // the CANCEL's: nothing the trunk said to report
	default:
		d.facts.Final = code
		d.res.Phrase = r.Reason
		if h := r.GetHeader("Reason"); h != nil {
			d.res.Phrase += "; " + h.Value()
		}
	}
	return true
}

// mayAuthenticate reports whether a 401/407 gets one authenticated retry: credentials are set, no retry was
// made yet (a second challenge means they are wrong), the call is not being cancelled, and the challenge's
// realm is the configured one, if any.
func (d *dial) mayAuthenticate(r *sipgosip.Response) bool {
	if d.call.Password == "" || d.authTried || d.facts.Cancelled {
		return false
	}
	if d.call.Realm == "" {
		return true
	}
	name := "WWW-Authenticate"
	if r.StatusCode == 407 {
		name = "Proxy-Authenticate"
	}
	h := r.GetHeader(name)
	if h == nil {
		return false
	}
	chal, err := digest.ParseChallenge(h.Value())
	return err == nil && chal.Realm == d.call.Realm
}

func (d *dial) authUser() string {
	if d.call.AuthUsername != "" {
		return d.call.AuthUsername
	}
	return d.call.Username
}

// cancel sends CANCEL for the INVITE and arms the guard that ends the call if no final answer follows.
func (d *dial) cancel(why call.Stop) {
	if d.facts.Cancelled {
		return
	}
	d.facts.Cancelled = true
	d.facts.Stopped = why
	d.guardTimer = time.NewTimer(d.call.CancelGuard)
	ctx, stop := context.WithTimeout(d.cleanup, cleanupTimeout) // bounds only the sending: the guard bounds the wait
	tx, err := d.client.TransactionRequest(ctx, newCancel(d.inv))
	stop()
	if err != nil {
		d.ua.log.Warn("cancel not sent", "call_id", d.res.CallID, "err", err)
		return
	}
	if why == call.StopNone {
		d.res.CancelledAt = time.Now() // written to the socket
	}
	d.cancelTx = tx
}

// ackFailure ACKs a non-2xx final response outside the INVITE transaction (RFC 3261 17.1.1.3: same branch
// as the INVITE, the response's To).
func (d *dial) ackFailure(r *sipgosip.Response) {
	ack := newInDialog(sipgosip.ACK, d.inv, r)
	ack.Recipient = *d.inv.Recipient.Clone()
	ack.RemoveHeader("Route")
	sipgosip.CopyHeaders("Route", d.inv, ack)
	ack.PrependHeader(sipgosip.HeaderClone(d.inv.Via()))
	ack.SetDestination(d.inv.Destination())
	if err := d.client.WriteRequest(ack); err != nil {
		d.ua.log.Warn("ack not sent", "call_id", d.res.CallID, "err", err)
	}
}

// ackLateFinal ACKs a final response that came after the call ended (again, as its ACK was lost, or from
// another fork), at most once per T1: a peer that answers every ACK with it again loops no faster than its
// own retransmissions would (sipgo's transaction waits T2 for the same reason).
func (d *dial) ackLateFinal(r *sipgosip.Response) {
	d.lateMu.Lock()
	due := time.Since(d.finalAcked) >= sipgosip.T1
	if due {
		d.finalAcked = time.Now()
	}
	d.lateMu.Unlock()
	if due {
		d.ackFailure(r)
	}
}

// maxDialogs is how many dialogs (2xx To tags) of one call are ACKed and BYEd. A real fork rarely answers
// more than twice; a trunk that sends thousands of 2xx with new tags (broken, or a stranger's on its path)
// would otherwise make as many ACKs, BYEs and goroutines. The 2xx past it are dropped and counted; the
// trunk, its 2xx never ACKed, ends those dialogs itself after 64*T1 (RFC 3261 13.3.1.4).
const maxDialogs = 4

// hangUp ACKs a 2xx and sends BYE in the background, so the call's outcome is known at once. Each dialog
// is hung up once: a retransmitted 2xx gets its ACK again, and a 2xx from another fork (another To tag) is a
// dialog of its own, ACKed and BYEd too (RFC 3261 13.2.2.4), never left answered, up to maxDialogs. It
// reports whether ok opened a dialog (and so got a BYE).
func (d *dial) hangUp(ok *sipgosip.Response) bool {
	tag := ""
	if to := ok.To(); to != nil {
		tag, _ = to.Params.Get("tag")
	}
	d.lateMu.Lock()
	first := d.dialogs == nil
	ack, seen := d.dialogs[tag]
	if !seen && len(d.dialogs) >= maxDialogs {
		d.lateMu.Unlock()
		d.ua.dropped(DropDialogs)
		return false
	}
	if seen {
		ack = ack.Clone()
	} else {
		ack = newInDialog(sipgosip.ACK, d.inv, ok)
		ack.SetDestination(d.inv.Destination())
	}
	err := d.client.WriteRequest(ack) // under the lock: the first write gives the ACK the Via its copies keep
	if !seen {
		if first {
			d.dialogs = map[string]*sipgosip.Request{}
		}
		d.dialogs[tag] = ack
	}
	n := len(d.dialogs)
	d.lateMu.Unlock()
	if err != nil {
		d.ua.log.Warn("ack not sent", "call_id", d.res.CallID, "err", err)
	}
	if seen {
		return false
	}
	if first {
		// The transaction passes 2xx retransmissions, and other forks' 2xx, only to this hook.
		d.tx.OnRetransmission(func(r *sipgosip.Response) {
			if r.IsSuccess() {
				d.hangUp(r)
			}
		})
	} else {
		d.ua.log.Warn("2xx from another fork: hanging it up too", "call_id", d.res.CallID, "dialogs", n)
	}

	bye := newInDialog(sipgosip.BYE, d.inv, ok)
	bye.CSeq().SeqNo++
	bye.SetDestination(d.inv.Destination())
	if !d.ua.track() {
		return true // closing: no new work
	}
	go func() {
		defer d.ua.wg.Done()
		ctx, cancel := context.WithTimeout(d.cleanup, cleanupTimeout)
		defer cancel()
		res, err := do(ctx, d.client, bye)
		if err != nil || res.StatusCode >= 300 {
			d.ua.log.Warn("bye failed", "call_id", d.res.CallID, "err", err)
		}
	}()
	return true
}
