package templates_test

import (
	"strings"
	"testing"

	"flashotp/templates"
)

// A template from the admin API or the config file either fails Check, or renders every code into its
// text, within MaxOutput bytes. Seeds: the built-in templates and testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	for _, l := range templates.Locales(templates.ChannelSMS) {
		src, _ := templates.Builtin(templates.ChannelSMS, l)
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if templates.Check("sms", "fr", text) != nil {
			return
		}
		custom := map[string]map[string]string{"sms": {"fr": text}}
		for _, d := range []templates.Data{{Code: "5531", App: "Shop", Minutes: 3}, {Code: "0000000000", App: "", Minutes: 15}} {
			out, used, err := templates.Render(custom, "sms", "fr-CA", "en", d)
			if err != nil || used != "fr" || !strings.Contains(out, d.Code) || len(out) > templates.MaxOutput {
				t.Fatalf("checked template %q: Render(%+v) = %q, %q, %v", text, d, out, used, err)
			}
		}
	})
}

// A send's locale is refused (ErrLocale) or picks a template; it never fails otherwise.
func FuzzRenderLocale(f *testing.F) {
	for _, s := range []string{"en", "pt-BR", "hi_IN", "zz", "", "x-private", "en-u-nu-arab", "de-CH-1996", "und"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, locale string) {
		out, used, err := templates.Render(nil, "sms", locale, "es", templates.Data{Code: "123456", App: "Shop", Minutes: 5})
		if err != nil {
			if templates.CheckLocale(locale) == nil {
				t.Fatalf("locale %q: CheckLocale accepts it, Render refuses it: %v", locale, err)
			}
			return
		}
		if _, ok := templates.Builtin("sms", used); !ok || !strings.Contains(out, "123456") {
			t.Fatalf("locale %q: %q, %q", locale, out, used)
		}
	})
}

// An email's subject or HTML part from the admin API or the config file either fails Check, or renders
// within its limits: a subject on one line whatever the data hold, an HTML part holding every code with the
// app's name escaped. Seeds: the built-in ones.
func FuzzCheckEmail(f *testing.F) {
	for _, key := range []string{templates.KeyEmailSubject, templates.KeyEmailHTML} {
		for _, l := range templates.Locales(key) {
			src, _ := templates.Builtin(key, l)
			f.Add(key == templates.KeyEmailHTML, src)
		}
	}
	f.Fuzz(func(t *testing.T, html bool, text string) {
		key := templates.KeyEmailSubject
		if html {
			key = templates.KeyEmailHTML
		}
		if templates.Check(key, "fr", text) != nil {
			return
		}
		custom := map[string]map[string]string{key: {"fr": text}}
		for _, d := range []templates.Data{{Code: "5531", App: "<Shop>\r\nBcc: x@y.z", Minutes: 3}, {Code: "0000000000", App: "", Minutes: 15}} {
			out, used, err := templates.Render(custom, key, "fr-CA", "en", d)
			if err != nil || used != "fr" {
				t.Fatalf("checked %s template %q: Render(%+v) = %q, %q, %v", key, text, d, out, used, err)
			}
			switch {
			case !html && (strings.ContainsAny(out, "\r\n") || len(out) > templates.MaxSubject):
				t.Fatalf("subject %q from %q", out, text)
			case html && (!strings.Contains(out, d.Code) || strings.Contains(out, "<Shop>") || len(out) > templates.MaxHTMLOutput):
				t.Fatalf("html %q from %q", out, text)
			}
		}
	})
}
