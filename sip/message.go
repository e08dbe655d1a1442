package sip

import (
	"fmt"
	"net"
	"strconv"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// newInvite builds the flash call's INVITE: Request-URI and To carry the recipient, From and
// P-Asserted-Identity the CLI, and the body an SDP offer for the UA's media socket.
func (u *UA) newInvite(c Call) (*sipgosip.Request, error) {
	host, portStr, err := net.SplitHostPort(c.Target)
	if err != nil {
		return nil, fmt.Errorf("trunk address %q: %w", c.Target, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("trunk address %q: bad port", c.Target)
	}
	recipient := sipgosip.Uri{Scheme: "sip", User: c.To, Host: host, Port: port}
	req := sipgosip.NewRequest(sipgosip.INVITE, recipient)
	req.SetTransport("UDP")
	req.SetDestination(c.Target)

	cliURI := sipgosip.Uri{Scheme: "sip", User: c.CLI, Host: u.host}
	from := &sipgosip.FromHeader{Address: cliURI, Params: sipgosip.NewParams()}
	from.Params.Add("tag", sipgosip.GenerateTagN(16))
	to := &sipgosip.ToHeader{Address: sipgosip.Uri{Scheme: "sip", User: c.To, Host: host, Port: port}, Params: sipgosip.NewParams()}
	callID := sipgosip.CallIDHeader(uuid.NewString())
	cseq := &sipgosip.CSeqHeader{SeqNo: 1, MethodName: sipgosip.INVITE}
	maxFwd := sipgosip.MaxForwardsHeader(70)
	contact := &sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: "flashotp", Host: u.host, Port: u.port}}
	ctype := sipgosip.ContentTypeHeader("application/sdp")

	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(contact)
	req.AppendHeader(sipgosip.NewHeader("P-Asserted-Identity", "<"+cliURI.String()+">"))
	req.AppendHeader(sipgosip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
	req.AppendHeader(&ctype)
	req.SetBody(u.sdpOffer())
	return req, nil
}

// sdpOffer offers PCMU and PCMA on the media socket; early media that arrives there is counted and dropped.
func (u *UA) sdpOffer() []byte {
	ipver := "IP4"
	if ip := net.ParseIP(u.host); ip != nil && ip.To4() == nil {
		ipver = "IP6"
	}
	id := strconv.FormatInt(time.Now().Unix(), 10)
	return []byte("v=0\r\n" +
		"o=flashotp " + id + " " + id + " IN " + ipver + " " + u.host + "\r\n" +
		"s=flashotp\r\n" +
		"c=IN " + ipver + " " + u.host + "\r\n" +
		"t=0 0\r\n" +
		"m=audio " + strconv.Itoa(u.media.Port()) + " RTP/AVP 0 8\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:8 PCMA/8000\r\n" +
		"a=sendrecv\r\n")
}

// newCancel builds the CANCEL for inv (RFC 3261 9.1): same Request-URI, top Via, From, To, Call-ID, Route
// and CSeq number as the INVITE.
func newCancel(inv *sipgosip.Request) *sipgosip.Request {
	req := sipgosip.NewRequest(sipgosip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sipgosip.HeaderClone(inv.Via()))
	sipgosip.CopyHeaders("Route", inv, req)
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
