package otp

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// blockedTypes are number types a flash call must never go to: they cost the operator money, or feed
// revenue-share fraud, or cannot show a missed call.
var blockedTypes = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.PREMIUM_RATE:    "premium-rate",
	phonenumbers.SHARED_COST:     "shared-cost",
	phonenumbers.UAN:             "universal access (UAN)",
	phonenumbers.PERSONAL_NUMBER: "personal-number",
	phonenumbers.PAGER:           "pager",
	phonenumbers.VOICEMAIL:       "voicemail",
	phonenumbers.TOLL_FREE:       "toll-free",
}

// NormalizeRecipient checks that s is an E.164 number ("+" optional, digits only, nothing else) of a mobile
// or fixed line, and returns it with its '+' and its country (ISO 3166). Anything that is not digits is
// refused before parsing, so no header text can pass.
func NormalizeRecipient(s string) (e164, country string, err error) {
	digits := strings.TrimPrefix(s, "+")
	if len(digits) < 6 || len(digits) > 15 || digits[0] == '0' {
		return "", "", errorf(ErrInvalidRecipient, "recipient must be an E.164 number: + and 6 to 15 digits, not starting with 0")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", "", errorf(ErrInvalidRecipient, "recipient must hold only digits after an optional +")
		}
	}
	e164 = "+" + digits
	num, err := phonenumbers.Parse(e164, "")
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", "", errorf(ErrInvalidRecipient, "recipient %s is not a valid phone number", e164)
	}
	typ := phonenumbers.GetNumberType(num)
	if what, blocked := blockedTypes[typ]; blocked {
		return "", "", errorf(ErrDestinationBlocked, "recipient is a %s number", what)
	}
	switch typ {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.VOIP:
		return e164, phonenumbers.GetRegionCodeForNumber(num), nil
	}
	return "", "", errorf(ErrInvalidRecipient, "recipient %s is not a mobile or fixed-line number", e164)
}
