package sms

import (
	"flashotp/setting"
)

// What carries the SMS (sms.via).
const (
	// ViaTrunk sends a SIP MESSAGE (RFC 3428) on the app's trunk.
	ViaTrunk = "trunk"
	// ViaSMPP (an SMSC over SMPP) and ViaHTTP (an HTTP SMS gateway) are named by SPEC section 8 and not
	// available yet: Validate refuses them.
	ViaSMPP = "smpp"
	ViaHTTP = "http"
)

// Settings are the SMS channel's, the config file's sms section.
type Settings struct {
	// Via is what carries the message: trunk (a SIP MESSAGE on the app's trunk).
	Via string `mapstructure:"via"`
	// Sender is the From of every SMS: a number in E.164 or an alphanumeric sender ID (CheckSender).
	// Empty: the app's flash-call pool number.
	Sender string `mapstructure:"sender"`
}

// DefaultSettings are the settings of an sms section that sets none.
var DefaultSettings = Settings{Via: ViaTrunk}

// Validate reports every bad key of s, each a *setting.Error ("via: ...").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	switch s.Via {
	case ViaTrunk:
	case ViaSMPP, ViaHTTP:
		bad("via", "%s is not available yet: this version sends SMS only as a SIP MESSAGE on the trunk (via: trunk)", s.Via)
	default:
		bad("via", "want trunk, got %q", s.Via)
	}
	if s.Sender != "" {
		if err := CheckSender(s.Sender); err != nil {
			bad("sender", "%s", err)
		}
	}
	return errs.Err()
}
