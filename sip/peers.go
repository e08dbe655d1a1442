package sip

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"flashotp/setting"

	sipgosip "github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"
)

// Reasons a message is dropped, passed to Config.Dropped (the label of flashotp_sip_dropped_total).
const (
	// DropStranger: the message came from an address that is no peer's (Config.Peers, Config.AcceptFrom).
	DropStranger = "stranger"
	// DropDialogs: a 2xx opened one dialog more than a call hangs up (maxDialogs).
	DropDialogs = "dialogs"
)

// PeerRefresh is how often the host names in Config.Peers are resolved again.
const PeerRefresh = time.Minute

// resolveTimeout bounds one round of look-ups, so that a DNS server that does not answer delays the start
// by no more than this.
const resolveTimeout = 5 * time.Second

// errStranger closes a stream connection from an address that is no peer's.
var errStranger = errors.New("connection from an address that is no trunk's")

// peerFilter admits the messages of the UA's peers (its trunks and their outbound proxies) and drops the
// rest before sipgo parses them. Without it, anyone who learns a call's Via branch and Call-ID (they cross
// the network in the clear) could answer the INVITE for the trunk: a 486 makes the verification
// undeliverable, a 200 records it answered and leaves the real INVITE ringing uncancelled, a 180 records a
// missed call the phone never showed. The peers are matched by IP address only, any port: trunks often
// answer from another port than the one they listen on (an SBC's other socket, a TCP connection's
// ephemeral port).
type peerFilter struct {
	ips   map[netip.Addr]bool // the peers given as IP addresses
	nets  []netip.Prefix      // Config.AcceptFrom
	names []string            // the peers given as host names

	byName   map[string][]netip.Addr             // each name's addresses, as last resolved; refresh's own
	resolved atomic.Pointer[map[netip.Addr]bool] // every name's addresses, for allows

	dropped func(reason string)
	log     *slog.Logger
	logged  rate.Sometimes // one line a minute at most: strangers choose how many messages they send
}

// newPeerFilter sorts peers (host:port) into addresses and names; the names are resolved by refresh.
func newPeerFilter(peers []string, nets []netip.Prefix, dropped func(string), log *slog.Logger) *peerFilter {
	f := &peerFilter{
		ips: map[netip.Addr]bool{}, nets: slices.Clone(nets), byName: map[string][]netip.Addr{},
		dropped: dropped, log: log, logged: rate.Sometimes{Interval: time.Minute},
	}
	if f.dropped == nil {
		f.dropped = func(string) {}
	}
	seen := map[string]bool{}
	for _, p := range peers {
		host, _, err := net.SplitHostPort(p)
		if err != nil {
			host = p
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			// Requests to 0.0.0.0 or :: go to this host, which answers from loopback.
			f.nets = append(f.nets, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		} else if err == nil {
			f.ips[ip.Unmap().WithZone("")] = true
		} else if !seen[host] {
			seen[host] = true
			f.names = append(f.names, host)
		}
	}
	f.resolved.Store(&map[netip.Addr]bool{})
	return f
}

// refresh resolves the peers' host names again. A name that does not resolve now keeps the addresses it
// had (a DNS outage must not cut the trunks off). Only one refresh runs at a time.
func (f *peerFilter) refresh(ctx context.Context) {
	if len(f.names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	next := map[netip.Addr]bool{}
	for _, name := range f.names {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err == nil && len(ips) > 0 {
			f.byName[name] = ips
		} else if len(f.byName[name]) == 0 {
			f.log.Warn("trunk host name not resolved: messages from it are dropped until it is", "host", name, "err", err)
		}
		for _, ip := range f.byName[name] {
			next[ip.Unmap().WithZone("")] = true
		}
	}
	f.resolved.Store(&next)
}

// allows reports whether a message from addr may be read.
func (f *peerFilter) allows(addr net.Addr) bool {
	ip, ok := addrIP(addr)
	if !ok {
		return false
	}
	return f.ips[ip] || (*f.resolved.Load())[ip] || setting.Contains(f.nets, ip)
}

// admits reports whether a connection from addr may be held, counting and logging a stranger's as read does
// its messages.
func (f *peerFilter) admits(addr net.Addr) bool {
	if f.allows(addr) {
		return true
	}
	f.stranger(addr, "TCP")
	return false
}

// stranger counts and (at most once a minute) logs what a stranger sent.
func (f *peerFilter) stranger(addr net.Addr, transport string) {
	f.dropped(DropStranger)
	f.logged.Do(func() {
		f.log.Warn("SIP from an address that is no trunk's dropped (trunks[].accept_from admits a trunk's other hosts); one line a minute at most",
			"source", addr.String(), "transport", transport)
	})
}

// read is sipgo's transport read filter: a peer's bytes go on to the parser; a stranger's datagram is
// dropped unread and unanswered, and a stranger's TCP or TLS connection is closed.
func (f *peerFilter) read(info sipgosip.TransportReadProps, data []byte) ([]byte, error) {
	if f.allows(info.RemoteAddr) {
		return data, nil
	}
	f.stranger(info.RemoteAddr, info.Transport)
	if info.Transport == "UDP" {
		return nil, nil // an error would stop sipgo reading the socket
	}
	return nil, errStranger
}

// addrIP returns the IP address of a packet's or connection's remote end, IPv4 unmapped.
func addrIP(addr net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		if addr == nil {
			return netip.Addr{}, false
		}
		ap, err := netip.ParseAddrPort(addr.String())
		return ap.Addr().Unmap().WithZone(""), err == nil
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
