package smpp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"flashotp/setting"
)

// Settings are one SMSC's, an entry of the config file's smpp list.
type Settings struct {
	// Name names the SMSC in logs and metrics.
	Name string `mapstructure:"name"`
	// Address is the SMSC's host:port.
	Address string `mapstructure:"address"`
	// SystemID and Password are the ESME's credentials (bind_transceiver); the password is never logged.
	SystemID   string `mapstructure:"system_id"`
	Password   string `mapstructure:"password"`
	SystemType string `mapstructure:"system_type"`
	// TLS wraps the session in TLS (crypto/tls, the host of Address as the server name).
	TLS bool `mapstructure:"tls"`
	// TLSCA is a PEM file of the CAs that sign the SMSC's certificate, trusted instead of the system's.
	TLSCA string `mapstructure:"tls_ca"`
	// Window is how many submit_sm may await their response at once. Default 10.
	Window int `mapstructure:"window"`
	// Rate is how many submit_sm a second the SMSC takes. Default 50.
	Rate float64 `mapstructure:"rate"`
	// EnquireLink is how often an enquire_link checks the session; one unanswered for as long drops
	// it. Default 30s.
	EnquireLink time.Duration `mapstructure:"enquire_link"`
	// BindTimeout bounds the TCP (and TLS) connection and the bind's answer. Default 10s.
	BindTimeout time.Duration `mapstructure:"bind_timeout"`
}

// Defaults of an SMSC's settings.
const (
	DefaultWindow      = 10
	DefaultRate        = 50
	DefaultEnquireLink = 30 * time.Second
	DefaultBindTimeout = 10 * time.Second
)

// WithDefaults returns s with every unset tuning key at its default.
func (s Settings) WithDefaults() Settings {
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	if s.EnquireLink == 0 {
		s.EnquireLink = DefaultEnquireLink
	}
	if s.BindTimeout == 0 {
		s.BindTimeout = DefaultBindTimeout
	}
	return s
}

// Validate reports every bad key of s (after WithDefaults), each a *setting.Error ("address: ...").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if s.Name == "" || strings.ContainsAny(s.Name, " \t\r\n") {
		bad("name", "want a name without spaces, got %q", s.Name)
	}
	for _, m := range setting.CheckHostPort(s.Address, true) {
		bad("address", "%s", m)
	}
	checkCString := func(key, v string, max int, empty bool) {
		if v == "" && !empty {
			bad(key, "empty")
		} else if len(v) > max-1 {
			bad(key, "at most %d characters (SMPP 3.4), got %d", max-1, len(v))
		} else if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7E }) {
			bad(key, "printable ASCII only")
		}
	}
	checkCString("system_id", s.SystemID, maxSystemID, false)
	checkCString("password", s.Password, maxPassword, true)
	checkCString("system_type", s.SystemType, maxSystemType, true)
	if s.TLSCA != "" {
		if !s.TLS {
			bad("tls_ca", "set without tls: true")
		} else if _, err := s.tlsConfig(); err != nil {
			bad("tls_ca", "%v", err)
		}
	}
	if s.Window < 1 || s.Window > 1000 {
		bad("window", "want 1..1000, got %d", s.Window)
	}
	if s.Rate <= 0 {
		bad("rate", "want more than 0 submits a second, got %v", s.Rate)
	}
	if s.EnquireLink < time.Second {
		bad("enquire_link", "want at least 1s, got %s", s.EnquireLink)
	}
	if s.BindTimeout < 100*time.Millisecond {
		bad("bind_timeout", "want at least 100ms, got %s", s.BindTimeout)
	}
	return errs.Err()
}

// tlsConfig returns the TLS configuration of the session: the host of Address as the server name, TLS 1.2
// at least, the CAs of TLSCA or else the system's.
func (s Settings) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.Address)
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLSCA != "" {
		pem, err := os.ReadFile(s.TLSCA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New(s.TLSCA + ": no PEM certificate in it")
		}
	}
	return c, nil
}
