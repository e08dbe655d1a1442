package configs_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"flashotp/configs"
	"flashotp/whatsapp"
)

const whatsAppSection = `whatsapp:
  base_url: http://127.0.0.1:8089
  api_version: v22.0
  phone_number_id: "106540352242922"
  app_secret: app-secret-0123456789
  verify_token: verify-me-please
  template: shop_code
  languages: {en: en_GB, pt-BR: pt_BR}
  timeout: 3s
`

// The whatsapp section loads (its access token from the environment, as a secret should come), an app may
// then use channel whatsapp; without the section it may not, and a bad key stops the load naming it.
func TestLoadWhatsApp(t *testing.T) {
	t.Setenv("FLASHOTP_WHATSAPP_ACCESS_TOKEN", "EAAJB-from-the-environment")
	c, err := configs.Load(writeConfig(t, minimalFile("", "", `, channels: [flashcall, whatsapp]`)+whatsAppSection))
	if err != nil {
		t.Fatal(err)
	}
	want := whatsapp.Settings{
		BaseURL: "http://127.0.0.1:8089", APIVersion: "v22.0", PhoneNumberID: "106540352242922", AccessToken: "EAAJB-from-the-environment",
		AppSecret: "app-secret-0123456789", VerifyToken: "verify-me-please", Template: "shop_code",
		Languages: map[string]string{"en": "en_GB", "pt-br": "pt_BR"}, Timeout: 3 * time.Second,
	}
	if !reflect.DeepEqual(c.WhatsApp, want) {
		t.Errorf("loaded %+v\nwant %+v", c.WhatsApp, want)
	}
	// No section: the channel is off, with its defaults.
	t.Setenv("FLASHOTP_WHATSAPP_ACCESS_TOKEN", "")
	c, err = configs.Load(writeConfig(t, minimalFile("", "", "")))
	if err != nil || c.WhatsApp.Configured() || c.WhatsApp.BaseURL != "https://graph.facebook.com" || c.WhatsApp.Template != "verification_code" {
		t.Errorf("no section: %+v, %v", c.WhatsApp, err)
	}
	for name, tt := range map[string]struct{ file, want string }{
		"channel without the section": {minimalFile("", "", `, channels: [flashcall, whatsapp]`),
			"apps[0].channels[1]: channel whatsapp needs the whatsapp section"},
		"no access token": {minimalFile("", "", "") + whatsAppSection, "whatsapp.access_token: required"},
		"bad version":     {minimalFile("", "", "") + strings.Replace(whatsAppSection, "v22.0", "22", 1), "whatsapp.api_version: want a Graph API version"},
		"bad language":    {minimalFile("", "", "") + strings.Replace(whatsAppSection, "en_GB", "english", 1), "whatsapp.languages.en: want a WhatsApp template language code"},
		"unknown key":     {minimalFile("", "", "") + whatsAppSection + "  token: x\n", `unknown key "whatsapp.token"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := configs.Load(writeConfig(t, tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want %q", err, tt.want)
			}
		})
	}
}
