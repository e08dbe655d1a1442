package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// Registration keeps the UA's contact registered with a trunk that delivers calls only to a registered
// contact (REGISTER, RFC 3261 section 10): the address of record User@Domain, bound to the UA's own address.
type Registration struct {
	Trunk     string
	Registrar string // host:port the REGISTERs go to
	Transport string // udp | tcp | tls
	Domain    string // the address of record's host and the Request-URI's; default the registrar's host
	User      string // the address of record's user
	// Digest credentials, answered once per REGISTER when the registrar challenges (401 or 407).
	AuthUser, Password string
	Expires            time.Duration // asked for; the registrar may grant less
}

// RegState is a registration's state, as KeepRegistered reports it.
type RegState struct {
	Registered bool
	Until      time.Time // when the binding runs out, if registered
	Err        error     // the last failure, if not registered
}

// Retry bounds of a registration that failed: the first retry after registerRetryMin, doubling up to
// registerRetryMax.
const (
	registerRetryMin = time.Second
	registerRetryMax = 5 * time.Minute
)

// KeepRegistered registers r, refreshes it when four fifths of the granted time have passed, and after a
// failure registers again after 1 s, 2 s, 4 s, … up to 5 minutes. state is told each change. When ctx ends
// it removes the binding (Expires: 0) and returns.
func (u *UA) KeepRegistered(ctx context.Context, r Registration, state func(RegState)) {
	callID := sipgosip.GenerateTagN(16) + "@flashotp"
	cseq := uint32(0)
	retry := registerRetryMin
	for {
		granted, err := u.register(ctx, r, callID, &cseq, r.Expires)
		var wait time.Duration
		if err == nil {
			state(RegState{Registered: true, Until: time.Now().Add(granted)})
			wait, retry = granted*4/5, registerRetryMin
		} else {
			if ctx.Err() != nil {
				break
			}
			u.log.Warn("trunk registration failed; trying again", "trunk", r.Trunk, "in", retry, "err", err)
			state(RegState{Err: err})
			wait, retry = retry, min(2*retry, registerRetryMax)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	// The binding goes with the engine: calls must not be routed to a contact that no longer answers.
	bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := u.register(bye, r, callID, &cseq, 0); err != nil {
		u.log.Warn("trunk registration not removed", "trunk", r.Trunk, "err", err)
	}
	state(RegState{})
}

// register sends one REGISTER of r asking for expires (0: remove the binding), answering one digest
// challenge, and returns the time the registrar granted.
func (u *UA) register(ctx context.Context, r Registration, callID string, cseq *uint32, expires time.Duration) (time.Duration, error) {
	host, port, err := splitHostPort(r.Registrar)
	if err != nil {
		return 0, err
	}
	domain := r.Domain
	if domain == "" {
		domain = host
	}
	*cseq++
	req := sipgosip.NewRequest(sipgosip.REGISTER, sipgosip.Uri{Scheme: "sip", Host: domain, UriParams: transportParam(r.Transport)})
	req.SetTransport(strings.ToUpper(orUDP(r.Transport)))
	req.SetDestination(fmt.Sprintf("%s:%d", host, port))
	aor := sipgosip.Uri{Scheme: "sip", User: r.User, Host: domain}
	from := &sipgosip.FromHeader{Address: aor, Params: sipgosip.NewParams()}
	from.Params.Add("tag", sipgosip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sipgosip.ToHeader{Address: aor})
	callIDHeader := sipgosip.CallIDHeader(callID)
	req.AppendHeader(&callIDHeader)
	req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: *cseq, MethodName: sipgosip.REGISTER})
	req.AppendHeader(&sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: r.User, Host: u.host, Port: u.port, UriParams: transportParam(r.Transport)}})
	req.AppendHeader(sipgosip.NewHeader("Expires", strconv.Itoa(int(expires.Seconds()))))
	client := u.clientFor(r.Transport)
	res, err := do(ctx, client, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) && r.Password != "" {
		user := r.User
		if r.AuthUser != "" {
			user = r.AuthUser
		}
		res, err = client.DoDigestAuth(ctx, req.Clone(), res, sipgo.DigestAuth{Username: user, Password: r.Password})
		if err == nil {
			*cseq = req.CSeq().SeqNo + 1 // the authenticated REGISTER took the next number
		}
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("register with %s: %w", r.Registrar, err)
	case res.StatusCode != 200:
		return 0, fmt.Errorf("register with %s: %d %s", r.Registrar, res.StatusCode, res.Reason)
	case expires == 0:
		return 0, nil
	}
	return granted(res, expires)
}

// granted is the binding's time in a 200 to REGISTER: the expires of the Contact that is the UA's, else the
// Expires header, else what was asked.
func granted(res *sipgosip.Response, asked time.Duration) (time.Duration, error) {
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sipgosip.ContactHeader); ok {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil {
					return checkGranted(time.Duration(n) * time.Second)
				}
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil {
			return 0, fmt.Errorf("register: the 200's Expires %q is no number", h.Value())
		}
		return checkGranted(time.Duration(n) * time.Second)
	}
	return asked, nil
}

func checkGranted(d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return 0, errors.New("register: the registrar granted no time")
	}
	return d, nil
}
