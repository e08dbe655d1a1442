package templates

import "fmt"

// The keys of an email's subject and HTML body in an app's templates, beside its text body's (email):
// templates.email.<locale> is the text part, templates.email_subject.<locale> the subject,
// templates.email_html.<locale> the HTML part. Each falls back to the built-in one of its key on its own.
const (
	KeyEmailSubject = "email_subject"
	KeyEmailHTML    = "email_html"
)

// Email is an email's rendered words.
type Email struct {
	Subject string // one line, no control characters
	Text    string // the text/plain part
	HTML    string // the text/html part, its data escaped by html/template
	Locale  string // the locale of the text part's template
}

// RenderEmail renders an email for d as Render does each of its parts: the text body picks the locale
// (locale, then fallback, then en), and the subject and HTML body are rendered in the locale it used, so
// that the three agree whenever the app (or the engine) has all three in it.
func RenderEmail(custom map[string]map[string]string, locale, fallback string, d Data) (Email, error) {
	text, used, err := Render(custom, ChannelEmail, locale, fallback, d)
	if err != nil {
		return Email{}, err
	}
	subject, _, err := Render(custom, KeyEmailSubject, used, fallback, d)
	if err != nil {
		return Email{}, fmt.Errorf("subject: %w", err)
	}
	html, _, err := Render(custom, KeyEmailHTML, used, fallback, d)
	if err != nil {
		return Email{}, fmt.Errorf("html: %w", err)
	}
	return Email{Subject: subject, Text: text, HTML: html, Locale: used}, nil
}

// emailWords are a built-in email's sentences in one language; emailBuiltins makes its three templates.
type emailWords struct {
	subject, intro, expires, ignore string
}

// emailLocales are the built-in emails. The subject starts with the code, as an SMS does, for the
// notification's preview; the text part holds the code on a line of its own, easy to select.
var emailLocales = map[string]emailWords{
	"en": {
		subject: `{{.Code}} is your {{.App}} verification code`,
		intro:   `Your {{.App}} verification code is:`,
		expires: `It expires in {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		ignore:  `If you did not ask for this code, you can ignore this email.`,
	},
	"es": {
		subject: `{{.Code}} es tu código de {{.App}}`,
		intro:   `Tu código de verificación de {{.App}} es:`,
		expires: `Caduca en {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		ignore:  `Si no has pedido este código, puedes ignorar este correo.`,
	},
	"pt": {
		subject: `{{.Code}} é o seu código {{.App}}`,
		intro:   `O seu código de verificação {{.App}} é:`,
		expires: `Expira em {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		ignore:  `Se não pediu este código, pode ignorar este e-mail.`,
	},
	"fr": {
		subject: `{{.Code}} est votre code {{.App}}`,
		intro:   `Votre code de vérification {{.App}} est :`,
		expires: `Il expire dans {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		ignore:  `Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.`,
	},
	"de": {
		subject: `{{.Code}} ist Ihr {{.App}} Bestätigungscode`,
		intro:   `Ihr {{.App}} Bestätigungscode lautet:`,
		expires: `Er ist {{.Minutes}} {{if eq .Minutes 1}}Minute{{else}}Minuten{{end}} gültig.`,
		ignore:  `Wenn Sie diesen Code nicht angefordert haben, können Sie diese E-Mail ignorieren.`,
	},
	"hi": {
		subject: `{{.Code}} आपका {{.App}} सत्यापन कोड है`,
		intro:   `आपका {{.App}} सत्यापन कोड है:`,
		expires: `यह {{.Minutes}} मिनट तक मान्य है।`,
		ignore:  `यदि आपने यह कोड नहीं माँगा है, तो इस ईमेल को अनदेखा करें।`,
	},
}

// emailHTML is the built-in HTML body around a language's words: inline styles only (mail clients drop
// style sheets), the code large and spaced. html/template escapes .App and .Code where they land.
const emailHTML = `<!DOCTYPE html>
<html lang="%s">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.App}}</title></head>
<body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#1f2328;background:#ffffff">
<p style="font-size:16px;margin:0 0 12px">%s</p>
<p style="font-size:32px;font-weight:bold;letter-spacing:6px;margin:0 0 12px;font-family:Consolas,Menlo,monospace">{{.Code}}</p>
<p style="font-size:14px;margin:0 0 12px">%s</p>
<p style="font-size:12px;color:#656d76;margin:0">%s</p>
</body>
</html>
`

func init() {
	for _, key := range []string{ChannelEmail, KeyEmailSubject, KeyEmailHTML} {
		builtin[key] = map[string]string{}
	}
	for l, w := range emailLocales {
		builtin[KeyEmailSubject][l] = w.subject
		builtin[ChannelEmail][l] = w.intro + "\n\n{{.Code}}\n\n" + w.expires + "\n\n" + w.ignore + "\n"
		builtin[KeyEmailHTML][l] = fmt.Sprintf(emailHTML, l, w.intro, w.expires, w.ignore)
	}
}
