package templates_test

import (
	"strconv"
	"strings"
	"testing"

	"flashotp/templates"
)

// The WhatsApp fallback texts: one per locale of the SMS ones, each passes Check and renders the code,
// the app and the minutes; a locale without one falls back to en.
func TestBuiltinWhatsApp(t *testing.T) {
	for _, l := range templates.Locales(templates.ChannelSMS) {
		src, ok := templates.Builtin(templates.ChannelWhatsApp, l)
		if !ok {
			t.Errorf("no built-in whatsapp %s text", l)
			continue
		}
		if err := templates.Check(templates.ChannelWhatsApp, l, src); err != nil {
			t.Errorf("whatsapp.%s: Check: %v", l, err)
		}
		for _, minutes := range []int{1, 10} {
			text, used, err := templates.Render(nil, templates.ChannelWhatsApp, l, "en", templates.Data{Code: "730155", App: "ShopApp", Minutes: minutes})
			if err != nil || used != l {
				t.Fatalf("whatsapp.%s: Render = %q, %q, %v", l, text, used, err)
			}
			for _, part := range []string{"730155", "ShopApp", " " + strconv.Itoa(minutes) + " "} {
				if !strings.Contains(text, part) {
					t.Errorf("whatsapp.%s: %q does not hold %q", l, text, part)
				}
			}
		}
	}
	if _, used, err := templates.Render(nil, templates.ChannelWhatsApp, "ja", "", templates.Data{Code: "1234", App: "A", Minutes: 1}); err != nil || used != "en" {
		t.Errorf("ja: %q, %v; want en", used, err)
	}
}
