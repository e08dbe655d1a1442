package smsgw

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"flashotp/setting"
)

// Presets: the request shapes Send knows (Settings.Preset).
const (
	// PresetTwilio is Twilio Programmable Messaging: POST {url}/2010-04-01/Accounts/{account_sid}/Messages.json.
	PresetTwilio = "twilio"
	// PresetVonage is Vonage's SMS API: POST {url}/sms/json.
	PresetVonage = "vonage"
	// PresetCustom is the request the settings' method, url, headers and body templates describe.
	PresetCustom = "custom"
)

// Body formats of a custom request (Settings.BodyFormat).
const (
	FormatJSON = "json"
	FormatForm = "form"
)

// The providers' own base URLs, the default of Settings.URL for their presets.
const (
	TwilioURL = "https://api.twilio.com"
	VonageURL = "https://rest.nexmo.com"
)

// Vonage signature methods (Settings.SignatureMethod), as its dashboard names them: the MD5 hash of the
// parameters and the secret (its default), or an HMAC of the parameters keyed by the secret.
const (
	SigMD5Hash = "md5hash"
	SigMD5     = "md5"
	SigSHA1    = "sha1"
	SigSHA256  = "sha256"
	SigSHA512  = "sha512"
)

// Receipt kinds a custom gateway's statuses map to (Settings.CallbackStatuses).
const (
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusExpired     = "expired"
	StatusRejected    = "rejected"
	StatusIgnore      = "ignore"
)

// Auth is how a custom request authenticates: HTTP Basic (Username, Password) or a bearer Token; neither:
// none (or a header of Settings.Headers).
type Auth struct {
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	Token    string `mapstructure:"token"`
}

// Settings are the HTTP SMS gateway's, the config file's http_sms section. Secrets (auth.password,
// auth.token, auth_token, api_secret, signature_secret, callback_secret) are never logged.
type Settings struct {
	// Preset is twilio, vonage or custom.
	Preset string `mapstructure:"preset"`
	// URL is the provider's base URL for a preset (default the provider's own: tests and proxies set
	// another), or the whole request URL of a custom gateway, a template whose values are percent-encoded.
	URL string `mapstructure:"url"`
	// Method of a custom request: POST (default), PUT, PATCH or GET.
	Method string `mapstructure:"method"`
	// Headers of a custom request, each value a template (a value holding a line break is refused).
	Headers map[string]string `mapstructure:"headers"`
	// Body of a custom request: a text/template over To, From, Text, Code, Ref, App, Locale, Encoding and
	// CallbackURL, each value encoded for BodyFormat (JSON string contents, or a form value).
	Body string `mapstructure:"body"`
	// BodyFormat is json (default) or form.
	BodyFormat string `mapstructure:"body_format"`
	Auth       Auth   `mapstructure:"auth"`
	// SuccessCodes are the statuses that mean the gateway took the message: codes and ranges, comma
	// separated ("200-299", "200,202").
	SuccessCodes string `mapstructure:"success_codes"`
	// IDField is where a custom gateway's JSON answer holds its message ID, dot separated
	// ("messages.0.id"); empty: the answer is not read.
	IDField string `mapstructure:"id_field"`
	// CallbackBaseURL is the engine's public URL as the provider reaches it: delivery reports go to
	// {callback_base_url}/callbacks/sms/{ref}. Empty: no reports are asked for.
	CallbackBaseURL string `mapstructure:"callback_base_url"`
	// CallbackSecret signs a custom gateway's report URLs: each carries sig=HMAC-SHA256(secret, ref) in
	// hex, and a report without the right one is refused. Empty: custom reports are not checked.
	CallbackSecret string `mapstructure:"callback_secret"`
	// CallbackStatusField names the status in a custom gateway's report (query, form or JSON).
	CallbackStatusField string `mapstructure:"callback_status_field"`
	// CallbackStatuses maps a custom gateway's statuses (compared without case) to delivered,
	// undelivered, expired, rejected or ignore; statuses it does not name are ignored.
	CallbackStatuses map[string]string `mapstructure:"callback_statuses"`
	// Timeout bounds one request (the message's own deadline bounds all the tries).
	Timeout time.Duration `mapstructure:"timeout"`
	// From is the sender for the presets; empty: sms.sender.
	From string `mapstructure:"from"`

	// Twilio.
	AccountSID          string `mapstructure:"account_sid"`
	AuthToken           string `mapstructure:"auth_token"`
	MessagingServiceSID string `mapstructure:"messaging_service_sid"`

	// Vonage.
	APIKey          string `mapstructure:"api_key"`
	APISecret       string `mapstructure:"api_secret"`
	SignatureSecret string `mapstructure:"signature_secret"` // empty: delivery receipts are not checked
	SignatureMethod string `mapstructure:"signature_method"` // md5hash (default), md5, sha1, sha256, sha512
}

