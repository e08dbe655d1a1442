package sip

import (
	"net/url"
	"strings"
	"unicode"

	sipgosip "github.com/emiago/sipgo/sip"
)

// onMessage takes an SMS sent as a SIP MESSAGE (RFC 3428): 200 OK, and one line on the phone's output,
// "sms from <sender>: <text>", whatever the body's type. The line is the phone's own: what the sender put
// in it cannot end it, start another, or move the terminal's cursor.
func (p *Phone) onMessage(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	if req.From() == nil {
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 400, "Missing From", nil))
		return
	}
	if tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil)) != nil {
		return
	}
	sender := req.From().Address.User
	if s, err := url.PathUnescape(sender); err == nil { // an alphanumeric sender ID: "Acme%20Inc"
		sender = s
	}
	p.printf("sms from %s: %s", oneLine(sender), oneLine(string(req.Body())))
}

// oneLine returns s fit for one line of a terminal: line breaks and tabs as spaces, other control and
// format characters (escape sequences, bidirectional overrides) and bytes that are not UTF-8 as U+FFFD.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return '\uFFFD'
		}
		return r
	}, strings.TrimRight(s, "\r\n"))
}
