// Package setting holds what the parts' settings share: the error that names a bad key, and the checks of
// values several sections hold (host:port addresses, SIP transports, networks). Each part's Validate
// returns its errors as *Error, keys relative to its section; configs puts the section's key before them
// without reading their text. setting imports nothing of the engine's.
package setting

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Error is one bad key of a settings section: Key as the config file writes it under the section
// ("address", "cli_headers[1]"), Msg what is wrong with its value.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

// Errorf returns the *Error of key, its Msg formatted.
func Errorf(key, format string, a ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// Errors collects a section's *Errors; Err joins them (nil when there are none).
type Errors []error

// Add appends key's error, its message formatted.
func (e *Errors) Add(key, format string, a ...any) { *e = append(*e, Errorf(key, format, a...)) }

// Err joins the errors, nil when there are none.
func (e Errors) Err() error { return errors.Join(e...) }

// Split returns the errors err joins (Errors.Err, errors.Join), or err alone; none for nil.
func Split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// CheckHostPort returns what is wrong with addr as a host:port (a bare host will do unless needPort);
// nothing when it is fine.
func CheckHostPort(addr string, needPort bool) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !needPort && addr != "" && !strings.ContainsAny(addr, ":/ ") {
			return nil // a bare host
		}
		return []string{fmt.Sprintf("want host:port, got %q", addr)}
	}
	var bad []string
	if host == "" && needPort {
		bad = append(bad, fmt.Sprintf("host missing in %q", addr))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad = append(bad, fmt.Sprintf("bad port in %q", addr))
	}
	return bad
}

// CheckTransport returns what is wrong with t as a SIP transport (a trunk's, or sip.transport), or "".
func CheckTransport(t string) string {
	switch t {
	case "udp", "tcp", "tls":
		return ""
	}
	return fmt.Sprintf("want udp, tcp or tls, got %q", t)
}

// ParseNetwork reads a CIDR or a single IP (a /32 or /128), as a trunk's accept_from and
// http.trusted_proxies hold them.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s) // FLASHOTP_HTTP_TRUSTED_PROXIES="10.0.0.0/8, 192.168.0.1"
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Networks returns list read by ParseNetwork; entries that do not parse (Validate refuses them) are left out.
func Networks(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := ParseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Contains reports whether ip is in one of nets.
func Contains(nets []netip.Prefix, ip netip.Addr) bool {
	return slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(ip) })
}
