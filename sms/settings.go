package sms

import (
	"flashotp/setting"
)

// What carries the SMS (sms.via).
const (
	// ViaTrunk sends a SIP MESSAGE (RFC 3428) on the app's trunk.
	ViaTrunk = "trunk"
	// ViaHTTP sends through an HTTP SMS gateway (the http_sms section, package smsgw).
	ViaHTTP = "http"
	// ViaSMPP submits it to an SMSC over SMPP 3.4 (the smpp section lists the SMSCs, package smpp).
	ViaSMPP = "smpp"
)

// Settings are the SMS channel's, the config file's sms section.
type Settings struct {
	// Via is what carries the message: trunk (a SIP MESSAGE on the app's trunk), smpp (an SMSC: the smpp
	// section) or http (an HTTP SMS gateway: the http_sms section).
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
	case ViaTrunk, ViaSMPP, ViaHTTP:
	default:
		bad("via", "want trunk, smpp or http, got %q", s.Via)
	}
	if s.Sender != "" {
		if err := CheckSender(s.Sender); err != nil {
			bad("sender", "%s", err)
		}
	}
	return errs.Err()
}
