package templates_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"flashotp/templates"
)

// Every built-in email (subject, text, HTML) passes Check and renders the code, the app and the minutes in
// every locale; the subject is one line.
func TestBuiltinEmail(t *testing.T) {
	want := []string{"de", "en", "es", "fr", "hi", "pt"}
	for _, key := range templates.Keys(templates.ChannelEmail) {
		if got := templates.Locales(key); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: built-in locales %v, want %v", key, got, want)
		}
		for _, l := range want {
			src, _ := templates.Builtin(key, l)
			if err := templates.Check(key, l, src); err != nil {
				t.Errorf("%s.%s: Check: %v", key, l, err)
			}
		}
	}
	for _, l := range want {
		for _, minutes := range []int{1, 5} {
			d := templates.Data{Code: "730155", App: "ShopApp", Minutes: minutes}
			e, err := templates.RenderEmail(nil, l, "en", d)
			if err != nil || e.Locale != l {
				t.Fatalf("%s: RenderEmail = %+v, %v", l, e, err)
			}
			for name, part := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
				for _, w := range []string{"730155", "ShopApp"} {
					if !strings.Contains(part, w) {
						t.Errorf("%s %s: %q does not hold %q", l, name, part, w)
					}
				}
				if strings.Contains(part, "{{") || strings.Contains(part, "<no value>") {
					t.Errorf("%s %s: %q", l, name, part)
				}
			}
			for name, part := range map[string]string{"text": e.Text, "html": e.HTML} {
				if !strings.Contains(part, " "+strconv.Itoa(minutes)+" ") {
					t.Errorf("%s %s: no %d minutes in %q", l, name, minutes, part)
				}
			}
			if strings.ContainsAny(e.Subject, "\r\n") || !strings.HasPrefix(e.Subject, "730155 ") {
				t.Errorf("%s subject: %q, want one line starting with the code", l, e.Subject)
			}
			if !strings.Contains(e.Text, "\n730155\n") {
				t.Errorf("%s text: the code is not on a line of its own: %q", l, e.Text)
			}
			if !strings.Contains(e.HTML, `<html lang="`+l+`">`) {
				t.Errorf("%s html: no lang: %q", l, e.HTML)
			}
		}
	}
}

// What a value brings is escaped in the HTML part and cannot break the subject's line; the text part takes
// it as it is (it is text/plain).
func TestEmailEscapes(t *testing.T) {
	d := templates.Data{Code: "4821", App: "<b>Shop&Co</b>\r\nBcc: evil@example.com", Minutes: 5}
	e, err := templates.RenderEmail(nil, "en", "en", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<b>Shop") || !strings.Contains(e.HTML, "&lt;b&gt;Shop&amp;Co&lt;/b&gt;") {
		t.Errorf("html: the app's name is not escaped: %q", e.HTML)
	}
	if strings.ContainsAny(e.Subject, "\r\n") {
		t.Errorf("subject holds a line break: %q", e.Subject)
	}
	if want := "4821 is your <b>Shop&Co</b> Bcc: evil@example.com verification code"; e.Subject != want {
		t.Errorf("subject = %q, want %q", e.Subject, want)
	}
	if !strings.Contains(e.Text, d.App) {
		t.Errorf("text: %q", e.Text)
	}
	// An app's own subject that writes a line break is refused by Check, and cleaned if it got in anyway.
	custom := map[string]map[string]string{templates.KeyEmailSubject: {"en": "Code {{.Code}}\r\nBcc: evil@example.com"}}
	if err := templates.Check(templates.KeyEmailSubject, "en", custom[templates.KeyEmailSubject]["en"]); !errors.Is(err, templates.ErrTemplate) {
		t.Errorf("Check of a two-line subject: %v, want ErrTemplate", err)
	}
	if s, _, err := templates.Render(custom, templates.KeyEmailSubject, "en", "en", d); err != nil || s != "Code 4821 Bcc: evil@example.com" {
		t.Errorf("Render of a two-line subject = %q, %v", s, err)
	}
}

func TestCheckEmail(t *testing.T) {
	tests := []struct {
		key, text string
		want      error
	}{
		{templates.KeyEmailSubject, "Your {{.App}} code", nil}, // a subject need not print the code
		{templates.KeyEmailSubject, "Your code\n", templates.ErrTemplate},
		{templates.KeyEmailSubject, "{{.Code}} {{.Secret}}", templates.ErrTemplate},
		{templates.KeyEmailSubject, strings.Repeat("x", 300), templates.ErrTemplate},
		{templates.ChannelEmail, "Your code is ready", templates.ErrNoCode},
		{templates.ChannelEmail, "Code:\n{{.Code}}\n", nil},
		{templates.KeyEmailHTML, "<p>{{.Code}}</p>", nil},
		{templates.KeyEmailHTML, "<p>Your code is ready</p>", templates.ErrNoCode},
		{templates.KeyEmailHTML, "<p>{{range .App}}{{end}}{{.Code}}</p>", templates.ErrTemplate},
		{templates.KeyEmailHTML, "<p>{{.Code}}</p>" + strings.Repeat(" ", templates.MaxHTMLText), templates.ErrTemplate},
		{templates.KeyEmailHTML, "<a href='{{.Code}}", templates.ErrTemplate}, // html/template: ends in an attribute
		{"email_text", "{{.Code}}", templates.ErrChannel},
	}
	for _, tt := range tests {
		err := templates.Check(tt.key, "en", tt.text)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Check(%s, %.40q) = %v, want %v", tt.key, tt.text, err, tt.want)
		}
	}
}

// An app's own text body in one locale takes the built-in subject and HTML of that locale.
func TestRenderEmailCustom(t *testing.T) {
	custom := map[string]map[string]string{templates.ChannelEmail: {"de": "Ihr Code: {{.Code}}"}}
	e, err := templates.RenderEmail(custom, "de-AT", "en", templates.Data{Code: "4821", App: "Shop", Minutes: 5})
	if err != nil || e.Locale != "de" || e.Text != "Ihr Code: 4821" || !strings.Contains(e.Subject, "Bestätigungscode") || !strings.Contains(e.HTML, `lang="de"`) {
		t.Errorf("RenderEmail = %+v, %v", e, err)
	}
	if got := templates.ChannelOf(templates.KeyEmailHTML); got != templates.ChannelEmail {
		t.Errorf("ChannelOf(email_html) = %q", got)
	}
	if !templates.IsKey(templates.KeyEmailSubject) || templates.IsKey("voice") {
		t.Error("IsKey")
	}
}
