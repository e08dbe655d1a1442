package templates_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"flashotp/templates"
)

// Every built-in template passes Check and renders the code, the app and the minutes, in every locale.
func TestBuiltinRender(t *testing.T) {
	want := []string{"en", "es", "pt", "fr", "de", "hi"}
	for _, ch := range []string{templates.ChannelSMS} {
		locales := templates.Locales(ch)
		for _, l := range want {
			if _, ok := templates.Builtin(ch, l); !ok {
				t.Errorf("%s: no built-in %s template (have %v)", ch, l, locales)
			}
		}
		for _, l := range locales {
			src, _ := templates.Builtin(ch, l)
			if err := templates.Check(ch, l, src); err != nil {
				t.Errorf("%s.%s: Check: %v", ch, l, err)
			}
			if !strings.HasPrefix(src, "{{.Code}} ") {
				t.Errorf("%s.%s: the code must come first (lock screens show a message's start): %q", ch, l, src)
			}
			for _, code := range []string{"4821", "730155", "9063318427"} {
				for _, minutes := range []int{1, 5, 15} {
					d := templates.Data{Code: code, App: "ShopApp", Minutes: minutes}
					text, used, err := templates.Render(nil, ch, l, "en", d)
					if err != nil || used != l {
						t.Fatalf("%s.%s: Render = %q, %q, %v", ch, l, text, used, err)
					}
					for _, part := range []string{code, "ShopApp", " " + strconv.Itoa(minutes) + " "} {
						if !strings.Contains(text, part) {
							t.Errorf("%s.%s: %q does not hold %q", ch, l, text, part)
						}
					}
					if strings.Contains(text, "{{") || strings.Contains(text, "<no value>") {
						t.Errorf("%s.%s: %q", ch, l, text)
					}
				}
			}
		}
	}
	one, _, _ := templates.Render(nil, "sms", "en", "", templates.Data{Code: "1234", App: "A", Minutes: 1})
	five, _, _ := templates.Render(nil, "sms", "en", "", templates.Data{Code: "1234", App: "A", Minutes: 5})
	if !strings.HasSuffix(one, "in 1 minute.") || !strings.HasSuffix(five, "in 5 minutes.") {
		t.Errorf("singular and plural: %q, %q", one, five)
	}
}

// A built-in SMS with a 6-digit code, an app name of 8 characters, a 15-minute TTL and an Android hash is one
// SMS that the SMS Retriever reads: at most 140 bytes, as GSM 03.38 septets (160) when the text has only
// GSM characters, else as UCS-2 (70 characters). en, fr and de must be GSM.
func TestBuiltinSMSFitsOneSegmentWithHash(t *testing.T) {
	gsmOnly := map[string]bool{"en": true, "fr": true, "de": true}
	for _, l := range templates.Locales(templates.ChannelSMS) {
		text, _, err := templates.Render(nil, "sms", l, "", templates.Data{Code: "730155", App: "Shopping", Minutes: 15})
		if err != nil {
			t.Fatal(err)
		}
		text = templates.AndroidHash(text, "FA+9qCX9VSu")
		septets, gsm := gsmSeptets(text)
		bytes := (septets*7 + 7) / 8
		if !gsm {
			bytes = 2 * len(utf16.Encode([]rune(text)))
		}
		t.Logf("%s: gsm=%v %d bytes: %q", l, gsm, bytes, text)
		if gsmOnly[l] && !gsm {
			t.Errorf("%s: %q is not GSM 03.38 text", l, text)
		}
		if bytes > templates.RetrieverMaxBytes || gsm && septets > 160 {
			t.Errorf("%s: %d bytes (%q), want at most %d", l, bytes, text, templates.RetrieverMaxBytes)
		}
	}
}

// gsmSeptets returns the septets text takes in GSM 03.38 (the basic set, 2 for an extension character) and
// whether it is GSM text at all.
func gsmSeptets(text string) (int, bool) {
	const basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	const ext = "^{}\\[~]|€\f"
	n := 0
	for _, r := range text {
		switch {
		case strings.ContainsRune(basic, r):
			n++
		case strings.ContainsRune(ext, r):
			n += 2
		default:
			return 0, false
		}
	}
	return n, true
}

