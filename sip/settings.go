package sip

import (
	"time"

	"flashotp/setting"
)

// Settings are the user agent's, the config file's sip section: where it listens, the transport of a trunk
// that names none, the address it puts in its messages, and its TCP listener with the limits that bound it.
type Settings struct {
	Listen        string `mapstructure:"listen"`
	Transport     string `mapstructure:"transport"` // the default of the trunks' transport
	PublicAddress string `mapstructure:"public_address"`
	// ListenTCP says whether a TCP listener is bound on Listen too: auto (when a trunk uses tcp), on, off.
	ListenTCP string `mapstructure:"listen_tcp"`
	// TLSListen, when set, binds a TLS listener there for trunks that open TLS connections to the engine,
	// with the certificate TLSCert and its key TLSKey (PEM files); TLSClientCA (a PEM bundle), when set,
	// makes it require and check a client certificate signed by one of its CAs.
	TLSListen   string `mapstructure:"tls_listen"`
	TLSCert     string `mapstructure:"tls_cert"`
	TLSKey      string `mapstructure:"tls_key"`
	TLSClientCA string `mapstructure:"tls_client_ca"`
	TCPLimits   `mapstructure:",squash"`
}

// Values of sip.listen_tcp.
const (
	ListenTCPAuto = "auto"
	ListenTCPOn   = "on"
	ListenTCPOff  = "off"
)

// DefaultSettings are the settings of a sip section that sets none.
var DefaultSettings = Settings{Listen: "127.0.0.1:5060", Transport: "udp", ListenTCP: ListenTCPAuto, TCPLimits: DefaultTCPLimits}

// Validate reports every bad key of s, each a *setting.Error ("listen_tcp: want auto, on or off, got \"yes\"").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	for _, msg := range setting.CheckHostPort(s.Listen, true) {
		bad("listen", "%s", msg)
	}
	if msg := setting.CheckTransport(s.Transport); msg != "" {
		bad("transport", "%s", msg)
	}
	if s.PublicAddress != "" {
		for _, msg := range setting.CheckHostPort(s.PublicAddress, false) {
			bad("public_address", "%s", msg)
		}
	}
	if s.TLSListen != "" {
		for _, msg := range setting.CheckHostPort(s.TLSListen, true) {
			bad("tls_listen", "%s", msg)
		}
		if s.TLSCert == "" || s.TLSKey == "" {
			bad("tls_cert", "tls_listen needs tls_cert and tls_key (PEM files)")
		}
	} else if s.TLSCert != "" || s.TLSKey != "" || s.TLSClientCA != "" {
		bad("tls_listen", "tls_cert, tls_key and tls_client_ca need tls_listen")
	}
	switch s.ListenTCP {
	case ListenTCPAuto, ListenTCPOn, ListenTCPOff:
	default:
		bad("listen_tcp", "want auto, on or off, got %q", s.ListenTCP)
	}
	if s.MaxConns < 1 || s.MaxConns > 65536 {
		bad("max_tcp_conns", "want 1..65536, got %d", s.MaxConns)
	}
	if s.MaxConnsPerSource < 1 || s.MaxConnsPerSource > s.MaxConns {
		bad("max_tcp_conns_per_source", "want 1..sip.max_tcp_conns (%d), got %d", s.MaxConns, s.MaxConnsPerSource)
	}
	if s.IdleTimeout < 100*time.Millisecond || s.IdleTimeout > time.Hour {
		bad("tcp_idle_timeout", "want 100ms..1h, got %s", s.IdleTimeout)
	}
	if s.MessageTimeout < 100*time.Millisecond || s.MessageTimeout > time.Minute {
		bad("tcp_message_timeout", "want 100ms..1m, got %s", s.MessageTimeout)
	}
	return errs.Err()
}

// PhoneSettings are the built-in simulated handset's (ListenPhone), the config file's phone section.
type PhoneSettings struct {
	Enabled bool   `mapstructure:"enabled"`
	Listen  string `mapstructure:"listen"`
	Mode    string `mapstructure:"mode"` // PhoneRing, PhoneAnswer, PhonePickup, PhoneBusy or PhoneSilent
}

// DefaultPhoneSettings are the settings of a phone section that sets none.
var DefaultPhoneSettings = PhoneSettings{Listen: "127.0.0.1:5062", Mode: PhoneRing}

// Validate reports every bad key of p, each a *setting.Error; the address only when the phone is enabled.
func (p PhoneSettings) Validate() error {
	var errs setting.Errors
	if p.Enabled {
		for _, msg := range setting.CheckHostPort(p.Listen, true) {
			errs.Add("listen", "%s", msg)
		}
	}
	switch p.Mode {
	case PhoneRing, PhoneAnswer, PhonePickup, PhoneBusy, PhoneSilent:
	default:
		errs.Add("mode", "want ring, answer, pickup, busy or silent, got %q", p.Mode)
	}
	return errs.Err()
}
