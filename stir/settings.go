package stir

import (
	"time"

	"flashotp/setting"
)

// Settings are the config file's stir section.
type Settings struct {
	// TrustAnchors is a PEM file of the root certificates PASSporTs must chain to (the STI-PA's list).
	// Empty: Identity headers are not verified, and no inbound call has an attestation.
	TrustAnchors string        `mapstructure:"trust_anchors"`
	MaxAge       time.Duration `mapstructure:"max_age"`       // how far a PASSporT's iat may be from now
	FetchTimeout time.Duration `mapstructure:"fetch_timeout"` // an x5u certificate fetch
}

// DefaultSettings are the settings of a stir section that sets none.
var DefaultSettings = Settings{MaxAge: DefaultMaxAge, FetchTimeout: DefaultFetchTimeout}

// Validate reports every bad key of s, each a *setting.Error.
func (s Settings) Validate() error {
	var errs setting.Errors
	if s.MaxAge < 10*time.Second || s.MaxAge > 10*time.Minute {
		errs.Add("max_age", "want 10s to 10m, got %s", s.MaxAge)
	}
	if s.FetchTimeout < 100*time.Millisecond || s.FetchTimeout > 10*time.Second {
		errs.Add("fetch_timeout", "want 100ms to 10s, got %s", s.FetchTimeout)
	}
	return errs.Err()
}
