package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// unreachable takes an ICMP error that one of the UA's UDP packets caused to the call it was sent for:
// the payload is the start of that packet, and names its Call-ID.
func (u *UA) unreachable(dest netip.AddrPort, payload []byte, errno syscall.Errno) {
	id := callIDOf(payload)
	ch, ok := u.icmp.Load(id)
	if !ok {
		u.log.Debug("icmp error for no call in flight", "dest", dest, "err", errno)
		return
	}
	select {
	case ch.(chan error) <- fmt.Errorf("%s: %w", dest, errno):
	default:
	}
}

// callIDOf returns the Call-ID of the SIP message that begins payload ("" if the header is not in it
// whole: an ICMP error quotes only the first few hundred bytes of a packet).
func callIDOf(payload []byte) string {
	lines := strings.Split(string(payload), "\r\n")
	for _, line := range lines[:len(lines)-1] { // the last line may be cut short
		if line == "" {
			break // end of the headers
		}
		name, value, ok := strings.Cut(line, ":")
		if name = strings.TrimSpace(name); ok && (strings.EqualFold(name, "Call-ID") || name == "i") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// begin sends req as a new client transaction of client. Over UDP it first watches for an ICMP error about
// req's Call-ID (on loopback one is back within microseconds of the send), delivered on icmp; unwatch ends
// the watching (a nil icmp never delivers).
func (u *UA) begin(ctx context.Context, client *sipgo.Client, req *sipgosip.Request, transport string) (tx sipgosip.ClientTransaction, icmp <-chan error, unwatch func(), err error) {
	unwatch = func() {}
	if orUDP(transport) == "udp" {
		ch := make(chan error, 1)
		id := req.CallID().Value()
		u.icmp.Store(id, ch)
		icmp, unwatch = ch, func() { u.icmp.Delete(id) }
	}
	tx, err = client.TransactionRequest(ctx, req)
	return tx, icmp, unwatch, err
}
