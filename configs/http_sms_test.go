package configs_test

import (
	"strings"
	"testing"

	"flashotp/configs"
	"flashotp/smsgw"
)

// The http_sms section: loaded from the file with secrets from the environment, checked only when sms.via
// is http, each bad key named.
func TestLoadHTTPSMS(t *testing.T) {
	const twilio = `sms: {via: http}
http_sms:
  preset: twilio
  account_sid: AC0123456789abcdef0123456789abcdef
  from: "+15557654321"
  callback_base_url: https://otp.example.com/
  headers: {X-Trace: "{{.Ref}}"}
`
	t.Setenv("FLASHOTP_HTTP_SMS_AUTH_TOKEN", "from-the-env")
	c, err := configs.Load(writeConfig(t, minimalFile("", "", "")+twilio))
	if err != nil {
		t.Fatal(err)
	}
	g := c.HTTPSMS
	if g.Preset != smsgw.PresetTwilio || g.AuthToken != "from-the-env" || g.From != "+15557654321" || g.Timeout != smsgw.DefaultSettings.Timeout || g.SuccessCodes != "200-299" {
		t.Errorf("loaded %+v", g)
	}
	t.Setenv("FLASHOTP_HTTP_SMS_AUTH_TOKEN", "")

	for _, tc := range []struct{ name, file, want string }{
		{"via http without the section", "sms: {via: http}\n", "http_sms.preset: want twilio, vonage or custom"},
		{"no sender", "sms: {via: http}\nhttp_sms: {preset: vonage, api_key: k, api_secret: s}\n", "http_sms.from: preset vonage needs a sender"},
		{"bad sender", "sms: {via: http}\nhttp_sms: {preset: vonage, api_key: k, api_secret: s, from: \"Acme Bank Limited\"}\n", "http_sms.from:"},
		{"custom body", "sms: {via: http}\nhttp_sms: {preset: custom, url: \"https://gw.example.com\", body: \"{\\\"to\\\": {{.To}}}\"}\n", "http_sms.body:"},
		{"bad timeout", "sms: {via: http}\nhttp_sms: {preset: vonage, api_key: k, api_secret: s, from: Acme, timeout: 1h}\n", "http_sms.timeout: want 100ms..5m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configs.Load(writeConfig(t, minimalFile("", "", "")+tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error = %v, want %q", err, tc.want)
			}
		})
	}
	// Under sms.via trunk the section is not read.
	if _, err := configs.Load(writeConfig(t, minimalFile("", "", "")+"http_sms: {preset: nope}\n")); err != nil {
		t.Errorf("via trunk: %v", err)
	}
}
