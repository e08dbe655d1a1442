package dialer

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"flashotp/setting"
)

// Trunk is one SIP trunk calls may leave on, as the config file's trunks[] gives it (docs/trunks.md
// describes every key): its limits (0: none), how calls are put to it, and, for the SIP user agent, its TLS
// and the hosts it sends from.
type Trunk struct {
	Name      string `mapstructure:"name"`
	Address   string `mapstructure:"address"`   // host:port calls are sent to
	Transport string `mapstructure:"transport"` // udp | tcp | tls; default sip.transport

	// Digest authentication, used when the trunk answers 401 or 407.
	Username     string `mapstructure:"username"`
	Password     string `mapstructure:"password"`
	AuthUsername string `mapstructure:"auth_username"` // digest user when it differs from username
	Realm        string `mapstructure:"realm"`         // answer only this realm's challenges; empty: any

	MaxCPS   int `mapstructure:"max_cps"`
	MaxCalls int `mapstructure:"max_calls"`

	// Selection and failover.
	Priority        int           `mapstructure:"priority"`         // lower is tried first
	Weight          int           `mapstructure:"weight"`           // share among trunks of one priority; default 1
	DownAfter       int           `mapstructure:"down_after"`       // consecutive failures before the trunk is down; default 3
	OptionsInterval time.Duration `mapstructure:"options_interval"` // OPTIONS probe period of a down trunk; default 30s

	// Routing and numbering.
	Domain        string   `mapstructure:"domain"`         // Request-URI and To host, when not the address's
	OutboundProxy string   `mapstructure:"outbound_proxy"` // host:port; sent as a loose Route, requests go there
	NumberFormat  string   `mapstructure:"number_format"`  // e164 | e164_no_plus | national
	TechPrefix    string   `mapstructure:"tech_prefix"`    // digits put before the dialed number
	UserPhone     bool     `mapstructure:"user_phone"`     // ;user=phone on the URIs
	CLIHeaders    []string `mapstructure:"cli_headers"`    // from | pai | rpid; default [from, pai]
	Privacy       bool     `mapstructure:"privacy"`        // Privacy: id (the trunk hides the CLI from the callee)

	// AcceptFrom are the CIDRs (or single IPs) of the trunk's other hosts that send its responses and
	// requests, besides the IPs of address and outbound_proxy. SIP from anywhere else is dropped.
	AcceptFrom []string `mapstructure:"accept_from"`

	// Inbound calls (channel inbound): with Inbound on, the trunk's INVITEs to the apps' inbound numbers
	// are taken, their caller ID matched, and rejected unanswered with InboundReject; without it, its
	// INVITEs are refused 403.
	Inbound       bool     `mapstructure:"inbound"`
	InboundTrust  []string `mapstructure:"inbound_trust"`  // pai | from: the headers whose caller ID is believed, in order; default [pai, from]
	InboundReject int      `mapstructure:"inbound_reject"` // 603 (default) or 486
	// Register keeps the engine's contact registered with the trunk (username@domain, digest with
	// password), for trunks that deliver inbound calls only to a registered contact; RegisterExpires is
	// the binding's time asked for (default 10m), refreshed at four fifths of what the trunk grants.
	Register        bool          `mapstructure:"register"`
	RegisterExpires time.Duration `mapstructure:"register_expires"`

	// TLS.
	TLSCA         string `mapstructure:"tls_ca"`          // PEM CA bundle; empty: the system's
	TLSCert       string `mapstructure:"tls_cert"`        // PEM client certificate, optional
	TLSKey        string `mapstructure:"tls_key"`         // its key
	TLSServerName string `mapstructure:"tls_server_name"` // name to verify; default the address's host
}

// Trunk defaults, for the keys a trunk leaves at zero.
const (
	DefaultWeight          = 1
	DefaultDownAfter       = 3
	DefaultOptionsInterval = 30 * time.Second
	DefaultRegisterExpires = 10 * time.Minute
)

// WithDefaults fills the keys t left empty; transport is the default transport (sip.transport).
func (t Trunk) WithDefaults(transport string) Trunk {
	if t.Transport == "" {
		t.Transport = transport
	}
	if t.Weight == 0 {
		t.Weight = DefaultWeight
	}
	if t.DownAfter == 0 {
		t.DownAfter = DefaultDownAfter
	}
	if t.OptionsInterval == 0 {
		t.OptionsInterval = DefaultOptionsInterval
	}
	if t.NumberFormat == "" {
		t.NumberFormat = NumberE164
	}
	if t.CLIHeaders == nil {
		t.CLIHeaders = []string{"from", "pai"}
	}
	if t.InboundTrust == nil {
		t.InboundTrust = []string{"pai", "from"}
	}
	if t.InboundReject == 0 {
		t.InboundReject = 603
	}
	if t.RegisterExpires == 0 {
		t.RegisterExpires = DefaultRegisterExpires
	}
	return t
}

