package sip

import (
	"context"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"flashotp/call"
)

// mayAuthenticate reports whether a 401/407 gets one authenticated retry: credentials are set, no retry was
// made yet (a second challenge means they are wrong), the call is not being cancelled, and the challenge's
// realm is the configured one, if any.
func (d *dial) mayAuthenticate(r *sipgosip.Response) bool {
	return !d.authTried && !d.facts.Cancelled && answerable(&d.call, r)
}

// answerable reports whether c's credentials answer the challenge r (a 401 or 407): a password is set, and
// the challenge's realm is c's, if c names one. The INVITE of a call and a MESSAGE share it.
func answerable(c *call.Request, r *sipgosip.Response) bool {
	if c.Password == "" {
		return false
	}
	if c.Realm == "" {
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
	return err == nil && chal.Realm == c.Realm
}

// authenticate sends req again, with c's credentials answering the challenge r, in a new transaction. The
// request sent is a copy (returned): req stays with its transaction, which may still have to ACK a
// retransmitted challenge.
func authenticate(ctx context.Context, client *sipgo.Client, req *sipgosip.Request, r *sipgosip.Response, c *call.Request) (*sipgosip.Request, sipgosip.ClientTransaction, error) {
	user := c.Username
	if c.AuthUsername != "" {
		user = c.AuthUsername
	}
	req = req.Clone()
	tx, err := client.TransactionDigestAuth(ctx, req, r, sipgo.DigestAuth{Username: user, Password: c.Password})
	return req, tx, err
}
