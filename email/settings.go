package email

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"flashotp/setting"
)

// The TLS modes of email.tls.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses to go on without it (port 587).
	TLSStartTLS = "starttls"
	// TLSStartTLSOptional upgrades with STARTTLS when the server offers it, and goes on in clear when not.
	TLSStartTLSOptional = "starttls_optional"
	// TLSImplicit speaks TLS from the first byte (port 465, "SMTPS").
	TLSImplicit = "implicit"
	// TLSNone never encrypts: for a server on the loopback (a local relay, a test), or with allow_insecure.
	TLSNone = "none"
)

// Settings are the email channel's, the config file's email section. A section without host is off: no
// app may use channel email.
type Settings struct {
	// Host is the SMTP server's name or IP address.
	Host string `mapstructure:"host"`
	// Port is its port; 0: 587 for starttls and starttls_optional, 465 for implicit, 25 for none.
	Port int `mapstructure:"port"`
	// TLS is starttls, starttls_optional, implicit or none.
	TLS string `mapstructure:"tls"`
	// CAFile is a PEM file of the certificates that may sign the server's (a private CA); "": the system's.
	CAFile string `mapstructure:"ca_file"`
	// Username and Password authenticate with SMTP AUTH (the mechanism go-mail negotiates: SCRAM, CRAM-MD5,
	// PLAIN or LOGIN, PLAIN and LOGIN only over TLS); no username: no AUTH. The password is never logged.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// From is every email's From: an address, with an optional display name ("Shop <otp@shop.example>").
	// Its domain is the Message-ID's.
	From string `mapstructure:"from"`
	// HELO is the name the engine gives in EHLO; "": localhost.
	HELO string `mapstructure:"helo"`
	// Timeout bounds each SMTP exchange (the connection, each command); a step's own time bounds the whole.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxConnections bounds the SMTP connections open at once.
	MaxConnections int `mapstructure:"max_connections"`
	// AllowInsecure allows tls: none with a host that is not on the loopback.
	AllowInsecure bool `mapstructure:"allow_insecure"`
}

// DefaultSettings are the settings of an email section that sets none (and no host: off).
var DefaultSettings = Settings{TLS: TLSStartTLS, Timeout: 30 * time.Second, MaxConnections: 4}

// Configured reports whether s turns the email channel on (it names a host).
func (s Settings) Configured() bool { return s.Host != "" }

// port returns s.Port, or its TLS mode's usual port.
func (s Settings) port() int {
	switch {
	case s.Port != 0:
		return s.Port
	case s.TLS == TLSImplicit:
		return 465
	case s.TLS == TLSNone:
		return 25
	}
	return 587
}

// Validate reports every bad key of s, each a *setting.Error ("tls: ..."). A section without host is off
// and valid, unless it sets keys that only a host would use.
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if !s.Configured() {
		if s.From != "" || s.Username != "" || s.Password != "" {
			bad("host", "required: the SMTP server to send through (the section sets from or username)")
		}
		return errs.Err()
	}
	if strings.ContainsAny(s.Host, ":/ \t\r\n") && net.ParseIP(s.Host) == nil {
		bad("host", "want a host name or an IP address (the port goes in port), got %q", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port", "want 1 to 65535, got %d", s.Port)
	}
	switch s.TLS {
	case TLSStartTLS, TLSStartTLSOptional, TLSImplicit:
	case TLSNone:
		if !isLoopback(s.Host) && !s.AllowInsecure {
			bad("tls", "none sends the code (and the password) in clear: only to a server on the loopback, or set allow_insecure: true (host %s)", s.Host)
		}
	default:
		bad("tls", "want starttls, starttls_optional, implicit or none, got %q", s.TLS)
	}
	if s.CAFile != "" {
		if _, err := s.certPool(); err != nil {
			bad("ca_file", "%v", err)
		}
	}
	if s.Password != "" && s.Username == "" {
		bad("username", "required with password")
	}
	if s.Username != "" && strings.ContainsAny(s.Username+s.Password, "\r\n\x00") {
		bad("username", "username and password may not hold line breaks or NUL")
	}
	if s.From == "" {
		bad("from", "required: the address emails come from, e.g. \"Shop <otp@shop.example>\"")
	} else if _, err := parseFrom(s.From); err != nil {
		bad("from", "%v", err)
	}
	if s.HELO != "" && !validHELO(s.HELO) {
		bad("helo", "want a host name (letters, digits, hyphens and dots) or an address literal such as [192.0.2.1], got %q", s.HELO)
	}
	if s.Timeout < time.Second || s.Timeout > 5*time.Minute {
		bad("timeout", "want 1s to 5m, got %s", s.Timeout)
	}
	if s.MaxConnections < 1 || s.MaxConnections > 100 {
		bad("max_connections", "want 1 to 100, got %d", s.MaxConnections)
	}
	return errs.Err()
}

// parseFrom parses from as one address, with an optional display name, whose domain has a dot.
func parseFrom(from string) (*mail.Address, error) {
	if strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("holds a line break")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("want an address such as otp@shop.example or \"Shop <otp@shop.example>\", got %q: %v", from, err)
	}
	if _, domain, _ := strings.Cut(a.Address, "@"); domain == "" {
		return nil, fmt.Errorf("%q has no domain", a.Address)
	}
	return a, nil
}

// isLoopback reports whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHELO reports whether h can follow EHLO: a domain or an address literal.
func validHELO(h string) bool {
	if len(h) > 255 {
		return false
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		return net.ParseIP(strings.TrimPrefix(h[1:len(h)-1], "IPv6:")) != nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// certPool reads CAFile.
func (s Settings) certPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.CAFile)
	}
	return pool, nil
}

// tlsConfig is the TLS of the connections: the server's name checked against its certificate, TLS 1.2 at
// least.
func (s Settings) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pool, err := s.certPool()
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}
