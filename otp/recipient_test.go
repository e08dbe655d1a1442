package otp_test

import (
	"errors"
	"regexp"
	"testing"

	"flashotp/fault"
	"flashotp/otp"
)

var (
	e164     = regexp.MustCompile(`^\+[1-9][0-9]{5,14}$`)
	country2 = regexp.MustCompile(`^([A-Z]{2}|001)$`) // ISO 3166, or 001 for numbers of no country
)

func TestNormalizeRecipient(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		country string
		err     error
	}{
		{"+14155552671", "+14155552671", "US", nil},
		{"14155552671", "+14155552671", "US", nil},
		{"+16135550123", "+16135550123", "CA", nil}, // same +1, another country
		{"+33612345678", "+33612345678", "FR", nil},
		{"+442079460123", "+442079460123", "GB", nil},
		{"+4915123456789", "+4915123456789", "DE", nil},
		// Numbers of no country (+883: international networks) have phonenumbers' region "001".
		{"+883510012345", "+883510012345", "001", nil},
		{"+19005550123", "", "", fault.DestinationBlocked},
		{"+18005550123", "", "", fault.DestinationBlocked},
		{"+1555", "", "", fault.InvalidRecipient},
		{"abc", "", "", fault.InvalidRecipient},
		{"", "", "", fault.InvalidRecipient},
		{"+", "", "", fault.InvalidRecipient},
		{"++14155552671", "", "", fault.InvalidRecipient},
		{"+14155552671\r\nX: y", "", "", fault.InvalidRecipient},
		{"+1415555267\n", "", "", fault.InvalidRecipient},
		{"+1 415 555 2671", "", "", fault.InvalidRecipient},
		{"+1-415-555-2671", "", "", fault.InvalidRecipient},
		{"+014155552671", "", "", fault.InvalidRecipient},
		{"+1234567890123456", "", "", fault.InvalidRecipient},
		{"+999999999", "", "", fault.InvalidRecipient},
		{"+１４１５５５５２６７１", "", "", fault.InvalidRecipient},
		{"sip:+14155552671@example.com", "", "", fault.InvalidRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, country, err := otp.NormalizeRecipient(tt.in)
			if tt.err == nil {
				if err != nil || got != tt.want || country != tt.country {
					t.Fatalf("NormalizeRecipient(%q) = %q, %q, %v; want %q, %q", tt.in, got, country, err, tt.want, tt.country)
				}
				return
			}
			var oe *fault.Error
			if !errors.As(err, &oe) || oe.Code != tt.err {
				t.Fatalf("NormalizeRecipient(%q) = %q, %v, want %v", tt.in, got, err, tt.err)
			}
			if got != "" || country != "" {
				t.Errorf("NormalizeRecipient(%q) returned %q, %q with its error", tt.in, got, country)
			}
		})
	}
}

// FuzzNormalizeRecipient: whatever the string, a recipient is refused as invalid_recipient or
// destination_blocked, or comes back as E.164 with its country, and normalising that again changes
// nothing. Seeds: testdata/fuzz/FuzzNormalizeRecipient.
func FuzzNormalizeRecipient(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, country, err := otp.NormalizeRecipient(s)
		if err != nil {
			var oe *fault.Error
			if !errors.As(err, &oe) || (oe.Code != fault.InvalidRecipient && oe.Code != fault.DestinationBlocked) {
				t.Fatalf("NormalizeRecipient(%q) error %v is not invalid_recipient or destination_blocked", s, err)
			}
			return
		}
		if !e164.MatchString(got) {
			t.Fatalf("NormalizeRecipient(%q) = %q, not E.164", s, got)
		}
		if !country2.MatchString(country) {
			t.Fatalf("NormalizeRecipient(%q) country = %q, not an ISO 3166 code nor 001", s, country)
		}
		if again, c, err := otp.NormalizeRecipient(got); err != nil || again != got || c != country {
			t.Fatalf("NormalizeRecipient(%q) = %q, %q, %v: not stable on its own output", got, again, c, err)
		}
	})
}