// Locales match by language: the send's locale, then the app's, then en; the app's own templates before
// the built-in ones.
func TestRenderLocale(t *testing.T) {
	custom := map[string]map[string]string{"sms": {
		"pt-BR": "{{.Code}} é o código do {{.App}} (BR)",
		"fr":    "Code {{.App}} : {{.Code}} (maison)",
		"it":    "{{.Code}} è il tuo codice {{.App}}",
	}}
	tests := []struct {
		custom           map[string]map[string]string
		locale, fallback string
		used, holds      string
	}{
		{nil, "pt-BR", "en", "pt", "é o seu código"},
		{nil, "pt-PT", "en", "pt", "é o seu código"},
		{nil, "hi-IN", "en", "hi", "आपका"},
		{nil, "es-419", "en", "es", "es tu código"},
		{nil, "es_MX", "en", "es", "es tu código"},
		{nil, "de-CH", "fr", "de", "Bestätigungscode"},
		{nil, "EN-gb", "de", "en", "verification code"},
		{nil, "ja", "fr", "fr", "code de vérification"}, // no ja template: the app's locale
		{nil, "sw", "de", "de", "Bestätigungscode"},     // x/text would take en for sw (High): not the same language
		{nil, "gl", "fr", "fr", "vérification"},         // nor es for Galician
		{nil, "", "es", "es", "es tu código"},           // no locale: the app's
		{nil, "", "", "en", "verification code"},        // neither: en
		{nil, "ja", "ko", "en", "verification code"},    // neither has a template: en
		{nil, "ja", "not a tag", "en", "verification"},  // a bad fallback is passed over
		{custom, "pt-BR", "en", "pt-BR", "(BR)"},        // the app's own before the built-in pt
		{custom, "pt", "en", "pt-BR", "(BR)"},
		{custom, "fr-CA", "en", "fr", "(maison)"},
		{custom, "it-CH", "en", "it", "è il tuo codice"},
		{custom, "de", "en", "de", "Bestätigungscode"}, // not in the app's: the built-in
		{custom, "ja", "it", "it", "è il tuo"},         // the app's locale, matched in its own templates
		{map[string]map[string]string{"email": {"de": "{{.Code}}"}}, "de", "", "de", "Bestätigungscode"},
	}
	for _, tt := range tests {
		text, used, err := templates.Render(tt.custom, "sms", tt.locale, tt.fallback, templates.Data{Code: "4821", App: "Shop", Minutes: 5})
		if err != nil || used != tt.used || !strings.Contains(text, tt.holds) || !strings.Contains(text, "4821") {
			t.Errorf("Render(%q, fallback %q) = %q, %q, %v; want locale %q, text holding %q", tt.locale, tt.fallback, text, used, err, tt.used, tt.holds)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	d := templates.Data{Code: "4821", App: "Shop", Minutes: 5}
	for _, l := range []string{"zz", "xx-YY", "123", "en_", "a", "en--US", strings.Repeat("a", 100), "en\r\nX: y"} {
		if _, _, err := templates.Render(nil, "sms", l, "en", d); !errors.Is(err, templates.ErrLocale) {
			t.Errorf("locale %q: %v, want ErrLocale", l, err)
		}
		if err := templates.CheckLocale(l); !errors.Is(err, templates.ErrLocale) {
			t.Errorf("CheckLocale(%q) = %v, want ErrLocale", l, err)
		}
	}
	for _, ch := range []string{"flashcall", "voice", "inbound", "", "SMS"} {
		if _, _, err := templates.Render(nil, ch, "en", "en", d); !errors.Is(err, templates.ErrChannel) {
			t.Errorf("channel %q: %v, want ErrChannel", ch, err)
		}
	}
	// whatsapp's built-ins (the fallback text of Meta's template) stand behind an app's own, as sms's do.
	custom := map[string]map[string]string{"whatsapp": {"de": "Ihr Code: {{.Code}}"}}
	if text, used, err := templates.Render(custom, "whatsapp", "fr", "en", d); err != nil || used != "fr" || !strings.HasPrefix(text, "4821 est votre code") {
		t.Errorf("whatsapp fr over an app's de = %q, %q, %v; want the built-in fr", text, used, err)
	}
	if text, used, err := templates.Render(custom, "whatsapp", "de-AT", "en", d); err != nil || used != "de" || text != "Ihr Code: 4821" {
		t.Errorf("whatsapp de-AT = %q, %q, %v", text, used, err)
	}
	// An unchecked template that lost the code is an error, never a message without it.
	bad := map[string]map[string]string{"sms": {"en": "Your code is ready"}}
	if _, _, err := templates.Render(bad, "sms", "en", "en", d); !errors.Is(err, templates.ErrNoCode) {
		t.Errorf("a template without the code: %v, want ErrNoCode", err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, text string
		want       error // nil: accepted
	}{
		{"plain", "Your code: {{.Code}}", nil},
		{"all fields", "{{.Code}} for {{.App}}, {{.Minutes}} min", nil},
		{"print", `{{print .App "-" .Code}}`, nil},
		{"printf", `{{printf "%s-%s" .App .Code}}`, templates.ErrTemplate},
		{"if/else", `{{if gt .Minutes 1}}{{.Code}} ({{.Minutes}} minutes){{else}}{{.Code}} (1 minute){{end}}`, nil},
		{"with and variables", `{{with $c := .Code}}{{$c}}{{end}} {{$.App}}`, nil},
		{"comment", `{{/* the code */}}{{.Code}}`, nil},
		{"no code", "Your {{.App}} code expires in {{.Minutes}} minutes", templates.ErrNoCode},
		{"fixed code", "Your code is 4029", templates.ErrNoCode},
		{"code only in one branch", `{{if eq .Minutes 1}}{{.Code}}{{else}}soon{{end}}`, templates.ErrNoCode},
		{"code in a comment", `{{/* {{.Code}} */}}Your code`, templates.ErrNoCode},
		{"length only", `{{len .Code}} digits`, templates.ErrNoCode},
		{"empty", "", templates.ErrTemplate},
		{"blank", "  \n", templates.ErrTemplate},
		{"does not parse", "{{.Code", templates.ErrTemplate},
		{"unknown field", "{{.Code}} {{.Secret}}", templates.ErrTemplate},
		{"unknown field in a branch never taken", "{{.Code}}{{if false}}{{.Phone}}{{end}}", templates.ErrTemplate},
		{"field of a field", "{{.Code.Len}}", templates.ErrTemplate},
		{"field of a variable", "{{$.Code}}{{$.Recipient}}", templates.ErrTemplate},
		{"dot", "{{.}}", templates.ErrTemplate},
		{"range", "{{range 3}}{{$.Code}}{{end}}", templates.ErrTemplate},
		{"range over a string", "{{range $i, $c := .Code}}{{$c}}{{end}}{{.Code}}", templates.ErrTemplate},
		{"define", `{{define "x"}}{{.Code}}{{end}}{{template "x" .}}`, templates.ErrTemplate},
		{"block", `{{block "x" .}}{{.Code}}{{end}}`, templates.ErrTemplate},
		{"call", `{{call .App}}{{.Code}}`, templates.ErrTemplate},
		{"index", `{{index .Code 0}}{{.Code}}`, templates.ErrTemplate},
		{"slice", `{{slice .Code 0 2}}{{.Code}}`, templates.ErrTemplate},
		{"fails to run", `{{.Code}}{{lt .App 3}}`, templates.ErrTemplate},
		{"huge output", "{{.Code}}" + strings.Repeat("{{.App}}{{.App}}{{.App}}{{.App}}", 60), templates.ErrTemplate},
		{"too long", "{{.Code}}" + strings.Repeat("x", templates.MaxText), templates.ErrTemplate},
		{"not UTF-8", "{{.Code}}\xff", templates.ErrTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := templates.Check("sms", "en", tt.text)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Check(%q) = %v, want %v", tt.text, err, tt.want)
			}
		})
	}
	if err := templates.Check("voice", "en", "{{.Code}}"); !errors.Is(err, templates.ErrChannel) {
		t.Errorf("voice: %v, want ErrChannel", err)
	}
	if err := templates.Check("sms", "zz", "{{.Code}}"); !errors.Is(err, templates.ErrLocale) {
		t.Errorf("locale zz: %v, want ErrLocale", err)
	}
	for _, ch := range templates.Channels() {
		if err := templates.Check(ch, "pt-BR", "{{.Code}}"); err != nil {
			t.Errorf("%s: %v", ch, err)
		}
	}
}

func TestAndroidHash(t *testing.T) {
	tests := []struct{ text, hash, want string }{
		{"123456 is your code.", "FA+9qCX9VSu", "123456 is your code.\nFA+9qCX9VSu"},
		{"123456 is your code.\n", "FA+9qCX9VSu", "123456 is your code.\nFA+9qCX9VSu"},
		{"123456 is your code. \r\n\n", "FA+9qCX9VSu", "123456 is your code.\nFA+9qCX9VSu"},
		{"123456 is your code.", "", "123456 is your code."},
	}
	for _, tt := range tests {
		if got := templates.AndroidHash(tt.text, tt.hash); got != tt.want {
			t.Errorf("AndroidHash(%q, %q) = %q, want %q", tt.text, tt.hash, got, tt.want)
		}
	}
	for h, want := range map[string]bool{"FA+9qCX9VSu": true, "abcdefghij0": true, "a/b+c/d+e/f": true,
		"FA+9qCX9VS": false, "FA+9qCX9VSuX": false, "FA-9qCX9VSu": false, "FA+9qCX9VS=": false, "": false, "FA+9qCX9VS\n": false} {
		if got := templates.ValidAndroidHash(h); got != want {
			t.Errorf("ValidAndroidHash(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestMinutesOf(t *testing.T) {
	for d, want := range map[time.Duration]int{time.Minute: 1, 90 * time.Second: 2, 5 * time.Minute: 5, 15 * time.Minute: 15, time.Second: 1, 0: 1} {
		if got := templates.MinutesOf(d); got != want {
			t.Errorf("MinutesOf(%s) = %d, want %d", d, got, want)
		}
	}
}

// Render is on the send path: a template it has seen is not parsed again.
func BenchmarkRender(b *testing.B) {
	custom := map[string]map[string]string{"sms": {"fr": "Code {{.App}} : {{.Code}}"}}
	d := templates.Data{Code: "730155", App: "Shop", Minutes: 5}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := templates.Render(custom, "sms", "pt-BR", "en", d); err != nil {
			b.Fatal(err)
		}
	}
}
