package otp

import (
	"net/mail"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"flashotp/apps"
	"flashotp/fault"
)

// typeNames names number types in messages.
var typeNames = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.PREMIUM_RATE: "premium-rate", phonenumbers.SHARED_COST: "shared-cost",
	phonenumbers.UAN: "universal access (UAN)", phonenumbers.PERSONAL_NUMBER: "personal-number",
	phonenumbers.PAGER: "pager", phonenumbers.VOICEMAIL: "voicemail", phonenumbers.TOLL_FREE: "toll-free",
	phonenumbers.VOIP: "VoIP", phonenumbers.MOBILE: "mobile", phonenumbers.FIXED_LINE: "fixed-line",
	phonenumbers.FIXED_LINE_OR_MOBILE: "fixed-line or mobile",
}

// Recipient is a checked destination: a phone number, an email address, or both (a workflow with an email
// step).
type Recipient struct {
	E164    string // with '+'; empty for an email-only send
	Country string // ISO 3166
	Type    phonenumbers.PhoneNumberType
	Email   string // the address of email steps
}

// key is what the recipient's rate limits, index and lockout count: its number, else its address.
func (r Recipient) key() string {
	if r.E164 != "" {
		return r.E164
	}
	return r.Email
}

// checkEmail checks s as an email address: a bare address (no display name, no comment), at most 254
// bytes, nothing net/mail would have to quote and nothing a header could carry (CR, LF, control characters).
func checkEmail(s string) (string, error) {
	if len(s) > 254 || strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == ' ' || r == '<' || r == '>' || r == ',' || r == '"' || r == '(' || r == ')' || r == ';' || r == ':' || r == '\\' || r == '[' || r == ']'
	}) {
		return "", fault.Errorf(fault.InvalidRecipient, "email: want a bare address such as user@example.com (no name, spaces, quotes or brackets)")
	}
	// One mailbox, one key for its limits and lookups, whatever case it was written in.
	s = strings.ToLower(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fault.Errorf(fault.InvalidRecipient, "email: %q is not an email address", s)
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fault.Errorf(fault.InvalidRecipient, "email: %q has no domain with a dot", s)
	}
	return s, nil
}

// NormalizeRecipient checks that s is an E.164 number ("+" optional, digits only, nothing else) of a mobile
// or fixed line (or VoIP), not of a type blocked by default (apps.DefaultBlockedNumberTypes), and returns
// it with its '+' and its country (ISO 3166).
func NormalizeRecipient(s string) (e164, country string, err error) {
	r, err := checkRecipient(s, apps.App{BlockedNumberTypes: apps.DefaultBlockedNumberTypes})
	return r.E164, r.Country, err
}

// checkRecipient checks s as NormalizeRecipient does, against app's fraud guards: its blocked number
// types and its allowed countries. Anything that is not digits is refused before parsing, so no header
// text can pass.
func checkRecipient(s string, app apps.App) (Recipient, error) {
	digits := strings.TrimPrefix(s, "+")
	if len(digits) < 6 || len(digits) > 15 || digits[0] == '0' {
		return Recipient{}, fault.Errorf(fault.InvalidRecipient, "recipient must be an E.164 number: + and 6 to 15 digits, not starting with 0")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return Recipient{}, fault.Errorf(fault.InvalidRecipient, "recipient must hold only digits after an optional +")
		}
	}
	r := Recipient{E164: "+" + digits}
	num, err := phonenumbers.Parse(r.E164, "")
	// The type is UNKNOWN exactly when the library's IsValidNumber is false.
	if err == nil {
		r.Country, r.Type = classify(num)
	}
	if err != nil || r.Type == phonenumbers.UNKNOWN {
		return Recipient{}, fault.Errorf(fault.InvalidRecipient, "recipient %s is not a valid phone number", r.E164)
	}
	for _, name := range app.BlockedNumberTypes {
		if apps.NumberTypes[name] == r.Type {
			return Recipient{}, fault.Errorf(fault.DestinationBlocked, "recipient is a %s number (%s is in this app's blocked_number_types)", typeNames[r.Type], name)
		}
	}
	switch r.Type {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.VOIP:
	default:
		return Recipient{}, fault.Errorf(fault.InvalidRecipient, "recipient %s is not a mobile or fixed-line number", r.E164)
	}
	if len(app.AllowedCountries) > 0 && !slices.Contains(app.AllowedCountries, r.Country) {
		return Recipient{}, fault.Errorf(fault.DestinationBlocked, "recipient's country %s is not in this app's allowed_countries", r.Country)
	}
	return r, nil
}

// recipientKey checks s as a recipient to look up: an email address, or a number, and returns the key the
// verification is stored and limited under.
func recipientKey(s string) (string, error) {
	if strings.Contains(s, "@") {
		return checkEmail(s)
	}
	r, err := checkRecipient(s, apps.App{})
	return r.E164, err
}