// DefaultSettings are the settings of an http_sms section that sets none (which is not used unless
// sms.via is http).
var DefaultSettings = Settings{
	Method: http.MethodPost, BodyFormat: FormatJSON, SuccessCodes: "200-299", Timeout: 10 * time.Second,
	CallbackStatusField: "status", SignatureMethod: SigMD5Hash,
}

var (
	twilioSID   = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	twilioMGSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	headerName  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Validate reports every bad key of s, each a *setting.Error ("preset: ...").
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	switch s.Preset {
	case PresetTwilio:
		if !twilioSID.MatchString(s.AccountSID) {
			bad("account_sid", "want Twilio's account SID (AC and 32 hex digits), got %q", s.AccountSID)
		}
		if s.AuthToken == "" {
			bad("auth_token", "must not be empty with preset twilio")
		}
		if s.MessagingServiceSID != "" && !twilioMGSID.MatchString(s.MessagingServiceSID) {
			bad("messaging_service_sid", "want a messaging service SID (MG and 32 hex digits), got %q", s.MessagingServiceSID)
		}
	case PresetVonage:
		if s.APIKey == "" {
			bad("api_key", "must not be empty with preset vonage")
		}
		if s.APISecret == "" {
			bad("api_secret", "must not be empty with preset vonage")
		}
		if !slices.Contains([]string{SigMD5Hash, SigMD5, SigSHA1, SigSHA256, SigSHA512}, s.SignatureMethod) {
			bad("signature_method", "want md5hash, md5, sha1, sha256 or sha512, got %q", s.SignatureMethod)
		}
	case PresetCustom:
		if s.URL == "" {
			bad("url", "must not be empty with preset custom")
		}
		switch s.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet:
		default:
			bad("method", "want POST, PUT, PATCH or GET, got %q", s.Method)
		}
		if s.Method == http.MethodGet && strings.TrimSpace(s.Body) != "" {
			bad("body", "a GET carries no body: put the values in url")
		}
		if s.BodyFormat != FormatJSON && s.BodyFormat != FormatForm {
			bad("body_format", "want json or form, got %q", s.BodyFormat)
		}
		if s.Auth.Token != "" && (s.Auth.Username != "" || s.Auth.Password != "") {
			bad("auth", "want either username and password (basic) or token (bearer), not both")
		}
		if s.Auth.Password != "" && s.Auth.Username == "" {
			bad("auth.username", "must not be empty with auth.password")
		}
		for k := range s.Headers {
			if !headerName.MatchString(k) {
				bad("headers."+k, "not a header name")
			}
		}
		for k, v := range s.CallbackStatuses {
			switch v {
			case StatusDelivered, StatusUndelivered, StatusExpired, StatusRejected, StatusIgnore:
			default:
				bad("callback_statuses."+k, "want delivered, undelivered, expired, rejected or ignore, got %q", v)
			}
		}
		if s.CallbackStatusField == "" {
			bad("callback_status_field", "must not be empty")
		}
		if _, err := compile(s); err != nil {
			bad("body", "%v", err)
		}
	default:
		bad("preset", "want twilio, vonage or custom, got %q", s.Preset)
	}
	if s.URL != "" && s.Preset != PresetCustom {
		if msg := checkBase(s.URL); msg != "" {
			bad("url", "%s", msg)
		}
	}
	if s.CallbackBaseURL != "" {
		if msg := checkBase(s.CallbackBaseURL); msg != "" {
			bad("callback_base_url", "%s", msg)
		}
	}
	if _, err := parseCodes(s.SuccessCodes); err != nil {
		bad("success_codes", "%v", err)
	}
	if s.Timeout < 100*time.Millisecond || s.Timeout > 5*time.Minute {
		bad("timeout", "want 100ms..5m, got %s", s.Timeout)
	}
	return errs.Err()
}

// checkBase says what is wrong with u as a base URL (http or https, a host, no query or fragment), or "".
func checkBase(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
		return fmt.Sprintf("want an http or https URL with a host, got %q", u)
	}
	if p.RawQuery != "" || p.Fragment != "" {
		return fmt.Sprintf("want no query or fragment, got %q", u)
	}
	return ""
}

// codeSet is a set of HTTP status codes: ranges [lo, hi].
type codeSet [][2]int

func (c codeSet) has(code int) bool {
	for _, r := range c {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// parseCodes reads "200-299,302".
func parseCodes(s string) (codeSet, error) {
	var out codeSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("want status codes and ranges such as \"200-299,302\", got %q", s)
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}
