package httpapi

import (
	"net/netip"
	"strings"

	"flashotp/setting"

	"github.com/gofiber/fiber/v2"
)

// clientIP is the address rate limits, the failed-authentication throttle and verify attempts are keyed by.
// It is the TCP peer's, unless the peer is one of Config.TrustedProxies: then it is the right-most
// X-Forwarded-For address that is not itself a trusted proxy (each proxy appends the address it got the
// request from, so the addresses left of the first untrusted one are the client's word and worth nothing).
// From any other peer the header is ignored: a client could write anything there.
//
// fiber's own proxy support (EnableTrustedProxyCheck, ProxyHeader) is not used: its c.IP() takes the
// left-most address of the header, the one the client wrote.
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	ip := peer.Unmap()
	if !ok || !s.trusted(ip) {
		return c.IP() // fiber's config has no ProxyHeader: the peer's address
	}
	// Several X-Forwarded-For lines are one list, in order (RFC 9110 section 5.3).
	var hops []string
	for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(h), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			// Garbage where a trusted proxy should have written an address: keep the last trusted hop, which
			// puts every such client under one key rather than letting any choose its own.
			break
		}
		ip = hop
		if !s.trusted(ip) {
			break
		}
	}
	return ip.String()
}

// trusted reports whether ip is one of the trusted proxies.
func (s *Server) trusted(ip netip.Addr) bool { return setting.Contains(s.cfg.TrustedProxies, ip) }

// parseHop reads one X-Forwarded-For entry: an IP, or an IP with a port as some proxies write it
// (192.0.2.1:4711, [2001:db8::1]:4711).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
