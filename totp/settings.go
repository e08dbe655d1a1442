package totp

import (
	"strings"

	"flashotp/setting"
)

// Settings are the config file's totp section.
type Settings struct {
	// Issuer names the service in the user's authenticator (the otpauth:// label's and issuer parameter's
	// issuer). Empty: the app's ID.
	Issuer string `mapstructure:"issuer"`
	// Digits is the length of a code when the enroll request does not say: 6 or 8.
	Digits int `mapstructure:"digits"`
	// LookAhead is how many HOTP counters past the expected one a code may be of (an authenticator pressed
	// without its code being used moves ahead of the engine): 0 to 100.
	LookAhead int `mapstructure:"look_ahead"`
}

// DefaultSettings are the settings of a totp section that sets none.
var DefaultSettings = Settings{Digits: 6, LookAhead: 10}

// Validate reports every bad key of s, each a *setting.Error.
func (s Settings) Validate() error {
	var errs setting.Errors
	if s.Issuer != "" {
		if err := checkIssuer(s.Issuer); err != "" {
			errs.Add("issuer", "%s", err)
		}
	}
	if s.Digits != 6 && s.Digits != 8 {
		errs.Add("digits", "want 6 or 8, got %d", s.Digits)
	}
	if s.LookAhead < 0 || s.LookAhead > maxLookAhead {
		errs.Add("look_ahead", "want 0 to %d, got %d", maxLookAhead, s.LookAhead)
	}
	return errs.Err()
}

// maxLookAhead bounds the HOTP window: each counter of it is one more code a guess may hit.
const maxLookAhead = 100

// checkIssuer says what is wrong with an issuer, or "". A colon would split the otpauth:// label
// ("issuer:account") in the wrong place.
func checkIssuer(s string) string {
	switch {
	case len(s) > 64:
		return "at most 64 bytes"
	case !printable(s):
		return "printable characters only"
	case strings.Contains(s, ":"):
		return "no colon (it separates the issuer from the account in the authenticator's label)"
	}
	return ""
}
