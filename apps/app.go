// Package apps keeps flashotp's API clients: each app's settings (code length, TTL, attempts, resends,
// pools, fraud guards, rate limits, webhooks) and its API keys, in bbolt, with the config file's apps put
// over the stored ones at start. It authenticates requests: key and secret, or a JWT (HS256) signed with
// the secret.
//
// A secret is shown once, when it is made, and stored only as an HMAC under a key derived from the server
// key (to check key+secret) and sealed with AES-GCM under another (HS256 needs the secret itself to check
// a JWT's signature). A copy of the database without the server key gives neither.
package apps

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"flashotp/numberpool"
	"flashotp/setting"
)

// Duration is a time.Duration written in JSON as a Go duration string ("5m"): the number pools' own.
type Duration = numberpool.Duration

// Limit is one rate limit: at most Limit events per Window; Limit 0 switches it off.
type Limit struct {
	Limit  int      `json:"limit" mapstructure:"limit"`
	Window Duration `json:"window" mapstructure:"window"`
}

// Rate limit scopes an app can set (docs/api.md, "Rate limits").
const (
	ScopeRecipient           = "recipient"            // sends (and resends) to one recipient
	ScopeApp                 = "app"                  // sends of the whole app
	ScopeClient              = "client"               // requests per API key and client address
	ScopePrefix              = "prefix"               // sends to one number range (the recipient less its last PrefixFreeDigits)
	ScopeFailedVerifications = "failed_verifications" // wrong codes per recipient, across verifications (NIST SP 800-63B)
)

// PrefixFreeDigits is how many trailing digits the prefix scope ignores: a burst to one block of 1,000
// numbers is one key.
const PrefixFreeDigits = 3

// DefaultRateLimits are the limits of an app that sets none.
var DefaultRateLimits = map[string]Limit{
	ScopeRecipient:           {5, Duration(10 * time.Minute)},
	ScopeApp:                 {100, Duration(time.Second)},
	ScopeClient:              {200, Duration(time.Second)},
	ScopePrefix:              {30, Duration(time.Minute)},
	ScopeFailedVerifications: {100, Duration(24 * time.Hour)},
}

// NumberTypes are the phone number types an app may block, by the name settings use.
var NumberTypes = map[string]phonenumbers.PhoneNumberType{
	"fixed_line": phonenumbers.FIXED_LINE, "mobile": phonenumbers.MOBILE,
	"fixed_line_or_mobile": phonenumbers.FIXED_LINE_OR_MOBILE, "toll_free": phonenumbers.TOLL_FREE,
	"premium_rate": phonenumbers.PREMIUM_RATE, "shared_cost": phonenumbers.SHARED_COST,
	"voip": phonenumbers.VOIP, "personal_number": phonenumbers.PERSONAL_NUMBER, "pager": phonenumbers.PAGER,
	"uan": phonenumbers.UAN, "voicemail": phonenumbers.VOICEMAIL,
}

// DefaultBlockedNumberTypes are the types revenue-share fraud uses, or that cannot show a missed call.
var DefaultBlockedNumberTypes = []string{"premium_rate", "shared_cost", "uan", "personal_number", "pager", "voicemail", "toll_free"}

// Hook is an app's pre-send hook: its backend allows or denies each send.
type Hook struct {
	URL      string   `json:"url" mapstructure:"url"`
	Timeout  Duration `json:"timeout" mapstructure:"timeout"`     // default 2s
	FailOpen bool     `json:"fail_open" mapstructure:"fail_open"` // on timeout or error: allow (true) or deny (false, the default)
}

