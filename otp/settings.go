package otp

import (
	"strings"
	"time"

	"flashotp/apps"
	"flashotp/setting"
)

// Settings are the engine-wide verification settings, the config file's otp section: what an app that
// sets none inherits, how many codes its pools must give, and how long records are kept.
type Settings struct {
	CodeLength   int           `mapstructure:"code_length"`
	TTL          time.Duration `mapstructure:"ttl"`
	MaxAttempts  int           `mapstructure:"max_attempts"`
	MinCodeSpace int           `mapstructure:"min_code_space"`
	// Retention: verifications, attempts and events older than this are deleted in the background.
	Retention time.Duration `mapstructure:"retention"`
}

// DefaultSettings are the settings of an otp section that sets none.
var DefaultSettings = Settings{
	CodeLength:   4,
	TTL:          5 * time.Minute,
	MaxAttempts:  5,
	MinCodeSpace: 10000,
	Retention:    30 * 24 * time.Hour,
}

// AppDefaults are the settings an app inherits from s.
func (s Settings) AppDefaults() apps.Defaults {
	return apps.Defaults{CodeLength: s.CodeLength, TTL: s.TTL, MaxAttempts: s.MaxAttempts}
}

// Validate reports every bad key of s, each a *setting.Error ("code_length: want 4..8, got 3").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if !apps.ValidCodeLength(s.CodeLength) {
		bad("code_length", "want %d..%d, got %d", apps.MinCodeLength, apps.MaxCodeLength, s.CodeLength)
	}
	if !apps.ValidTTL(s.TTL) {
		bad("ttl", "want %s..%s, got %s", minutes(apps.MinTTL), minutes(apps.MaxTTL), s.TTL)
	}
	if !apps.ValidMaxAttempts(s.MaxAttempts) {
		bad("max_attempts", "want %d..%d, got %d", apps.MinAttempts, apps.MaxAttempts, s.MaxAttempts)
	}
	if s.MinCodeSpace < 1 {
		bad("min_code_space", "must be positive")
	}
	if s.Retention < time.Hour {
		bad("retention", "want at least 1h, got %s", s.Retention)
	}
	return errs.Err()
}

// minutes writes a whole number of minutes as "15m" (time.Duration writes "15m0s").
func minutes(d time.Duration) string { return strings.TrimSuffix(d.String(), "0s") }
