package webhook

import (
	"time"

	"flashotp/setting"
)

// Settings are the webhook delivery's retries and timeouts, the config file's webhooks section.
type Settings struct {
	RetryMin    time.Duration `mapstructure:"retry_min"`     // first retry after this; doubles each try
	RetryMax    time.Duration `mapstructure:"retry_max"`     // longest wait between tries
	GiveUpAfter time.Duration `mapstructure:"give_up_after"` // a webhook not delivered this long after it was queued is dropped
	Timeout     time.Duration `mapstructure:"timeout"`       // per request, webhooks (pre-send hooks have their own)
}

// DefaultSettings are the settings of a webhooks section that sets none, and of a key New is given as 0.
var DefaultSettings = Settings{RetryMin: time.Second, RetryMax: 5 * time.Minute, GiveUpAfter: time.Hour, Timeout: 10 * time.Second}

// withDefaults fills the keys s leaves at zero (or below).
func (s Settings) withDefaults() Settings {
	if s.RetryMin <= 0 {
		s.RetryMin = DefaultSettings.RetryMin
	}
	if s.RetryMax <= 0 {
		s.RetryMax = DefaultSettings.RetryMax
	}
	if s.GiveUpAfter <= 0 {
		s.GiveUpAfter = DefaultSettings.GiveUpAfter
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultSettings.Timeout
	}
	return s
}

// Validate reports every bad key of s, each a *setting.Error ("key: what is wrong").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if s.RetryMin < 10*time.Millisecond || s.RetryMax < s.RetryMin {
		bad("retry_min", "want at least 10ms and at most webhooks.retry_max, got %s", s.RetryMin)
	}
	if s.GiveUpAfter < s.RetryMin || s.GiveUpAfter > 7*24*time.Hour {
		bad("give_up_after", "want webhooks.retry_min to 168h, got %s", s.GiveUpAfter)
	}
	if s.Timeout < 100*time.Millisecond || s.Timeout > time.Minute {
		bad("timeout", "want 100ms to 1m, got %s", s.Timeout)
	}
	return errs.Err()
}