// AcceptNets returns accept_from as prefixes, a single IP as a /32 (or /128); entries that do not parse
// (Validate refuses them) are left out.
func (t Trunk) AcceptNets() []netip.Prefix { return setting.Networks(t.AcceptFrom) }

var (
	// hostRe: a DNS name or an IPv4 address; nothing that could carry SIP syntax into a URI.
	hostRe       = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
	techPrefixRe = regexp.MustCompile(`^[0-9*#]{0,10}$`)
)

// Validate reports every bad key of t (defaults filled), each a *setting.Error with the key as in the
// config file under the trunk ("address", "cli_headers[1]"). The name's form and uniqueness are the
// config's to check, beside the other names.
func (t Trunk) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	for _, msg := range setting.CheckHostPort(t.Address, true) {
		bad("address", "%s", msg)
	}
	if msg := setting.CheckTransport(t.Transport); msg != "" {
		bad("transport", "%s", msg)
	}
	if t.MaxCPS < 0 {
		bad("max_cps", "must not be negative")
	}
	if t.MaxCalls < 0 {
		bad("max_calls", "must not be negative")
	}
	if (t.Username == "") != (t.Password == "") {
		bad("username", "username and password go together")
	}
	if t.AuthUsername != "" && t.Password == "" {
		bad("auth_username", "needs a password")
	}
	if t.Weight < 1 || t.Weight > 1000 {
		bad("weight", "want 1..1000, got %d", t.Weight)
	}
	if t.DownAfter < 1 {
		bad("down_after", "must be positive")
	}
	if t.OptionsInterval < time.Second {
		bad("options_interval", "want at least 1s, got %s", t.OptionsInterval)
	}
	if t.Domain != "" && !hostRe.MatchString(t.Domain) {
		bad("domain", "want a host name or IP, got %q", t.Domain)
	}
	if t.OutboundProxy != "" {
		for _, msg := range setting.CheckHostPort(t.OutboundProxy, true) {
			bad("outbound_proxy", "%s", msg)
		}
	}
	for j, n := range t.AcceptFrom {
		if _, err := setting.ParseNetwork(n); err != nil {
			bad(fmt.Sprintf("accept_from[%d]", j), "want a CIDR (203.0.113.0/24) or an IP, got %q", n)
		}
	}
	switch t.NumberFormat {
	case NumberE164, NumberE164NoPlus, NumberNational:
	default:
		bad("number_format", "want e164, e164_no_plus or national, got %q", t.NumberFormat)
	}
	if !techPrefixRe.MatchString(t.TechPrefix) {
		bad("tech_prefix", "want up to 10 characters of 0-9 * #, got %q", t.TechPrefix)
	} else if t.TechPrefix != "" && t.NumberFormat == NumberE164 {
		bad("tech_prefix", "needs number_format e164_no_plus or national (a prefix before + is no number)")
	}
	if len(t.CLIHeaders) == 0 {
		bad("cli_headers", "name at least one of from, pai, rpid")
	}
	for j, h := range t.CLIHeaders {
		if h != "from" && h != "pai" && h != "rpid" {
			bad(fmt.Sprintf("cli_headers[%d]", j), "want from, pai or rpid, got %q", h)
		}
	}
	for j, h := range t.InboundTrust {
		if h != "pai" && h != "from" {
			bad(fmt.Sprintf("inbound_trust[%d]", j), "want pai or from, got %q", h)
		}
	}
	if t.Inbound && len(t.InboundTrust) == 0 {
		bad("inbound_trust", "name at least one of pai, from: an inbound call's caller ID is the proof")
	}
	if t.Register && t.Username == "" {
		bad("username", "register needs the address of record's user (username, and password if the trunk challenges)")
	}
	if t.RegisterExpires < 2*time.Second || t.RegisterExpires > 24*time.Hour {
		bad("register_expires", "want 2s to 24h, got %s", t.RegisterExpires)
	}
	if t.InboundReject != 603 && t.InboundReject != 486 {
		bad("inbound_reject", "want 603 (Decline) or 486 (Busy Here), got %d", t.InboundReject)
	}
	if t.Transport != "tls" && (t.TLSCA != "" || t.TLSCert != "" || t.TLSKey != "" || t.TLSServerName != "") {
		bad("transport", "tls_* keys need transport tls")
	}
	if (t.TLSCert == "") != (t.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together")
	}
	return errs.Err()
}
