package sip

import (
	"context"
	"fmt"
	"strings"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"flashotp/call"
	"flashotp/sms"
)

// sendMessage sends c.Text in a SIP MESSAGE (RFC 3428) to c.To, From c.CLI (a number, or an alphanumeric
// sender ID), and returns its outcome: StateSent on a 2xx; StateFailed with call.Classify's reason on a
// 3xx-6xx; trunk_error when nothing answered within c.DialTimeout or the transport failed (Responded false
// unless a 1xx came: then the trunk may have the message, and it is not sent again). A 401/407 is answered
// once with the trunk's credentials, as for an INVITE. progress, if not nil, gets call.StateDialing once the
// MESSAGE is out. Cancelling ctx before an answer ends it as interrupted.
func (u *UA) sendMessage(ctx context.Context, c call.Request, progress func(call.State, time.Time)) (res call.Result) {
	res.StartedAt = time.Now()
	defer func() { res.EndedAt = time.Now() }()
	if err := checkMessage(c); err != nil {
		// Upstream checks should make this impossible; it guards the SIP message all the same.
		u.log.Error("refusing message", "err", err)
		res.State, res.Reason = call.Outcome(call.Facts{Refused: true})
		return res
	}
	req, err := u.newMessage(c)
	if err != nil {
		u.log.Error("refusing message", "err", err)
		res.State, res.Reason = call.Outcome(call.Facts{Refused: true})
		return res
	}
	res.CallID = req.CallID().Value()
	client := u.clientFor(c.Transport)
	tx, icmp, unwatch, err := u.begin(ctx, client, req, c.Transport)
	defer unwatch()
	if err != nil {
		u.log.Warn("message not sent", "call_id", res.CallID, "target", c.Target, "err", err)
		res.State, res.Reason = call.Outcome(call.Facts{})
		return res
	}
	if progress != nil {
		progress(call.StateDialing, res.StartedAt)
	}
	wait := c.DialTimeout
	if wait <= 0 {
		wait = 64 * sipgosip.T1 // Timer F: the transaction's own bound
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()

	var facts call.Facts
	authTried := false
	defer func() {
		tx.Terminate() // done with it: a retransmitted final response has nobody to go to
		res.SIPCode, res.Provisional = facts.Final, facts.Provisional
		res.State, res.Reason = call.Outcome(facts)
		if res.State == call.StateAnswered {
			res.State = call.StateSent // a 2xx to a MESSAGE: the trunk took it
		}
	}()
	for {
		select {
		case r := <-tx.Responses():
			if id, cseq := r.CallID(), r.CSeq(); id == nil || cseq == nil || id.Value() != res.CallID ||
				cseq.SeqNo != req.CSeq().SeqNo || cseq.MethodName != sipgosip.MESSAGE || r.StatusCode < 100 {
				u.log.Warn("response for another request ignored", "call_id", res.CallID, "status", r.StatusCode)
				continue
			}
			res.Responded = true
			code := r.StatusCode
			switch {
			case r.IsProvisional():
				facts.Provisional = true
				continue
			case (code == 401 || code == 407) && !authTried && answerable(&c, r):
				authTried = true
				authed, authTx, err := authenticate(ctx, client, req, r, &c)
				if err != nil {
					u.log.Warn("digest auth not possible", "call_id", res.CallID, "err", err)
					facts.Final = code
					return res
				}
				tx.Terminate()
				req, tx = authed, authTx
				continue
			case !r.IsSuccess():
				res.Phrase = r.Reason
				if h := r.GetHeader("Reason"); h != nil {
					res.Phrase += "; " + h.Value()
				}
			}
			facts.Final = code
			return res
		case err := <-icmp:
			if res.Responded {
				continue
			}
			u.log.Warn("trunk unreachable", "call_id", res.CallID, "err", err)
			return res
		case <-tx.Done():
			u.log.Warn("message transaction ended", "call_id", res.CallID, "err", tx.Err())
			return res
		case <-timer.C:
			u.log.Warn("no answer to a message", "call_id", res.CallID, "after", wait)
			return res
		case <-ctx.Done():
			facts.Stopped = call.StopInterrupted
			return res
		}
	}
}

// checkMessage returns why c cannot be sent as a MESSAGE: the recipient must be a dialable number, the
// sender a number as the trunk wants it or an alphanumeric sender ID, the text sms.CheckText's.
func checkMessage(c call.Request) error {
	if !dialedRe.MatchString(c.To) {
		return fmt.Errorf("recipient %q is not a number", c.To)
	}
	if !cliRe.MatchString(c.CLI) {
		if err := sms.CheckSender(c.CLI); err != nil {
			return fmt.Errorf("sender: %w", err)
		}
	}
	return sms.CheckText(c.Text)
}

// newMessage builds the MESSAGE: Request-URI and To as an INVITE's (newRequest), From the sender, the text
// as text/plain in UTF-8. P-Asserted-Identity and Remote-Party-ID only when the trunk's cli_headers name
// them: From is what a MESSAGE's recipient shows. No Contact: a MESSAGE opens no dialog (RFC 3428 4).
func (u *UA) newMessage(c call.Request) (*sipgosip.Request, error) {
	number := cliRe.MatchString(c.CLI)
	identity := sipgosip.Uri{Scheme: "sip", User: escapeUser(c.CLI), Host: u.host}
	if number {
		identity = u.identity(c, c.CLI)
	}
	req, err := newRequest(sipgosip.MESSAGE, c, &sipgosip.FromHeader{Address: identity, Params: sipgosip.NewParams()})
	if err != nil {
		return nil, err
	}
	for _, h := range c.CLIHeaders {
		switch h {
		case "pai":
			req.AppendHeader(sipgosip.NewHeader("P-Asserted-Identity", "<"+identity.String()+">"))
		case "rpid":
			req.AppendHeader(sipgosip.NewHeader("Remote-Party-ID", "<"+identity.String()+">;party=calling;screen=yes;privacy=off"))
		}
	}
	ctype := sipgosip.ContentTypeHeader("text/plain;charset=UTF-8")
	req.AppendHeader(&ctype)
	req.SetBody([]byte(c.Text))
	return req, nil
}

// escapeUser writes s as the user part of a SIP URI (RFC 3261 25.1): letters, digits and the marks that
// need no escaping as they are, every other byte as %XX. An alphanumeric sender ID may hold a space, '@'
// or a non-ASCII letter.
func escapeUser(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()+", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
