package sms

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxText is the longest text, in bytes of UTF-8, a message may carry: ten parts of 160 GSM characters,
// about what handsets still join into one message. It bounds the SIP MESSAGE's body too.
const MaxText = 1600

// MaxSenderID is the longest alphanumeric sender ID, in GSM septets: what the originator address of an SMS
// holds (TS 23.040 9.1.2.5: ten octets).
const MaxSenderID = 11

// Errors of CheckText.
var (
	// ErrEmptyText is returned for a text with nothing in it.
	ErrEmptyText = errors.New("sms text is empty")
	// ErrTextTooLong is returned for a text of more than MaxText bytes.
	ErrTextTooLong = fmt.Errorf("sms text is longer than %d bytes", MaxText)
	// ErrTextNotUTF8 is returned for a text that is not valid UTF-8.
	ErrTextNotUTF8 = errors.New("sms text is not valid UTF-8")
	// ErrTextControl is returned for a text with a control character other than tab, line feed or carriage
	// return (a NUL, an escape sequence): no handset shows them, and some gateways cut the text there.
	ErrTextControl = errors.New("sms text holds a control character")
)

// CheckText returns why text cannot be sent as an SMS, or nil.
func CheckText(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return ErrEmptyText
	case len(text) > MaxText:
		return fmt.Errorf("%w: %d bytes", ErrTextTooLong, len(text))
	case !utf8.ValidString(text):
		return ErrTextNotUTF8
	}
	for i, r := range text {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return fmt.Errorf("%w: %U at byte %d", ErrTextControl, r, i)
		}
	}
	return nil
}

// e164 is a number in E.164 form: '+', a country code that does not start with 0, 4..15 digits in all.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{3,14}$`)

// IsNumber reports whether sender is a number (E.164) rather than an alphanumeric sender ID.
func IsNumber(sender string) bool { return e164.MatchString(sender) }

// CheckSender returns why sender cannot be the sender of an SMS, or nil. A sender is a number in E.164
// ("+442079460000") or an alphanumeric sender ID: 1..11 septets of the GSM 7-bit alphabet, printable,
// without spaces at either end ("MyBank", "Acme Inc"). Whether a trunk lets an alphanumeric ID through is
// the trunk's business.
func CheckSender(sender string) error {
	if strings.HasPrefix(sender, "+") {
		if !IsNumber(sender) {
			return fmt.Errorf("%q: a number must be E.164, '+' and 4..15 digits", sender)
		}
		return nil
	}
	n := 0
	for _, r := range sender {
		w := septets(r)
		if w == 0 || unicode.IsControl(r) {
			return fmt.Errorf("%q: an alphanumeric sender ID may hold only printable characters of the GSM 7-bit alphabet, not %q", sender, r)
		}
		n += w
	}
	switch {
	case n == 0:
		return errors.New("empty: want a number in E.164 or an alphanumeric sender ID")
	case n > MaxSenderID:
		return fmt.Errorf("%q: want a number in E.164 ('+' and 4..15 digits) or an alphanumeric sender ID of at most %d GSM characters", sender, MaxSenderID)
	case strings.TrimSpace(sender) != sender:
		return fmt.Errorf("%q: spaces at either end", sender)
	}
	return nil
}
