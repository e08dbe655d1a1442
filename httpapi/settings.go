package httpapi

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"flashotp/setting"
)

// Settings are the API listener's, the config file's http section.
type Settings struct {
	Listen       string `mapstructure:"listen"`
	AdminToken   string `mapstructure:"admin_token"`
	MaxBodyBytes int    `mapstructure:"max_body_bytes"`
	// TLSCert and TLSKey (PEM files), when set, make the API serve HTTPS only.
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
	// DrainDelay is how long the API keeps serving after SIGTERM while /readyz already answers 503, so
	// that a load balancer takes the engine out before its listener closes.
	DrainDelay time.Duration `mapstructure:"drain_delay"`
	// TrustedProxies are the CIDRs (or single IPs) of the reverse proxies in front of the API: only from a
	// peer among them is X-Forwarded-For believed. Empty: the header is ignored.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// MaxConns caps the API's connections open at once, MaxConnsPerIP those from one address (the trusted
	// proxies exempt); over a cap a connection is closed as soon as it is accepted. 0: no cap.
	MaxConns      int `mapstructure:"max_conns"`
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
}

// DemoAdminToken is the admin token of the demo configuration (configs/flashotp.yaml): the README signs in
// to the console with it. An engine refuses it on a listener beyond loopback.
const DemoAdminToken = "demo-admin-token"

// DefaultSettings are the settings of an http section that sets none.
var DefaultSettings = Settings{Listen: "127.0.0.1:8080", MaxBodyBytes: 65536, DrainDelay: 5 * time.Second, MaxConns: 4096, MaxConnsPerIP: 512}

// Proxies returns trusted_proxies as prefixes, a single IP as a /32 (or /128); entries that do not parse
// (Validate refuses them) are left out.
func (s Settings) Proxies() []netip.Prefix { return setting.Networks(s.TrustedProxies) }

// Validate reports every bad key of s, each a *setting.Error ("max_conns: want 0 (no cap) to 1048576, got -1").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	for _, msg := range setting.CheckHostPort(s.Listen, true) {
		bad("listen", "%s", msg)
	}
	if s.MaxBodyBytes < 256 || s.MaxBodyBytes > 16<<20 {
		bad("max_body_bytes", "want 256..16777216, got %d", s.MaxBodyBytes)
	}
	if s.MaxConns < 0 || s.MaxConns > 1<<20 {
		bad("max_conns", "want 0 (no cap) to 1048576, got %d", s.MaxConns)
	}
	if s.MaxConnsPerIP < 0 || (s.MaxConns > 0 && s.MaxConnsPerIP > s.MaxConns) {
		bad("max_conns_per_ip", "want 0 (no cap) to http.max_conns (%d), got %d", s.MaxConns, s.MaxConnsPerIP)
	}
	if s.DrainDelay < 0 || s.DrainDelay > 5*time.Minute {
		bad("drain_delay", "want 0..5m, got %s", s.DrainDelay)
	}
	for i, p := range s.TrustedProxies {
		if _, err := setting.ParseNetwork(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "want a CIDR (10.0.0.0/8) or an IP, got %q", p)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		bad("tls_cert", "http.tls_cert and http.tls_key go together")
	}
	if s.AdminToken == DemoAdminToken {
		if host, _, err := net.SplitHostPort(s.Listen); err == nil {
			if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
				bad("admin_token", "%q is the demo's token, published in the README: set your own before listening on %s", DemoAdminToken, s.Listen)
			}
		}
	}
	return errs.Err()
}
