package sms_test

import (
	"errors"
	"strings"
	"testing"

	"flashotp/setting"
	"flashotp/sms"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		text string
		want error
	}{
		{"Your code is 123456", nil},
		{"Line one\r\nline\ttwo", nil},
		{"Ваш код 123456 😀", nil},
		{strings.Repeat("é", sms.MaxText/2), nil},
		{"", sms.ErrEmptyText},
		{" \n\t", sms.ErrEmptyText},
		{strings.Repeat("a", sms.MaxText+1), sms.ErrTextTooLong},
		{"code \xff", sms.ErrTextNotUTF8},
		{"code\x00 123", sms.ErrTextControl},
		{"code \x1b[31m123", sms.ErrTextControl},
		{"code \u0085", sms.ErrTextControl},
		{"code\x7f", sms.ErrTextControl},
	}
	for _, tc := range tests {
		if err := sms.CheckText(tc.text); !errors.Is(err, tc.want) {
			t.Errorf("CheckText(%.20q) = %v, want %v", tc.text, err, tc.want)
		}
	}
}

func TestCheckSender(t *testing.T) {
	good := []string{"+442079460000", "+1555", "+123456789012345", "Acme", "MyBank", "Acme Inc", "A", "12345", "Café-Ñ", "ACME €uro", "Ab{}Cd"}
	for _, s := range good {
		if err := sms.CheckSender(s); err != nil {
			t.Errorf("CheckSender(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"":                  "empty",
		"+44 20 7946":       "E.164",
		"+0442079460000":    "E.164",
		"+123":              "E.164",
		"+1234567890123456": "E.164",
		"442079460000":      "at most 11",
		"TwelveLetter":      "at most 11",
		"Acme{}{}Inc":       "at most 11", // 11 characters, 15 septets
		"Acme\nInc":         "printable",
		"Acme\rInc":         "printable",
		"Acme`":             "GSM",
		"Acme\x00":          "GSM",
		"Acmeç":             "GSM",
		" Acme":             "spaces",
		"Acme ":             "spaces",
		"Acme\xff":          "GSM",
	}
	for s, want := range bad {
		err := sms.CheckSender(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSender(%q) = %v, want an error saying %q", s, err, want)
		}
	}
	if !sms.IsNumber("+442079460000") || sms.IsNumber("Acme") || sms.IsNumber("442079460000") {
		t.Error("IsNumber: a number is E.164")
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := sms.DefaultSettings.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := (sms.Settings{Via: sms.ViaHTTP}).Validate(); err != nil {
		t.Fatalf("via http: %v", err)
	}
	if d := sms.DefaultSettings; d.Via != "trunk" || d.Sender != "" {
		t.Fatalf("defaults %+v, want via trunk, no sender", d)
	}
	tests := []struct {
		name   string
		change func(*sms.Settings)
		key    string
		msg    string
	}{
		{"unknown via", func(s *sms.Settings) { s.Via = "pigeon" }, "via", `want trunk, smpp or http, got "pigeon"`},
		{"empty via", func(s *sms.Settings) { s.Via = "" }, "via", "want trunk"},
		{"bad number", func(s *sms.Settings) { s.Sender = "+44 20" }, "sender", "E.164"},
		{"long sender ID", func(s *sms.Settings) { s.Sender = "AcmeBankLimited" }, "sender", "at most 11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sms.DefaultSettings
			tc.change(&s)
			errs := setting.Split(s.Validate())
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one", errs)
			}
			var se *setting.Error
			if !errors.As(errs[0], &se) || se.Key != tc.key || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("error %v, want %s: ...%s...", errs[0], tc.key, tc.msg)
			}
		})
	}
	for _, ok := range []sms.Settings{
		{Via: "trunk", Sender: "+442079460000"},
		{Via: "trunk", Sender: "Acme"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// Outside input (a config's sender, a rendered template) never panics the checks, and what CheckSender
// takes as an alphanumeric ID has no byte a SIP header or a log line would trip on.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"Acme", "+442079460000", "Acme\r\nX: y", "€€€€€€", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = sms.CheckText(s)
		if sms.CheckSender(s) == nil && strings.ContainsAny(s, "\x00\r\n\f\x1b") {
			t.Fatalf("sender %q taken", s)
		}
	})
}
