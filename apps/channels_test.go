package apps_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/internal/testclock"
)

// An app that sets none of SPEC section 8's settings: flash calls only, no workflow, en, 6-digit random codes.
func TestChannelDefaults(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "flashotp.db"), testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	created, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Get("shop")
	for _, got := range []apps.App{created.App, a} {
		if !reflect.DeepEqual(got.Channels, []string{"flashcall"}) || len(got.Workflow) != 0 || got.Workflow == nil ||
			got.Locale != "en" || got.AndroidAppHash != "" || got.Templates == nil || len(got.Templates) != 0 ||
			!reflect.DeepEqual(got.CodeLengths, map[string]int{"voice": 6, "sms": 6, "whatsapp": 6, "email": 6}) {
			t.Errorf("defaults: channels %v workflow %v locale %q hash %q templates %v code_lengths %v",
				got.Channels, got.Workflow, got.Locale, got.AndroidAppHash, got.Templates, got.CodeLengths)
		}
	}
	if !a.Allows("flashcall") || a.Allows("sms") || a.Allows("voice") || a.Allows("auto") || a.Allows("") {
		t.Errorf("Allows: a flashcall-only app without a workflow")
	}
	if a.CodeLengthFor("flashcall") != 4 || a.CodeLengthFor("sms") != 6 || a.CodeLengthFor("voice") != 6 {
		t.Errorf("CodeLengthFor: flashcall %d sms %d voice %d", a.CodeLengthFor("flashcall"), a.CodeLengthFor("sms"), a.CodeLengthFor("voice"))
	}

	// Set, they are kept, and a PATCH of one template keeps the others.
	full := apps.App{ID: "multi", Pools: []string{"demo"}, CodeLength: 5,
		Channels: []string{"flashcall", "sms", "voice"},
		Workflow: []apps.Step{{Channel: "flashcall", Timeout: apps.Duration(20 * time.Second)}, {Channel: "sms", Timeout: apps.Duration(time.Minute)}, {Channel: "voice"}},
		Locale:   "pt-BR", AndroidAppHash: "FA+9qCX9VSu",
		Templates:   map[string]map[string]string{"sms": {"fr": "Code {{.App}} : {{.Code}}", "pt-BR": "{{.Code}} é o seu código"}},
		CodeLengths: map[string]int{"sms": 8},
	}
	if _, err := r.Create(t.Context(), full); err != nil {
		t.Fatal(err)
	}
	m, _ := r.Get("multi")
	if !m.Allows("sms") || !m.Allows("voice") || !m.Allows("auto") || m.Allows("whatsapp") {
		t.Errorf("Allows: channels %v workflow %v", m.Channels, m.Workflow)
	}
	if m.CodeLengthFor("flashcall") != 5 || m.CodeLengthFor("sms") != 8 || m.CodeLengthFor("voice") != 6 {
		t.Errorf("CodeLengthFor: %v, code_length %d", m.CodeLengths, m.CodeLength)
	}
	if _, err := r.Update(t.Context(), "multi", func(a *apps.App) error {
		a.Templates["sms"] = map[string]string{"de": "Ihr Code: {{.Code}}"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, _ := r.Get("multi")
	if got := after.Templates["sms"]; len(got) != 1 || got["de"] == "" {
		t.Errorf("templates after the update: %v", after.Templates)
	}
	before, _ := json.Marshal(after) // Get's maps are the registry's own: compare what they held
	// A refused update changes nothing, the stored templates included (Update works on a copy).
	if _, err := r.Update(t.Context(), "multi", func(a *apps.App) error {
		a.Templates["sms"]["de"] = "Ihr Code"
		a.CodeLengths["sms"] = 3
		a.Workflow[0].Timeout = 0
		a.Channels[0] = "inbound"
		return nil
	}); !errors.Is(err, fault.InvalidRequest) {
		t.Fatalf("a bad update: %v", err)
	}
	again, _ := r.Get("multi")
	if now, _ := json.Marshal(again); string(now) != string(before) {
		t.Errorf("a refused update changed the app:\n%s\n%s", now, before)
	}
}

// Each of SPEC section 8's settings is refused with its key named, through Create: the path the admin API's
// POST and PATCH take (the config file's apps run the same Validate).
func TestChannelSettingsRefused(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "flashotp.db"), testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	sec := func(d time.Duration) apps.Duration { return apps.Duration(d) }
	step := func(ch string, d time.Duration) apps.Step { return apps.Step{Channel: ch, Timeout: sec(d)} }
	tests := []struct {
		name string
		set  func(a *apps.App)
		want string // in the error; "": accepted
	}{
		{"all channels", func(a *apps.App) { a.Channels = []string{"sms", "voice", "flashcall"} }, ""},
		{"no channel", func(a *apps.App) { a.Channels = []string{} }, "channels: an app needs at least one channel"},
		{"unknown channel", func(a *apps.App) { a.Channels = []string{"flashcall", "fax"} }, `channels[1]: unknown channel "fax" (want flashcall, voice, sms, whatsapp, email, inbound)`},
		{"inbound", func(a *apps.App) { a.Channels = []string{"sms", "inbound"}; a.InboundPool = "dids" }, ""},
		{"inbound without its pool", func(a *apps.App) { a.Channels = []string{"sms", "inbound"} }, `inbound_pool: channel inbound needs the pool of numbers the users call`},
		{"inbound pool's name", func(a *apps.App) { a.Channels = []string{"inbound"}; a.InboundPool = "no pool" }, `inbound_pool: want a pool's name, got "no pool"`},
		{"auto", func(a *apps.App) { a.Channels = []string{"auto"} }, "channels[0]: auto runs the app's workflow"},
		{"twice", func(a *apps.App) { a.Channels = []string{"sms", "sms"} }, `channels[1]: "sms" is listed twice`},
		{"case", func(a *apps.App) { a.Channels = []string{"SMS"} }, `channels[0]: unknown channel "SMS"`},

		{"workflow", func(a *apps.App) {
			a.Channels = []string{"flashcall", "sms", "voice"}
			a.Workflow = []apps.Step{step("flashcall", 20*time.Second), step("sms", time.Minute), step("voice", 0)}
		}, ""},
		{"workflow, last timeout set", func(a *apps.App) {
			a.Channels = []string{"flashcall", "sms"}
			a.Workflow = []apps.Step{step("flashcall", time.Second), step("sms", time.Hour)}
		}, ""},
		{"workflow step not in channels", func(a *apps.App) { a.Workflow = []apps.Step{step("flashcall", time.Minute), step("sms", 0)} },
			`workflow[1].channel: "sms" is not one of the app's channels (flashcall)`},
		{"workflow step unknown", func(a *apps.App) { a.Workflow = []apps.Step{step("pigeon", 0)} }, `workflow[0].channel: unknown channel "pigeon"`},
		{"workflow step auto", func(a *apps.App) { a.Workflow = []apps.Step{step("auto", 0)} }, "workflow[0].channel: auto runs"},
		{"workflow step inbound", func(a *apps.App) { a.Workflow = []apps.Step{step("inbound", 0)} }, `workflow[0].channel: inbound is no workflow step`},
		{"workflow timeout missing", func(a *apps.App) {
			a.Channels = []string{"flashcall", "sms"}
			a.Workflow = []apps.Step{step("flashcall", 0), step("sms", 0)}
		}, "workflow[0].timeout: required on every step but the last"},
		{"workflow timeout short", func(a *apps.App) {
			a.Workflow = []apps.Step{step("flashcall", 500*time.Millisecond), step("flashcall", 0)}
		},
			"workflow[0].timeout: want 1s to 1h, got 500ms"},
		{"workflow timeout long", func(a *apps.App) { a.Workflow = []apps.Step{step("flashcall", 2*time.Hour)} }, "workflow[0].timeout: want 1s to 1h, got 2h0m0s"},
		{"workflow timeout negative", func(a *apps.App) { a.Workflow = []apps.Step{step("flashcall", -time.Second)} }, "workflow[0].timeout: want 1s to 1h"},
		{"workflow too long", func(a *apps.App) {
			for range 6 {
				a.Workflow = append(a.Workflow, step("flashcall", time.Minute))
			}
		}, "workflow: want at most 5 steps, got 6"},

		{"locale", func(a *apps.App) { a.Locale = "hi-IN" }, ""},
		{"locale underscore", func(a *apps.App) { a.Locale = "pt_BR" }, ""},
		{"locale unknown", func(a *apps.App) { a.Locale = "zz" }, `locale: "zz": want a BCP 47 language tag`},
		{"locale malformed", func(a *apps.App) { a.Locale = "english please" }, `locale: "english please": want a BCP 47`},

		{"android hash", func(a *apps.App) { a.AndroidAppHash = "FA+9qCX9VSu" }, ""},
		{"android hash short", func(a *apps.App) { a.AndroidAppHash = "FA+9qCX9VS" }, `android_app_hash: want the 11 characters`},
		{"android hash bad character", func(a *apps.App) { a.AndroidAppHash = "FA+9qCX9VS\n" }, `android_app_hash: want the 11 characters`},

		{"code lengths", func(a *apps.App) { a.CodeLengths = map[string]int{"sms": 4, "voice": 10} }, ""},
		{"code length short", func(a *apps.App) { a.CodeLengths = map[string]int{"sms": 3} }, "code_lengths.sms: want 4 to 10, got 3"},
		{"code length long", func(a *apps.App) { a.CodeLengths = map[string]int{"voice": 11} }, "code_lengths.voice: want 4 to 10, got 11"},
		{"code length zero", func(a *apps.App) { a.CodeLengths = map[string]int{"voice": 0} }, "code_lengths.voice: want 4 to 10, got 0"},
		{"code length flashcall", func(a *apps.App) { a.CodeLengths = map[string]int{"flashcall": 6} }, "code_lengths.flashcall: a flash call's code is the caller ID's last digits: set code_length"},
		{"code length unknown", func(a *apps.App) { a.CodeLengths = map[string]int{"fax": 6} }, `code_lengths.fax: unknown channel "fax"`},
		{"code length inbound", func(a *apps.App) { a.CodeLengths = map[string]int{"inbound": 6} }, `code_lengths.inbound: an inbound call has no code`},

		{"templates", func(a *apps.App) {
			a.Templates = map[string]map[string]string{"sms": {"en": "{{.Code}} is your code", "pt-BR": "{{.Code}} é o seu código", "hi": "{{.Code}} आपका OTP है"}}
		}, ""},
		{"templates none for a channel", func(a *apps.App) { a.Templates = map[string]map[string]string{"sms": nil} }, ""},
		{"template without the code", func(a *apps.App) {
			a.Templates = map[string]map[string]string{"sms": {"en": "{{.Code}} is your code", "fr": "Votre code {{.App}} expire dans {{.Minutes}} minutes"}}
		}, `templates.sms.fr: app "shop", channel sms, locale fr: does not print {{.Code}}`},
		{"template with another field", func(a *apps.App) {
			a.Templates = map[string]map[string]string{"sms": {"de": "{{.Code}} für {{.Recipient}}"}}
		},
			`templates.sms.de: app "shop", channel sms, locale de: not a usable template: .Recipient is not a field (want .Code, .App or .Minutes)`},
		{"template that does not parse", func(a *apps.App) { a.Templates = map[string]map[string]string{"sms": {"es": "{{.Code} es tu código"}} },
			`templates.sms.es: app "shop", channel sms, locale es: not a usable template`},
		{"template of a bad locale", func(a *apps.App) { a.Templates = map[string]map[string]string{"sms": {"zz": "{{.Code}}"}} },
			`templates.sms.zz: app "shop", channel sms, locale zz: "zz": want a BCP 47`},
		{"template of voice", func(a *apps.App) { a.Templates = map[string]map[string]string{"voice": {"en": "{{.Code}}"}} },
			`templates.voice: channel "voice" has no text templates (only sms, whatsapp, email do)`},
		{"template of flashcall", func(a *apps.App) { a.Templates = map[string]map[string]string{"flashcall": {"en": "{{.Code}}"}} },
			`templates.flashcall: channel "flashcall" has no text templates`},
		{"template of inbound", func(a *apps.App) { a.Templates = map[string]map[string]string{"inbound": {"en": "{{.Code}}"}} },
			`templates.inbound: channel "inbound" has no text templates`},
		{"template of an unknown channel", func(a *apps.App) { a.Templates = map[string]map[string]string{"telex": {"en": "{{.Code}}"}} },
			`templates.telex: unknown channel "telex"`},
		{"email templates", func(a *apps.App) {
			a.Templates = map[string]map[string]string{
				"email": {"en": "Your code: {{.Code}}"}, "email_subject": {"en": "Your {{.App}} code"}, "email_html": {"en": "<p>{{.Code}}</p>"},
			}
		}, ""},
		{"email html without the code", func(a *apps.App) { a.Templates = map[string]map[string]string{"email_html": {"fr": "<p>{{.App}}</p>"}} },
			`templates.email_html.fr: app "shop", channel email_html, locale fr: does not print {{.Code}}`},
		{"email subject of two lines", func(a *apps.App) {
			a.Templates = map[string]map[string]string{"email_subject": {"en": "Code {{.Code}}\r\nBcc: evil@example.com"}}
		}, `templates.email_subject.en: app "shop", channel email_subject, locale en: not a usable template: a subject is one line`},
		{"email part unknown", func(a *apps.App) { a.Templates = map[string]map[string]string{"email_footer": {"en": "{{.Code}}"}} },
			`templates.email_footer: unknown channel "email_footer"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := apps.App{ID: "shop", Pools: []string{"demo"}}
			tt.set(&a)
			a.ID = "shop" // the messages name the app by its ID
			err := a.WithDefaults(defaults).Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			// Through the registry, as the admin API creates it: refused as invalid_request, nothing stored.
			a.ID = "shop" + strconv.Itoa(i)
			_, err = r.Create(t.Context(), a)
			if tt.want == "" && err != nil || tt.want != "" && !errors.Is(err, fault.InvalidRequest) {
				t.Fatalf("Create: %v", err)
			}
			if _, stored := r.Get(a.ID); stored != (tt.want == "") {
				t.Errorf("stored: %v", stored)
			}
		})
	}
}
