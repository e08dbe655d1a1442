package dialer

import (
	"time"

	"flashotp/setting"
)

// Settings are the dialer's pacing and timeouts, the config file's dialer section.
type Settings struct {
	RingTime    time.Duration `mapstructure:"ring_time"`
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// CancelGuard bounds how long a call waits for the final answer after its CANCEL before it is ended anyway.
	CancelGuard time.Duration `mapstructure:"cancel_guard"`
	// QueueSize bounds the calls accepted but not yet dialed; a full queue answers 503 unavailable.
	QueueSize int `mapstructure:"queue_size"`
	// ShutdownTimeout bounds the drain on SIGTERM (the context Stop is given): requests finish, ringing
	// calls are cancelled and their outcomes written. Calls still running then are recorded as interrupted
	// at the next start.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// DefaultSettings are the settings of a dialer section that sets none.
var DefaultSettings = Settings{
	DialTimeout:     30 * time.Second,
	CancelGuard:     4 * time.Second,
	QueueSize:       10000,
	ShutdownTimeout: 10 * time.Second,
}

// Validate reports every bad key of s, each a *setting.Error ("key: what is wrong").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if s.RingTime < 0 || s.RingTime > time.Minute {
		bad("ring_time", "want 0..1m, got %s", s.RingTime)
	}
	if s.DialTimeout < 100*time.Millisecond || s.DialTimeout > 5*time.Minute {
		bad("dial_timeout", "want 100ms..5m, got %s", s.DialTimeout)
	}
	if s.CancelGuard < 100*time.Millisecond || s.CancelGuard > time.Minute {
		bad("cancel_guard", "want 100ms..1m, got %s", s.CancelGuard)
	}
	if s.QueueSize < 1 {
		bad("queue_size", "must be positive")
	}
	if s.ShutdownTimeout < time.Second || s.ShutdownTimeout > 10*time.Minute {
		bad("shutdown_timeout", "want 1s..10m, got %s", s.ShutdownTimeout)
	} else if s.ShutdownTimeout < s.CancelGuard {
		bad("shutdown_timeout", "%s is shorter than dialer.cancel_guard %s: a cancelled call could not end in time", s.ShutdownTimeout, s.CancelGuard)
	}
	return errs.Err()
}
