package console

import (
	"time"

	"flashotp/setting"
)

// Settings are the config file's console section.
type Settings struct {
	// Enabled serves the console at /console/ (default true).
	Enabled bool `mapstructure:"enabled"`
	// IdleTimeout ends a session unused this long; MaxAge ends it this long after sign-in, used or not.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	MaxAge      time.Duration `mapstructure:"max_age"`
}

// DefaultSettings are the settings of a console section that sets none.
var DefaultSettings = Settings{Enabled: true, IdleTimeout: DefaultIdleTimeout, MaxAge: DefaultMaxAge}

// Validate reports every bad key of s, each a *setting.Error.
func (s Settings) Validate() error {
	var errs setting.Errors
	if s.IdleTimeout < time.Minute || s.IdleTimeout > 24*time.Hour {
		errs.Add("idle_timeout", "want 1m to 24h, got %s", s.IdleTimeout)
	}
	if s.MaxAge < s.IdleTimeout || s.MaxAge > 30*24*time.Hour {
		errs.Add("max_age", "want idle_timeout (%s) to 720h, got %s", s.IdleTimeout, s.MaxAge)
	}
	return errs.Err()
}
