//go:build linux

package sip

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// icmpConn is the UA's UDP socket with IP_RECVERR (and IPV6_RECVERR) on. Without it Linux drops the ICMP
// errors of a socket that is not connected, so an INVITE to a closed port (a trunk that is down: ICMP port
// unreachable) would wait out dial_timeout. With it, each error is queued on the socket with the packet's
// destination and the start of its payload, and the pending error is also returned once by the next read or
// write on the socket, whatever its peer. icmpConn takes those errors out of the way: a read goes on
// reading (sipgo would stop serving the socket on a read error), a write is made again (the failed one sent
// nothing), and each queued error is passed to report.
type icmpConn struct {
	*net.UDPConn
	raw    syscall.RawConn
	report func(dest netip.AddrPort, payload []byte, err syscall.Errno)
}

// watchICMP returns conn reporting the ICMP errors its packets cause to report, or conn itself when the
// socket does not allow it.
func watchICMP(conn net.PacketConn, report func(dest netip.AddrPort, payload []byte, err syscall.Errno)) net.PacketConn {
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		return conn
	}
	raw, err := udp.SyscallConn()
	if err != nil {
		return conn
	}
	set := 0
	_ = raw.Control(func(fd uintptr) {
		// An IPv6 socket carries IPv4 too (wildcard addresses): it needs both options.
		if syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_RECVERR, 1) == nil {
			set++
		}
		if syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, syscall.IPV6_RECVERR, 1) == nil {
			set++
		}
	})
	if set == 0 {
		return conn
	}
	return &icmpConn{UDPConn: udp, raw: raw, report: report}
}

// ReadFrom reads the next datagram, passing over the errors ICMP left on the socket.
func (c *icmpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil && c.fromICMP(err) {
			continue
		}
		return n, addr, err
	}
}

// WriteTo writes b to addr; a write that failed only because of an earlier packet's ICMP error is made
// again (the kernel sent nothing), a few times at most.
func (c *icmpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	for try := 0; ; try++ {
		n, err := c.UDPConn.WriteTo(b, addr)
		if err == nil || try == 3 || !c.fromICMP(err) {
			return n, err
		}
	}
}

// fromICMP reports whether err is the socket's pending ICMP error, after reporting every queued one.
func (c *icmpConn) fromICMP(err error) bool {
	drained := c.drain()
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN,
		syscall.EACCES, syscall.EPROTO, syscall.ENOPROTOOPT:
		return true // what ICMP errors become (kernel icmp_err_convert); the queue may have been read by another call
	}
	return drained > 0
}

// Linux's struct sock_extended_err: ee_errno (4 bytes), ee_origin, ...
const (
	soEEOriginICMP  = 2
	soEEOriginICMP6 = 3
)

// drain reads the socket's error queue empty, reports each ICMP error, and returns how many it read.
func (c *icmpConn) drain() int {
	var (
		payload = make([]byte, 1500)
		oob     = make([]byte, 512)
		n       int
	)
	for {
		var (
			np, noob int
			from     syscall.Sockaddr
			rerr     error
		)
		if err := c.raw.Control(func(fd uintptr) {
			np, noob, _, from, rerr = syscall.Recvmsg(int(fd), payload, oob, syscall.MSG_ERRQUEUE|syscall.MSG_DONTWAIT)
		}); err != nil || rerr != nil {
			return n // EAGAIN: empty
		}
		n++
		msgs, err := syscall.ParseSocketControlMessage(oob[:noob])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			ip := m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_RECVERR
			ip6 := m.Header.Level == syscall.SOL_IPV6 && m.Header.Type == syscall.IPV6_RECVERR
			if !ip && !ip6 || len(m.Data) < 5 {
				continue
			}
			if origin := m.Data[4]; origin != soEEOriginICMP && origin != soEEOriginICMP6 {
				continue // a local error (the packet never left), reported by the write itself
			}
			var dest netip.AddrPort
			switch a := from.(type) {
			case *syscall.SockaddrInet4:
				dest = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
			case *syscall.SockaddrInet6:
				dest = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
			}
			c.report(dest, payload[:np], syscall.Errno(binary.NativeEndian.Uint32(m.Data[:4])))
		}
	}
}