// App is one API client's settings, as the admin API (JSON) and the config file's apps[] (mapstructure)
// write them; the config file cannot set the last three.
type App struct {
	ID                 string           `json:"id" mapstructure:"id"`
	CodeLength         int              `json:"code_length" mapstructure:"code_length"`
	TTL                Duration         `json:"ttl" mapstructure:"ttl"`
	MaxAttempts        int              `json:"max_attempts" mapstructure:"max_attempts"`
	ResendCooldown     Duration         `json:"resend_cooldown" mapstructure:"resend_cooldown"`
	MaxResends         int              `json:"max_resends" mapstructure:"max_resends"`
	Pools              []string         `json:"pools" mapstructure:"pools"`
	AllowedCountries   []string         `json:"allowed_countries" mapstructure:"allowed_countries"`
	BlockedNumberTypes []string         `json:"blocked_number_types" mapstructure:"blocked_number_types"`
	RateLimits         map[string]Limit `json:"rate_limits" mapstructure:"rate_limits"`
	WebhookURL         string           `json:"webhook_url" mapstructure:"webhook_url"`
	PreSendHook        *Hook            `json:"pre_send_hook" mapstructure:"pre_send_hook"`
	Channels           []string         `json:"channels" mapstructure:"channels"`                   // SPEC section 8: the channels a send may name; default [flashcall]
	InboundPool        string           `json:"inbound_pool,omitempty" mapstructure:"inbound_pool"` // channel inbound: the pool of numbers the users call (dial_number)
	// InboundAttestation is the least STIR/SHAKEN attestation an inbound call must carry to approve (A, B or
	// C); "": none needed.
	InboundAttestation string `json:"inbound_attestation,omitempty" mapstructure:"inbound_attestation"`
	Workflow           []Step `json:"workflow" mapstructure:"workflow"`                 // what channel auto runs, step by step; default none (auto refused)
	Locale             string `json:"locale" mapstructure:"locale"`                     // BCP 47: the templates of a send that names none, or one without templates; default en
	AndroidAppHash     string `json:"android_app_hash" mapstructure:"android_app_hash"` // the app's SMS Retriever hash, the last line of its SMS; "": none
	// Templates are the app's own message templates, channel → locale → text, tried before the built-in ones.
	Templates   map[string]map[string]string `json:"templates" mapstructure:"templates"`
	CodeLengths map[string]int               `json:"code_lengths" mapstructure:"code_lengths"` // digits of the random codes per channel (voice, sms); default 6 each
	FromConfig  bool                         `json:"from_config" mapstructure:"-"`
	CreatedAt   time.Time                    `json:"created_at" mapstructure:"-"`
	UpdatedAt   time.Time                    `json:"updated_at" mapstructure:"-"`
}

// Defaults are the engine-wide settings (config otp section) an app inherits.
type Defaults struct {
	CodeLength  int
	TTL         time.Duration
	MaxAttempts int
	Pools       func(appID string) []string // the pools of an app that names none
}

// WithDefaults fills what a lacks. Rate limits it names replace the defaults one by one.
func (a App) WithDefaults(d Defaults) App {
	if a.CodeLength == 0 {
		a.CodeLength = d.CodeLength
	}
	if a.TTL == 0 {
		a.TTL = Duration(d.TTL)
	}
	if a.MaxAttempts == 0 {
		a.MaxAttempts = d.MaxAttempts
	}
	if a.ResendCooldown == 0 {
		a.ResendCooldown = Duration(30 * time.Second)
	}
	if a.MaxResends == 0 {
		a.MaxResends = 3
	}
	if len(a.Pools) == 0 && d.Pools != nil {
		a.Pools = d.Pools(a.ID)
	}
	if a.BlockedNumberTypes == nil {
		a.BlockedNumberTypes = slices.Clone(DefaultBlockedNumberTypes)
	}
	if a.AllowedCountries == nil {
		a.AllowedCountries = []string{}
	}
	limits := make(map[string]Limit, len(DefaultRateLimits))
	for scope, l := range DefaultRateLimits {
		limits[scope] = l
	}
	for scope, l := range a.RateLimits {
		limits[scope] = l
	}
	a.RateLimits = limits
	if a.PreSendHook != nil && a.PreSendHook.Timeout == 0 {
		h := *a.PreSendHook // a's hook may be shared with the stored app
		h.Timeout = Duration(2 * time.Second)
		a.PreSendHook = &h
	}
	return a.channelDefaults()
}

// Code lengths an app may set (code_length, its flash calls' codes), or inherit from the otp section: the
// CLI's last 4 to 8 digits. The random codes of other channels have their own (code_lengths).
const (
	MinCodeLength = 4
	MaxCodeLength = 8
)

// ValidCodeLength reports whether n is a code length an app may use (MinCodeLength to MaxCodeLength).
func ValidCodeLength(n int) bool { return n >= MinCodeLength && n <= MaxCodeLength }

// TTLs an app may set, or inherit from the otp section.
const (
	MinTTL = time.Minute
	MaxTTL = 15 * time.Minute
)

