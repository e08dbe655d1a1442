package whatsapp

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"flashotp/setting"
	"flashotp/templates"
)

// Settings are the WhatsApp channel's, the config file's whatsapp section. The channel is on when
// phone_number_id is set (Configured); then the credentials are required.
type Settings struct {
	// BaseURL is the Graph API's root: https://graph.facebook.com, or a proxy's (or a test's).
	BaseURL string `mapstructure:"base_url"`
	// APIVersion is the Graph API version the requests name, e.g. v21.0.
	APIVersion string `mapstructure:"api_version"`
	// PhoneNumberID is the ID Meta gives the business phone number that sends (not the number itself).
	PhoneNumberID string `mapstructure:"phone_number_id"`
	// AccessToken is the system user's access token, sent as a bearer token. A secret: never logged.
	AccessToken string `mapstructure:"access_token"`
	// AppSecret is the Meta app's secret, the key of the webhooks' X-Hub-Signature-256. A secret.
	AppSecret string `mapstructure:"app_secret"`
	// VerifyToken is what Meta's webhook handshake must present (hub.verify_token). A secret.
	VerifyToken string `mapstructure:"verify_token"`
	// Template is the name of the approved authentication template (one body parameter, the code, and a
	// copy-code or one-tap button).
	Template string `mapstructure:"template"`
	// Languages maps a locale of ours (BCP 47, as a step's locale) to the template's language code at
	// Meta (en_US, pt_BR, ...). A step's locale picks the nearest; none near: en's, else the first in
	// order. Empty: DefaultLanguages.
	Languages map[string]string `mapstructure:"languages"`
	// Timeout bounds one request to the API (the step's own deadline bounds all of its retries).
	Timeout time.Duration `mapstructure:"timeout"`
}

// DefaultLanguages are the template languages of a whatsapp section that sets none: the locales of the
// built-in templates, each to the language an authentication template is commonly approved in.
var DefaultLanguages = map[string]string{"en": "en_US", "es": "es", "pt": "pt_BR", "fr": "fr", "de": "de", "hi": "hi"}

// DefaultSettings are the settings of a whatsapp section that sets none: the channel is off.
var DefaultSettings = Settings{
	BaseURL:    "https://graph.facebook.com",
	APIVersion: "v21.0",
	Template:   "verification_code",
	Timeout:    10 * time.Second,
}

// Configured reports whether s turns the channel on: phone_number_id is set.
func (s Settings) Configured() bool { return s.PhoneNumberID != "" }

var (
	versionRe  = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,3}$`)
	numberIDRe = regexp.MustCompile(`^[0-9]{1,32}$`)
	// Meta's template names: lowercase letters, digits and underscores, at most 512 characters.
	templateRe = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	// Meta's language codes: a language, and a region after an underscore (en, en_US, zh_CN).
	languageRe = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2,3})?$`)
)

// Validate reports every bad key of s, each a *setting.Error ("access_token: ..."). A section that is not
// Configured is valid whatever else it holds, but for credentials set without phone_number_id.
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if !s.Configured() {
		for key, v := range map[string]string{"access_token": s.AccessToken, "app_secret": s.AppSecret, "verify_token": s.VerifyToken} {
			if v != "" {
				bad("phone_number_id", "required when %s is set (the channel is on only with a sending number)", key)
				break
			}
		}
		return errs.Err()
	}
	if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		bad("base_url", "want an http(s) URL without query or credentials, e.g. https://graph.facebook.com, got %q", s.BaseURL)
	}
	if !versionRe.MatchString(s.APIVersion) {
		bad("api_version", "want a Graph API version such as v21.0, got %q", s.APIVersion)
	}
	if !numberIDRe.MatchString(s.PhoneNumberID) {
		bad("phone_number_id", "want the digits of the phone number's ID at Meta (not the number), got %q", s.PhoneNumberID)
	}
	secret := func(key, v string, min int) {
		switch {
		case v == "":
			bad(key, "required when the channel is on (phone_number_id is set)")
		case len(v) < min:
			bad(key, "want at least %d characters", min)
		case strings.ContainsAny(v, " \t\r\n"):
			bad(key, "must not hold spaces or line breaks")
		}
	}
	secret("access_token", s.AccessToken, 16)
	secret("app_secret", s.AppSecret, 16)
	secret("verify_token", s.VerifyToken, 8)
	if !templateRe.MatchString(s.Template) {
		bad("template", "want the template's name at Meta: lowercase letters, digits and _, got %q", s.Template)
	}
	for _, l := range slices.Sorted(maps.Keys(s.Languages)) {
		if err := templates.CheckLocale(l); err != nil {
			bad("languages."+l, "%v", err)
		}
		if !languageRe.MatchString(s.Languages[l]) {
			bad("languages."+l, "want a WhatsApp template language code such as en_US or pt_BR, got %q", s.Languages[l])
		}
	}
	if s.Timeout <= 0 {
		bad("timeout", "must be positive, e.g. 10s")
	}
	return errs.Err()
}
