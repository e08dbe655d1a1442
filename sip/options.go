package sip

import (
	"context"
	"fmt"
	"strings"

	sipgosip "github.com/emiago/sipgo/sip"
)

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

// allowed, accepted and supported are what the UA says of itself in an answer to OPTIONS (RFC 3261 11.2), and
// allowed in its INVITEs too: the methods it takes (a MESSAGE it only sends), the body it reads (SDP, in a
// 183 or 200), and the option tags it supports (none: no 100rel, no timer, no replaces). An empty Supported
// says so; its absence would leave the peer guessing.
const (
	allowed   = "INVITE, ACK, CANCEL, BYE, OPTIONS"
	accepted  = "application/sdp"
	supported = ""
)

// onOptions answers a peer's OPTIONS (a trunk's keep-alive or capability probe) 200 with what the UA
// supports.
func (u *UA) onOptions(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	res := sipgosip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sipgosip.NewHeader("Allow", allowed))
	res.AppendHeader(sipgosip.NewHeader("Accept", accepted))
	res.AppendHeader(sipgosip.NewHeader("Supported", supported))
	_ = tx.Respond(res)
}
