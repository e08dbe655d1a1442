//go:build !linux

package sip

import (
	"net"
	"net/netip"
	"syscall"
)

// watchICMP returns conn: only Linux reports ICMP errors on a socket that is not connected (IP_RECVERR).
// Elsewhere a call to a closed UDP port waits out dial_timeout.
func watchICMP(conn net.PacketConn, _ func(dest netip.AddrPort, payload []byte, err syscall.Errno)) net.PacketConn {
	return conn
}
