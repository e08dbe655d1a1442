package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"

	"flashotp/voice"
)

// Phone modes: how the simulated handset answers an INVITE.
const (
	PhoneRing   = "ring"   // 180 Ringing until cancelled (a missed call), or 480 after PhoneRingFor
	PhoneAnswer = "answer" // 180 then 200 OK: the call is answered, the engine hangs up
	PhoneBusy   = "busy"   // 486 Busy Here
	PhoneSilent = "silent" // 100 Trying and nothing more
	// PhonePickup rings, and answers after PhonePickupAfter unless cancelled first, as a user picks up: a
	// flash call (cancelled at the first ring) stays missed, a voice call is answered and its prompt heard.
	PhonePickup = "pickup"
)

// PhonePickupAfter is how long a phone in PhonePickup mode rings before it answers.
const PhonePickupAfter = 2 * time.Second

// PhoneRingFor is how long the phone rings before it gives up with 480, as a real handset does.
const PhoneRingFor = 60 * time.Second

// Phone is a simulated handset for demos and tests. On a missed call it writes one line to Out:
// "missed call from <CLI> to <number>"; on a SIP MESSAGE, "sms from <sender>: <text>".
type Phone struct {
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	conn net.PacketConn
	mode string
	log  *slog.Logger

	mu  sync.Mutex // serialises lines on out
	out io.Writer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	byes sync.Map                      // Call-ID → chan struct{}: the BYE that ends an answered call (phone_voice.go)
	lib  atomic.Pointer[voice.Library] // the prompts it hears codes in; nil: the built-in ones
}

// ListenPhone starts a simulated handset on addr (port 0 picks one) in mode, writing call lines to out.
func ListenPhone(addr, mode string, out io.Writer, log *slog.Logger) (*Phone, error) {
	switch mode {
	case PhoneRing, PhoneAnswer, PhoneBusy, PhoneSilent, PhonePickup:
	default:
		return nil, fmt.Errorf("phone mode %q: want ring, answer, pickup, busy or silent", mode)
	}
	if log == nil {
		log = slog.Default()
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("phone listen %s: %w", addr, err)
	}
	sizeBuffers(conn)
	p := &Phone{conn: conn, mode: mode, out: out, log: log}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if p.ua, err = sipgo.NewUA(sipgo.WithUserAgent("flashotp-phone")); err != nil {
		conn.Close()
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(log)); err != nil {
		p.ua.Close()
		conn.Close()
		return nil, err
	}
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(*sipgosip.Request, sipgosip.ServerTransaction) {})
	ok := func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	p.srv.OnBye(p.onBye)
	p.srv.OnOptions(ok)
	p.srv.OnMessage(p.onMessage)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.ServeUDP(conn)
	}()
	return p, nil
}

// Addr returns the address the phone listens on.
func (p *Phone) Addr() string { return p.conn.LocalAddr().String() }

// Close stops the phone: calls ringing now end with 480.
func (p *Phone) Close() error {
	p.cancel()
	err := errors.Join(p.ua.Close(), p.conn.Close())
	p.wg.Wait()
	return err
}

func (p *Phone) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", a...)
}

func (p *Phone) onInvite(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	if req.From() == nil || req.To() == nil || req.CallID() == nil {
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 400, "Missing From, To or Call-ID", nil))
		return
	}
	from, to := req.From().Address.User, req.To().Address.User
	tag := sipgosip.GenerateTagN(16)
	respond := func(code int, reason string, body []byte) error {
		res := sipgosip.NewResponseFromRequest(req, code, reason, body)
		if code != 100 {
			res.To().Params.Add("tag", tag)
		}
		if code >= 180 && code < 300 {
			res.AppendHeader(&sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: to, Host: p.host(), Port: p.port()}})
		}
		if body != nil {
			ct := sipgosip.ContentTypeHeader("application/sdp")
			res.AppendHeader(&ct)
		}
		return tx.Respond(res)
	}
	switch p.mode {
	case PhoneBusy:
		_ = respond(486, "Busy Here", nil)
		p.printf("busy: refused call from %s to %s", from, to)
		return
	case PhoneSilent:
		_ = respond(100, "Trying", nil)
		select {
		case <-tx.Done():
		case <-p.ctx.Done():
		}
		return
	}
	cancelled := make(chan struct{})
	var once sync.Once
	markCancelled := func(*sipgosip.Request) { once.Do(func() { close(cancelled) }) }
	if !tx.OnCancel(markCancelled) {
		markCancelled(nil) // cancelled before we could listen
	}
	if err := respond(180, "Ringing", nil); err != nil {
		return
	}
	answer := func() {
		media, err := net.ListenPacket("udp", net.JoinHostPort(p.host(), "0"))
		if err != nil {
			_ = respond(500, "No Media Socket", nil)
			return
		}
		defer media.Close()
		bye := p.expectBye(req.CallID().Value())
		if respond(200, "OK", p.sdp(media)) == nil {
			p.printf("answered call from %s to %s", from, to)
			p.hear(media, bye, from) // a voice call's prompt: "heard code … from …"
		}
	}
	ringFor := PhoneRingFor
	switch p.mode {
	case PhoneAnswer:
		answer()
		return
	case PhonePickup:
		ringFor = PhonePickupAfter
	}
	timer := time.NewTimer(ringFor)
	defer timer.Stop()
	select {
	case <-cancelled: // sipgo answers the CANCEL 200 and the INVITE 487
		p.printf("missed call from %s to %s", from, to)
	case <-tx.Done():
	case <-timer.C:
		if p.mode == PhonePickup {
			answer()
			return
		}
		_ = respond(480, "Temporarily Unavailable", nil)
		p.printf("missed call from %s to %s", from, to)
	case <-p.ctx.Done():
		_ = respond(480, "Temporarily Unavailable", nil)
	}
}

func (p *Phone) host() string { return p.conn.LocalAddr().(*net.UDPAddr).IP.String() }
func (p *Phone) port() int    { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *Phone) sdp(media net.PacketConn) []byte {
	return []byte("v=0\r\no=phone 1 1 IN IP4 " + p.host() + "\r\ns=-\r\nc=IN IP4 " + p.host() +
		"\r\nt=0 0\r\nm=audio " + strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}
