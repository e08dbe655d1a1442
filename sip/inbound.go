package sip

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// InboundTrunk is a trunk that delivers calls to the engine's inbound numbers (channel inbound). Its
// INVITEs are read, told to SetInbound's handler, and rejected unanswered: never a 200, never media, so the
// caller is never billed.
type InboundTrunk struct {
	Name       string
	Peers      []string       // its host:port addresses (address, outbound proxy); any port matches
	AcceptFrom []netip.Prefix // its other hosts
	// Trust are the headers whose caller ID is believed, in the order tried: TrustPAI (P-Asserted-Identity),
	// TrustFrom. A header not listed is never read.
	Trust []string
	// Reject is the final response to every inbound call: 603 Decline or 486 Busy Here.
	Reject int
}

// The headers an inbound trunk's caller ID may come from.
const (
	TrustPAI  = "pai"
	TrustFrom = "from"
)

type inboundTrunk struct {
	InboundTrunk
	from *peerFilter
}

// InboundCall is an INVITE from an inbound trunk.
type InboundCall struct {
	Trunk  string
	Called string // the Request-URI's user part: the number called
	Caller string // the user part of the first trusted header with a caller ID; "" when withheld
	// Identity is the Identity header (STIR/SHAKEN, RFC 8224) as it came, "" without one.
	Identity string
	CallID   string
}

// SetInbound sets the handler of inbound calls. It runs before the call is rejected, on the request's own
// goroutine; it must return soon (the caller's phone waits for the rejection).
func (u *UA) SetInbound(fn func(InboundCall)) { u.onInbound.Store(&fn) }

// onInvite rejects an INVITE once, statelessly: a server transaction would send its final response again
// eleven times over 32 s until an ACK came, to whatever address the request named. A retransmitted INVITE
// gets one response more, as it would from the transaction, and is not told to the handler again (seen). An
// inbound trunk's INVITE is rejected with the trunk's Reject, any other peer's with 403 (the UA places calls,
// it takes none from them).
func (u *UA) onInvite(req *sipgosip.Request, _ sipgosip.ServerTransaction) {
	// Returning without a response through tx ends the transaction (sipgo's TerminateGracefully), and its
	// timers with it: no 100 Trying either.
	code, reason := 403, "Forbidden"
	if t := u.inboundTrunk(req); t != nil {
		code, reason = t.Reject, rejectReason(t.Reject)
		if fn := u.onInbound.Load(); fn != nil && u.seen.first(callID(req)+" "+viaBranch(req), time.Now()) {
			(*fn)(InboundCall{Trunk: t.Name, Called: uriNumber(req.Recipient), Caller: callerID(req, t.Trust), Identity: headerValue(req, "Identity"), CallID: callID(req)})
		}
	}
	if err := u.srv.WriteResponse(sipgosip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		u.log.Debug("response to an incoming INVITE not sent", "code", code, "err", err)
	}
}

// inboundTrunk returns the inbound trunk req came from, or nil.
func (u *UA) inboundTrunk(req *sipgosip.Request) *inboundTrunk {
	addr, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return nil
	}
	src := &net.UDPAddr{IP: addr.Addr().AsSlice(), Port: int(addr.Port())}
	for i := range u.inbound {
		if u.inbound[i].from.allows(src) {
			return &u.inbound[i]
		}
	}
	return nil
}

func rejectReason(code int) string {
	if code == 486 {
		return "Busy Here"
	}
	return "Decline"
}

// callerID returns the user part of the first header of trust that names a caller: "" when none does, or
// when the caller is anonymous.
func callerID(req *sipgosip.Request, trust []string) string {
	for _, h := range trust {
		var user string
		switch h {
		case TrustPAI:
			if pai := req.GetHeader("P-Asserted-Identity"); pai != nil {
				user = uriUser(pai.Value())
			}
		case TrustFrom:
			if from := req.From(); from != nil {
				user = uriNumber(from.Address)
			}
		}
		if user != "" && !strings.EqualFold(user, "anonymous") {
			return user
		}
	}
	return ""
}

// uriNumber returns the number a SIP or tel URI names: the user part (a tel URI's number), without its
// parameters (;npdi, ;rn=…, ;isub=…) and %-escapes decoded.
func uriNumber(u sipgosip.Uri) string {
	n := u.User
	if n == "" && strings.EqualFold(u.Scheme, "tel") {
		n = u.Host
	}
	return cleanNumber(n)
}

// cleanNumber cuts a URI user part's parameters and decodes its %-escapes (%2B is a '+').
func cleanNumber(n string) string {
	if i := strings.IndexByte(n, ';'); i >= 0 {
		n = n[:i]
	}
	if d, err := url.PathUnescape(n); err == nil {
		n = d
	}
	return n
}

// headerValue returns the value of req's first header called name, or "".
func headerValue(req *sipgosip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// uriUser returns the user part of a name-addr or addr-spec (<sip:+1415…@host;user=phone>, tel:+1415…),
// or "".
func uriUser(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	v = strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(strings.ToLower(v), "tel:"):
		v = v[4:]
	case strings.HasPrefix(strings.ToLower(v), "sip:"), strings.HasPrefix(strings.ToLower(v), "sips:"):
		v = v[strings.IndexByte(v, ':')+1:]
		at := strings.IndexByte(v, '@')
		if at < 0 {
			return ""
		}
		v = v[:at]
	default:
		return ""
	}
	return cleanNumber(v)
}

func callID(req *sipgosip.Request) string {
	if id := req.CallID(); id != nil {
		return id.Value()
	}
	return ""
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
		if ch, ok := u.byes.Load(id.Value()); ok {
			select { // a voice call playing its prompt: the callee hung up
			case ch.(chan struct{}) <- struct{}{}:
			default:
			}
		}
	}
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, code, reason, nil))
}

// retransmitWindow is how long an INVITE may be retransmitted (64 × T1, RFC 3261 section 17.1.1.2).
const retransmitWindow = 32 * time.Second

// seenInvites remembers the inbound INVITEs of the last retransmitWindow or two, in two generations that
// take turns, so that each call is told to the handler once.
type seenInvites struct {
	mu        sync.Mutex
	cur, prev map[string]bool
	turned    time.Time
}

// first reports whether key is new, and remembers it.
func (s *seenInvites) first(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.turned) >= retransmitWindow {
		s.prev, s.cur, s.turned = s.cur, map[string]bool{}, now
	}
	if s.cur[key] || s.prev[key] {
		return false
	}
	s.cur[key] = true
	return true
}

func viaBranch(req *sipgosip.Request) string {
	if v := req.Via(); v != nil {
		if b, ok := v.Params.Get("branch"); ok {
			return b
		}
	}
	return ""
}