// ValidTTL reports whether d is a TTL an app may use (MinTTL to MaxTTL).
func ValidTTL(d time.Duration) bool { return d >= MinTTL && d <= MaxTTL }

// minutes writes a whole number of minutes as "15m" (time.Duration writes "15m0s").
func minutes(d time.Duration) string { return strings.TrimSuffix(d.String(), "0s") }

// Wrong codes a verification may take (max_attempts), as an app sets it or inherits it from the otp section.
const (
	MinAttempts = 1
	MaxAttempts = 20
)

// ValidMaxAttempts reports whether n is a max_attempts an app may use (MinAttempts to MaxAttempts).
func ValidMaxAttempts(n int) bool { return n >= MinAttempts && n <= MaxAttempts }

var idRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidID reports whether s is well-formed as an app's ID: 1 to 64 letters, digits, _ . -.
func ValidID(s string) bool { return idRe.MatchString(s) }

// Validate reports every bad setting of a (defaults filled), each a *setting.Error naming its key ("ttl").
func (a App) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if !ValidID(a.ID) {
		bad("id", "want 1 to 64 letters, digits, _ . -, got %q", a.ID)
	}
	if !ValidCodeLength(a.CodeLength) {
		bad("code_length", "want %d to %d, got %d", MinCodeLength, MaxCodeLength, a.CodeLength)
	}
	if d := time.Duration(a.TTL); !ValidTTL(d) {
		bad("ttl", "want %s to %s, got %s", minutes(MinTTL), minutes(MaxTTL), d)
	}
	if !ValidMaxAttempts(a.MaxAttempts) {
		bad("max_attempts", "want %d to %d, got %d", MinAttempts, MaxAttempts, a.MaxAttempts)
	}
	if d := time.Duration(a.ResendCooldown); d < 0 || d > 10*time.Minute {
		bad("resend_cooldown", "want 0s to 10m, got %s", d)
	}
	if a.MaxResends < 0 || a.MaxResends > 10 {
		bad("max_resends", "want 0 to 10, got %d", a.MaxResends)
	}
	if len(a.Pools) == 0 {
		bad("pools", "an app needs at least one pool")
	}
	for i, p := range a.Pools {
		if !numberpool.ValidName(p) {
			bad(fmt.Sprintf("pools[%d]", i), "want letters, digits, _ . -, got %q", p)
		}
	}
	for i, c := range a.AllowedCountries {
		if err := numberpool.CheckCountry(c); err != nil {
			bad(fmt.Sprintf("allowed_countries[%d]", i), "%v", err)
		}
	}
	for i, t := range a.BlockedNumberTypes {
		if _, ok := NumberTypes[t]; !ok {
			bad(fmt.Sprintf("blocked_number_types[%d]", i), "unknown type %q (want one of %s)", t, strings.Join(typeNames(), ", "))
		}
	}
	for scope, l := range a.RateLimits {
		if _, ok := DefaultRateLimits[scope]; !ok && !slices.Contains(Channels, scope) {
			bad("rate_limits."+scope, "unknown scope (want recipient, app, client, prefix, failed_verifications, or a channel: %s)", strings.Join(Channels, ", "))
			continue
		}
		if l.Limit < 0 || l.Limit > 1_000_000 {
			bad("rate_limits."+scope+".limit", "want 0 (off) to 1000000, got %d", l.Limit)
		}
		if w := time.Duration(l.Window); l.Limit > 0 && (w < time.Second || w > 30*24*time.Hour) {
			bad("rate_limits."+scope+".window", "want 1s to 720h, got %s", w)
		}
	}
	if a.WebhookURL != "" {
		checkURL("webhook_url", a.WebhookURL, bad)
	}
	if h := a.PreSendHook; h != nil {
		checkURL("pre_send_hook.url", h.URL, bad)
		if d := time.Duration(h.Timeout); d < 100*time.Millisecond || d > 10*time.Second {
			bad("pre_send_hook.timeout", "want 100ms to 10s, got %s", d)
		}
	}
	a.checkChannels(bad)
	return errs.Err()
}

func checkURL(field, s string, bad func(field, format string, args ...any)) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, "\r\n") {
		bad(field, "want an http or https URL, got %q", s)
	}
}

func typeNames() []string {
	names := make([]string, 0, len(NumberTypes))
	for n := range NumberTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
