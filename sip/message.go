package sip

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"flashotp/call"
)

// newInvite builds the flash call's INVITE: Request-URI and To carry the dialed number, the CLI goes in the
// headers the trunk wants (From, P-Asserted-Identity, Remote-Party-ID), and the body is an SDP offer for the
// UA's media socket.
func (u *UA) newInvite(c call.Request) (*sipgosip.Request, error) {
	identity := u.identity(c, c.CLI)
	headers := map[string]bool{"from": true, "pai": true}
	if len(c.CLIHeaders) > 0 {
		headers = map[string]bool{}
		for _, h := range c.CLIHeaders {
			headers[h] = true
		}
	}
	from := &sipgosip.FromHeader{Address: identity, Params: sipgosip.NewParams()}
	if !headers["from"] {
		from.DisplayName = "Anonymous"
		from.Address = sipgosip.Uri{Scheme: "sip", User: "anonymous", Host: "anonymous.invalid"}
	}
	req, err := newRequest(sipgosip.INVITE, c, from)
	if err != nil {
		return nil, err
	}
	contact := &sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: "flashotp", Host: u.host, Port: u.port, UriParams: transportParam(c.Transport)}}
	ctype := sipgosip.ContentTypeHeader("application/sdp")

	req.AppendHeader(contact)
	if headers["pai"] {
		req.AppendHeader(sipgosip.NewHeader("P-Asserted-Identity", "<"+identity.String()+">"))
	}
	if headers["rpid"] {
		privacy := "off"
		if c.Privacy {
			privacy = "full"
		}
		req.AppendHeader(sipgosip.NewHeader("Remote-Party-ID", "<"+identity.String()+">;party=calling;screen=yes;privacy="+privacy))
	}
	if c.Privacy {
		req.AppendHeader(sipgosip.NewHeader("Privacy", "id"))
	}
	req.AppendHeader(sipgosip.NewHeader("Allow", allowed))
	req.AppendHeader(&ctype)
	req.SetBody(u.sdpOffer(c.Kind == call.KindVoice))
	return req, nil
}

// identity is the URI that names user (the CLI, or a message's sender, escaped) as the caller: the UA's
// host, with ;user=phone when the trunk wants it.
func (u *UA) identity(c call.Request, user string) sipgosip.Uri {
	identity := sipgosip.Uri{Scheme: "sip", User: user, Host: u.host}
	if c.UserPhone {
		identity.UriParams = sipgosip.NewParams()
		identity.UriParams.Add("user", "phone")
	}
	return identity
}

// newRequest starts a request of method that opens a dialog or stands alone (an INVITE, a MESSAGE) to c's
// recipient: the Request-URI and To carry the dialed number at the trunk's domain (or Target's host), with
// ;user=phone when the trunk wants it; a Route names the outbound proxy; From is from, given a tag; a new
// Call-ID, CSeq 1 and Max-Forwards follow.
func newRequest(method sipgosip.RequestMethod, c call.Request, from *sipgosip.FromHeader) (*sipgosip.Request, error) {
	host, port, err := splitHostPort(c.Target)
	if err != nil {
		return nil, err
	}
	if c.Domain != "" {
		host = c.Domain
		if c.Proxy != "" {
			port = 0 // the trunk behind the proxy: its own default port
		}
	}
	params := transportParam(c.Transport)
	if c.UserPhone {
		params.Add("user", "phone")
	}
	recipient := sipgosip.Uri{Scheme: "sip", User: c.To, Host: host, Port: port, UriParams: params}
	req := sipgosip.NewRequest(method, recipient)
	req.SetTransport(strings.ToUpper(orUDP(c.Transport)))
	req.SetDestination(c.Target)
	if c.Proxy != "" {
		req.AppendHeader(sipgosip.NewHeader("Route", "<sip:"+c.Proxy+";lr>"))
	}
	from.Params.Add("tag", sipgosip.GenerateTagN(16))
	toURI := recipient
	toURI.UriParams = nil
	if c.UserPhone {
		toURI.UriParams = sipgosip.NewParams()
		toURI.UriParams.Add("user", "phone")
	}
	to := &sipgosip.ToHeader{Address: toURI, Params: sipgosip.NewParams()}
	callID := sipgosip.CallIDHeader(uuid.NewString())
	cseq := &sipgosip.CSeqHeader{SeqNo: 1, MethodName: method}
	maxFwd := sipgosip.MaxForwardsHeader(70)

	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(&maxFwd)
	return req, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return host, port, nil
}

func orUDP(transport string) string {
	if transport == "" {
		return "udp"
	}
	return transport
}

