package configs_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
)

// An app's SPEC section 8 settings load from the file (viper lowercases map keys: pt-BR is pt-br, the same
// BCP 47 tag), and a bad one stops the load naming the app's key:
// a template that does not print the code names the app, the channel and the locale.
func TestLoadAppChannels(t *testing.T) {
	good := minimalFile("", "", `, channels: [flashcall, sms, voice], locale: pt-BR, android_app_hash: "FA+9qCX9VSu",
  workflow: [{channel: flashcall, timeout: 20s}, {channel: sms, timeout: 1m}, {channel: voice}],
  templates: {sms: {fr: "{{.Code}} est votre code {{.App}}.", pt-BR: "{{.Code}} é o seu código"}},
  code_lengths: {sms: 8}`)
	c, err := configs.Load(writeConfig(t, good))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0].App
	want := []apps.Step{{Channel: "flashcall", Timeout: apps.Duration(20 * time.Second)}, {Channel: "sms", Timeout: apps.Duration(time.Minute)}, {Channel: "voice"}}
	if !reflect.DeepEqual(a.Channels, []string{"flashcall", "sms", "voice"}) || !reflect.DeepEqual(a.Workflow, want) ||
		a.Locale != "pt-BR" || a.AndroidAppHash != "FA+9qCX9VSu" || a.Templates["sms"]["pt-br"] != "{{.Code}} é o seu código" ||
		a.CodeLengths["sms"] != 8 {
		t.Errorf("loaded %+v", a)
	}

	tests := []struct{ name, app, want string }{
		{"template without the code", `, channels: [sms], templates: {sms: {en: "{{.Code}}", fr: "Votre code {{.App}}"}}`,
			`apps[0].templates.sms.fr: app "a", channel sms, locale fr: does not print {{.Code}}`},
		{"inbound without a trunk for it", `, channels: [flashcall, inbound], inbound_pool: a`, `apps[0].channels[1]: channel inbound needs a trunk with inbound: true`},
		{"inbound without its pool", `, channels: [flashcall, inbound]`, `apps[0].inbound_pool: channel inbound needs the pool of numbers the users call`},
		{"workflow step without a timeout", `, channels: [flashcall, sms], workflow: [{channel: flashcall}, {channel: sms}]`,
			`apps[0].workflow[0].timeout: required on every step but the last`},
		{"locale", `, locale: "english"`, `apps[0].locale: "english": want a BCP 47 language tag`},
		{"android hash", `, android_app_hash: "abc"`, `apps[0].android_app_hash: want the 11 characters`},
		{"code length", `, code_lengths: {voice: 3}`, `apps[0].code_lengths.voice: want 4 to 10, got 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configs.Load(writeConfig(t, minimalFile("", "", tt.app)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want %q", err, tt.want)
			}
		})
	}
}
