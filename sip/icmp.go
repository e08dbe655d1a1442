package sip

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
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
