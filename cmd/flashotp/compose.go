package main

import (
	"time"

	"flashotp/apps"
	"flashotp/message"
	"flashotp/templates"
)

// compose writes the message of a step that goes to a Sender other than the trunk's (otp.Config.Compose):
// an email's subject, text and HTML parts from the app's templates and the built-in ones
// (templates.RenderEmail); another channel's text from its text template.
func compose(app apps.App, channel, locale, code string) (message.Message, error) {
	d := templates.Data{Code: code, App: app.ID, Minutes: templates.MinutesOf(time.Duration(app.TTL))}
	if channel == apps.ChannelEmail {
		e, err := templates.RenderEmail(app.Templates, locale, app.Locale, d)
		return message.Message{Subject: e.Subject, Text: e.Text, HTML: e.HTML, Locale: e.Locale}, err
	}
	text, used, err := templates.Render(app.Templates, channel, locale, app.Locale, d)
	return message.Message{Text: text, Locale: used}, err
}
