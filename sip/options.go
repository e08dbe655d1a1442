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
