package sip

import (
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

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