// transportParam is the URI parameter that tells the next hop to use a stream transport.
func transportParam(transport string) sipgosip.HeaderParams {
	if transport != "tcp" && transport != "tls" {
		return nil
	}
	p := sipgosip.NewParams()
	p.Add("transport", transport)
	return p
}

// sdpMediaAddr returns the host:port of the first audio stream an SDP body describes.
func sdpMediaAddr(body []byte) (string, bool) {
	var host, port string
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "), strings.HasPrefix(line, "c=IN IP6 "):
			if host == "" || port == "" { // session-level, or the audio stream's own
				host = strings.Fields(line[len("c=IN IP4 "):])[0]
				host, _, _ = strings.Cut(host, "/")
			}
		case strings.HasPrefix(line, "m=audio ") && port == "":
			if f := strings.Fields(line); len(f) > 1 {
				port = f[1]
			}
		}
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", false
	}
	// Written as the media socket shows a packet's sender, which is what MediaSink matches: not
	// "2001:db8:0::1" or "+4000", which no packet would match.
	return (&net.UDPAddr{IP: ip, Port: p}).String(), true
}

// sdpOffer offers PCMU and PCMA on the media socket; early media that arrives there is counted and dropped.
// A voice call's offer adds telephone-event (RFC 4733), for the callee's DTMF.
func (u *UA) sdpOffer(voice bool) []byte {
	ipver := "IP4"
	if ip := net.ParseIP(u.host); ip != nil && ip.To4() == nil {
		ipver = "IP6"
	}
	id := strconv.FormatInt(time.Now().Unix(), 10)
	dtmf, dtmfMap := "", ""
	if voice {
		dtmf = " " + strconv.Itoa(dtmfPT)
		dtmfMap = "a=rtpmap:" + strconv.Itoa(dtmfPT) + " telephone-event/8000\r\na=fmtp:" + strconv.Itoa(dtmfPT) + " 0-15\r\n"
	}
	return []byte("v=0\r\n" +
		"o=flashotp " + id + " " + id + " IN " + ipver + " " + u.host + "\r\n" +
		"s=flashotp\r\n" +
		"c=IN " + ipver + " " + u.host + "\r\n" +
		"t=0 0\r\n" +
		"m=audio " + strconv.Itoa(u.media.Port()) + " RTP/AVP 0 8" + dtmf + "\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:8 PCMA/8000\r\n" + dtmfMap +
		"a=sendrecv\r\n")
}

// newCancel builds the CANCEL for inv (RFC 3261 9.1): same Request-URI, top Via, From, To, Call-ID, Route
// and CSeq number as the INVITE, and the INVITE's credentials if it carried any. RFC 3261 22.1 forbids
// challenging a CANCEL, but some proxies drop one without the INVITE's Authorization or
// Proxy-Authorization, and the phone rings on until the trunk's own timer ends the call.
func newCancel(inv *sipgosip.Request) *sipgosip.Request {
	req := sipgosip.NewRequest(sipgosip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sipgosip.HeaderClone(inv.Via()))
	sipgosip.CopyHeaders("Route", inv, req)
	sipgosip.CopyHeaders("Authorization", inv, req)
	sipgosip.CopyHeaders("Proxy-Authorization", inv, req)
	maxFwd := sipgosip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sipgosip.HeaderClone(inv.From()))
	req.AppendHeader(sipgosip.HeaderClone(inv.To()))
	req.AppendHeader(sipgosip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipgosip.CANCEL})
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr
	return req
}

// newInDialog builds an ACK or BYE in the dialog a 2xx to inv established (RFC 3261 12.2.1.1): the remote
// target from the 2xx's Contact, the To tag from the 2xx, the route set from its Record-Route reversed. The
// CSeq number is the INVITE's; a BYE's caller increments it. Via is left to the client.
func newInDialog(method sipgosip.RequestMethod, inv *sipgosip.Request, ok *sipgosip.Response) *sipgosip.Request {
	target := inv.Recipient
	if c := ok.Contact(); c != nil {
		target = c.Address
	}
	req := sipgosip.NewRequest(method, *target.Clone())
	rr := ok.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		req.AppendHeader(sipgosip.NewHeader("Route", rr[i].Value()))
	}
	maxFwd := sipgosip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sipgosip.HeaderClone(inv.From()))
	if to := ok.To(); to != nil {
		req.AppendHeader(sipgosip.HeaderClone(to))
	} else {
		req.AppendHeader(sipgosip.HeaderClone(inv.To())) // a broken 2xx must not stop the hang-up
	}
	req.AppendHeader(sipgosip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
	if c := inv.Contact(); c != nil {
		req.AppendHeader(sipgosip.HeaderClone(c))
	}
	req.SetTransport(inv.Transport())
	req.Laddr = inv.Laddr
	return req
}
