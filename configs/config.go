// Package configs holds flashotp's one typed Config: its defaults, its validation and its loading from a YAML
// file plus FLASHOTP_<SECTION>_<KEY> environment overrides (viper). No other package reads viper or the
// environment; the parts receive plain values from here.
package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"flashotp/apps"
	"flashotp/dialer"
	"flashotp/numberpool"
	"flashotp/sip"
)

// Config is the whole engine configuration, as SPEC section 5 gives it.
type Config struct {
	HTTP     HTTP     `mapstructure:"http"`
	SIP      SIP      `mapstructure:"sip"`
	Store    Store    `mapstructure:"store"`
	Trunks   []Trunk  `mapstructure:"trunks"`
	Pool     []Pool   `mapstructure:"pool"`
	OTP      OTP      `mapstructure:"otp"`
	Dialer   Dialer   `mapstructure:"dialer"`
	Apps     []App    `mapstructure:"apps"`
	Webhooks Webhooks `mapstructure:"webhooks"`
	Phone    Phone    `mapstructure:"phone"`
	Log      Log      `mapstructure:"log"`
}

// HTTP configures the API listener.
type HTTP struct {
	Listen       string `mapstructure:"listen"`
	AdminToken   string `mapstructure:"admin_token"`
	MaxBodyBytes int    `mapstructure:"max_body_bytes"`
	// TLSCert and TLSKey (PEM files), when set, make the API serve HTTPS only.
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
	// DrainDelay is how long the API keeps serving after SIGTERM while /readyz already answers 503, so
	// that a load balancer takes the engine out before its listener closes.
	DrainDelay time.Duration `mapstructure:"drain_delay"`
	// TrustedProxies are the CIDRs (or single IPs) of the reverse proxies in front of the API: only from a
	// peer among them is X-Forwarded-For believed. Empty: the header is ignored.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// MaxConns caps the API's connections open at once, MaxConnsPerIP those from one address (the trusted
	// proxies exempt); over a cap a connection is closed as soon as it is accepted. 0: no cap.
	MaxConns      int `mapstructure:"max_conns"`
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
}

// Proxies returns http.trusted_proxies as prefixes, a single IP as a /32 (or /128); entries that do not
// parse (Validate refuses them) are left out.
func (h HTTP) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := parseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseNetwork reads one entry of http.trusted_proxies or trunks[].accept_from: a CIDR or an IP.
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s) // FLASHOTP_HTTP_TRUSTED_PROXIES="10.0.0.0/8, 192.168.0.1"
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Log configures the engine's log (standard error).
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error, any case
	Format string `mapstructure:"format"` // text | json, any case
}

// SIP configures the engine's user agent.
type SIP struct {
	Listen        string `mapstructure:"listen"`
	Transport     string `mapstructure:"transport"`
	PublicAddress string `mapstructure:"public_address"`

	// ListenTCP says whether a TCP listener is bound on Listen too: auto (when a trunk uses tcp), on, off.
	ListenTCP            string        `mapstructure:"listen_tcp"`
	MaxTCPConns          int           `mapstructure:"max_tcp_conns"`            // accepted connections open at once
	MaxTCPConnsPerSource int           `mapstructure:"max_tcp_conns_per_source"` // the same per remote address
	TCPIdleTimeout       time.Duration `mapstructure:"tcp_idle_timeout"`         // no message begun: closed
	TCPMessageTimeout    time.Duration `mapstructure:"tcp_message_timeout"`      // a message begun must be in by then
}

// Values of sip.listen_tcp.
const (
	ListenTCPAuto = "auto"
	ListenTCPOn   = "on"
	ListenTCPOff  = "off"
)

// SIPListensTCP reports whether the UA binds a TCP listener: sip.listen_tcp on, or auto and a trunk uses
// tcp. TLS trunks need none: TLS is client-only, and a TCP listener would only be one more port to attack.
func (c Config) SIPListensTCP() bool {
	switch c.SIP.ListenTCP {
	case ListenTCPOn:
		return true
	case ListenTCPOff:
		return false
	}
	for _, t := range c.Trunks {
		if t.withDefaults(c.SIP.Transport).Transport == "tcp" {
			return true
		}
	}
	return false
}

// TCPLimits returns the bounds of the SIP TCP listener.
func (s SIP) TCPLimits() sip.TCPLimits {
	return sip.TCPLimits{
		MaxConns: s.MaxTCPConns, MaxConnsPerSource: s.MaxTCPConnsPerSource,
		IdleTimeout: s.TCPIdleTimeout, MessageTimeout: s.TCPMessageTimeout,
	}
}

// Store configures persistence.
type Store struct {
	Path      string `mapstructure:"path"`
	SecretKey string `mapstructure:"secret_key"`
}

// Trunk is one SIP trunk calls may leave on. docs/trunks.md describes every key.
type Trunk struct {
	Name      string `mapstructure:"name"`
	Address   string `mapstructure:"address"`   // host:port calls are sent to
	Transport string `mapstructure:"transport"` // udp | tcp | tls; default sip.transport

	// Digest authentication, used when the trunk answers 401 or 407.
	Username     string `mapstructure:"username"`
	Password     string `mapstructure:"password"`
	AuthUsername string `mapstructure:"auth_username"` // digest user when it differs from username
	Realm        string `mapstructure:"realm"`         // answer only this realm's challenges; empty: any

	MaxCPS   int `mapstructure:"max_cps"`
	MaxCalls int `mapstructure:"max_calls"`

	// Selection and failover.
	Priority        int           `mapstructure:"priority"`         // lower is tried first
	Weight          int           `mapstructure:"weight"`           // share among trunks of one priority; default 1
	DownAfter       int           `mapstructure:"down_after"`       // consecutive failures before the trunk is down; default 3
	OptionsInterval time.Duration `mapstructure:"options_interval"` // OPTIONS probe period of a down trunk; default 30s

	// Routing and numbering.
	Domain        string   `mapstructure:"domain"`         // Request-URI and To host, when not the address's
	OutboundProxy string   `mapstructure:"outbound_proxy"` // host:port; sent as a loose Route, requests go there
	NumberFormat  string   `mapstructure:"number_format"`  // e164 | e164_no_plus | national
	TechPrefix    string   `mapstructure:"tech_prefix"`    // digits put before the dialed number
	UserPhone     bool     `mapstructure:"user_phone"`     // ;user=phone on the URIs
	CLIHeaders    []string `mapstructure:"cli_headers"`    // from | pai | rpid; default [from, pai]
	Privacy       bool     `mapstructure:"privacy"`        // Privacy: id (the trunk hides the CLI from the callee)

	// AcceptFrom are the CIDRs (or single IPs) of the trunk's other hosts that send its responses and
	// requests, besides the IPs of address and outbound_proxy. SIP from anywhere else is dropped.
	AcceptFrom []string `mapstructure:"accept_from"`

	// TLS.
	TLSCA         string `mapstructure:"tls_ca"`          // PEM CA bundle; empty: the system's
	TLSCert       string `mapstructure:"tls_cert"`        // PEM client certificate, optional
	TLSKey        string `mapstructure:"tls_key"`         // its key
	TLSServerName string `mapstructure:"tls_server_name"` // name to verify; default the address's host
}

// AcceptNets returns accept_from as prefixes, a single IP as a /32 (or /128); entries that do not parse
// (Validate refuses them) are left out.
func (t Trunk) AcceptNets() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range t.AcceptFrom {
		if p, err := parseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// withDefaults fills the keys a trunk left empty.
func (t Trunk) withDefaults(sipTransport string) Trunk {
	if t.Transport == "" {
		t.Transport = sipTransport
	}
	if t.Weight == 0 {
		t.Weight = dialer.DefaultWeight
	}
	if t.DownAfter == 0 {
		t.DownAfter = dialer.DefaultDownAfter
	}
	if t.OptionsInterval == 0 {
		t.OptionsInterval = dialer.DefaultOptionsInterval
	}
	if t.NumberFormat == "" {
		t.NumberFormat = dialer.NumberE164
	}
	if t.CLIHeaders == nil {
		t.CLIHeaders = []string{"from", "pai"}
	}
	return t
}

// Pool is a named group of caller-ID patterns.
type Pool struct {
	Name string `mapstructure:"name"`
	// Numbers is the short form: each an entry of its own (X pattern, +FIRST-+LAST range, or one number),
	// for any destination and trunk.
	Numbers []string    `mapstructure:"numbers"`
	Entries []PoolEntry `mapstructure:"entries"`

	Cooldown        time.Duration `mapstructure:"cooldown"`         // default 24h
	QuarantineFor   time.Duration `mapstructure:"quarantine_for"`   // default 24h
	QuarantineCodes []int         `mapstructure:"quarantine_codes"` // default [403, 484, 488]
	QuarantineAfter int           `mapstructure:"quarantine_after"` // default 10
}

// PoolEntry is one entry of a pool: one X pattern, one range, or a list of numbers, and what it serves.
type PoolEntry struct {
	ID        string   `mapstructure:"id"` // default e1, e2, … by position
	Numbers   []string `mapstructure:"numbers"`
	Countries []string `mapstructure:"countries"` // ISO 3166 codes of the destinations it serves; empty: any
	Trunks    []string `mapstructure:"trunks"`    // trunks it may go out on; empty: any
	Weight    int      `mapstructure:"weight"`    // default 1
	Enabled   *bool    `mapstructure:"enabled"`   // default true
}

// NumberPool returns the pool as the numberpool package takes it, defaults filled.
func (p Pool) NumberPool() numberpool.Pool {
	np := numberpool.Pool{
		Name: p.Name, Cooldown: numberpool.Duration(p.Cooldown), QuarantineFor: numberpool.Duration(p.QuarantineFor),
		QuarantineCodes: p.QuarantineCodes, QuarantineAfter: p.QuarantineAfter,
	}
	for _, n := range p.Numbers {
		np.Entries = append(np.Entries, numberpool.Entry{Numbers: []string{n}, Enabled: true})
	}
	for _, e := range p.Entries {
		np.Entries = append(np.Entries, numberpool.Entry{
			ID: e.ID, Numbers: e.Numbers, Countries: e.Countries, Trunks: e.Trunks, Weight: e.Weight,
			Enabled: e.Enabled == nil || *e.Enabled,
		})
	}
	return np.WithDefaults()
}

// OTP holds the verification defaults.
type OTP struct {
	CodeLength   int           `mapstructure:"code_length"`
	TTL          time.Duration `mapstructure:"ttl"`
	MaxAttempts  int           `mapstructure:"max_attempts"`
	MinCodeSpace int           `mapstructure:"min_code_space"`
	// Retention: verifications, attempts and events older than this are deleted in the background.
	Retention time.Duration `mapstructure:"retention"`
}

// Dialer configures call pacing and timeouts.
type Dialer struct {
	RingTime    time.Duration `mapstructure:"ring_time"`
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// CancelGuard bounds how long a call waits for the final answer after its CANCEL before it is ended anyway.
	CancelGuard time.Duration `mapstructure:"cancel_guard"`
	// QueueSize bounds the calls accepted but not yet dialed; a full queue answers 503 unavailable.
	QueueSize int `mapstructure:"queue_size"`
	// ShutdownTimeout bounds the drain on SIGTERM: requests finish, ringing calls are cancelled and their
	// outcomes written. Calls still running then are recorded as interrupted at the next start.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// App is one API client: its credentials, the pools its caller IDs come from, and its settings (docs/api.md,
// "Apps"). Zero values take the otp section's or the built-in defaults.
type App struct {
	ID                 string               `mapstructure:"id"`
	APIKey             string               `mapstructure:"api_key"`
	APISecret          string               `mapstructure:"api_secret"`
	Pools              []string             `mapstructure:"pools"`
	CodeLength         int                  `mapstructure:"code_length"`
	TTL                time.Duration        `mapstructure:"ttl"`
	MaxAttempts        int                  `mapstructure:"max_attempts"`
	ResendCooldown     time.Duration        `mapstructure:"resend_cooldown"`
	MaxResends         int                  `mapstructure:"max_resends"`
	AllowedCountries   []string             `mapstructure:"allowed_countries"`
	BlockedNumberTypes []string             `mapstructure:"blocked_number_types"`
	RateLimits         map[string]RateLimit `mapstructure:"rate_limits"`
	WebhookURL         string               `mapstructure:"webhook_url"`
	WebhookSecret      string               `mapstructure:"webhook_secret"` // signs webhooks; needed with webhook_url
	PreSendHook        *PreSendHook         `mapstructure:"pre_send_hook"`
}

// RateLimit is one of an app's rate limits: at most Limit per Window; Limit 0 switches it off.
type RateLimit struct {
	Limit  int           `mapstructure:"limit"`
	Window time.Duration `mapstructure:"window"`
}

// PreSendHook is an app's pre-send hook.
type PreSendHook struct {
	URL      string        `mapstructure:"url"`
	Timeout  time.Duration `mapstructure:"timeout"`
	FailOpen bool          `mapstructure:"fail_open"`
}

// Settings returns the app's settings as the apps package keeps them (defaults not filled).
func (a App) Settings() apps.App {
	out := apps.App{
		ID: a.ID, CodeLength: a.CodeLength, TTL: apps.Duration(a.TTL), MaxAttempts: a.MaxAttempts,
		ResendCooldown: apps.Duration(a.ResendCooldown), MaxResends: a.MaxResends, Pools: a.Pools,
		AllowedCountries: a.AllowedCountries, BlockedNumberTypes: a.BlockedNumberTypes, WebhookURL: a.WebhookURL,
	}
	if len(a.RateLimits) > 0 {
		out.RateLimits = map[string]apps.Limit{}
		for scope, l := range a.RateLimits {
			out.RateLimits[scope] = apps.Limit{Limit: l.Limit, Window: apps.Duration(l.Window)}
		}
	}
	if h := a.PreSendHook; h != nil {
		out.PreSendHook = &apps.Hook{URL: h.URL, Timeout: apps.Duration(h.Timeout), FailOpen: h.FailOpen}
	}
	return out
}

// Webhooks configures webhook delivery.
type Webhooks struct {
	RetryMin    time.Duration `mapstructure:"retry_min"`     // first retry after this; doubles each try
	RetryMax    time.Duration `mapstructure:"retry_max"`     // longest wait between tries
	GiveUpAfter time.Duration `mapstructure:"give_up_after"` // a webhook not delivered by then is dropped
	Timeout     time.Duration `mapstructure:"timeout"`       // per request, webhooks (pre-send hooks have their own)
}

// Phone configures the built-in simulated handset.
type Phone struct {
	Enabled bool   `mapstructure:"enabled"`
	Listen  string `mapstructure:"listen"`
	Mode    string `mapstructure:"mode"`
}

// Default returns the configuration used for every key the file and the environment leave unset.
func Default() Config {
	return Config{
		HTTP: HTTP{Listen: "127.0.0.1:8080", MaxBodyBytes: 65536, DrainDelay: 5 * time.Second, MaxConns: 4096, MaxConnsPerIP: 512},
		SIP: SIP{
			Listen: "127.0.0.1:5060", Transport: "udp", ListenTCP: ListenTCPAuto,
			MaxTCPConns: sip.DefaultTCPLimits.MaxConns, MaxTCPConnsPerSource: sip.DefaultTCPLimits.MaxConnsPerSource,
			TCPIdleTimeout: sip.DefaultTCPLimits.IdleTimeout, TCPMessageTimeout: sip.DefaultTCPLimits.MessageTimeout,
		},
		Store: Store{Path: "data/flashotp.db"},
		OTP: OTP{
			CodeLength:   4,
			TTL:          5 * time.Minute,
			MaxAttempts:  5,
			MinCodeSpace: 10000,
			Retention:    30 * 24 * time.Hour,
		},
		Webhooks: Webhooks{RetryMin: time.Second, RetryMax: 5 * time.Minute, GiveUpAfter: time.Hour, Timeout: 10 * time.Second},
		Dialer: Dialer{
			DialTimeout:     30 * time.Second,
			CancelGuard:     4 * time.Second,
			QueueSize:       10000,
			ShutdownTimeout: 10 * time.Second,
		},
		Phone: Phone{Listen: "127.0.0.1:5062", Mode: sip.PhoneRing},
		Log:   Log{Level: "info", Format: "text"},
	}
}

// Load reads the YAML file at path (if path is not empty), applies FLASHOTP_<SECTION>_<KEY> environment
// overrides over it and the defaults under it, and validates the result. Unknown keys are errors, and so is
// a duration without a unit. Every error names the key and where the bad value came from: the environment
// variable or the file.
func Load(path string) (Config, error) {
	v := viper.New()
	v.SetEnvPrefix("FLASHOTP")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	// Every scalar must be known to viper for AutomaticEnv to see its variable.
	var defaults map[string]any
	if err := mapstructure.Decode(Default(), &defaults); err != nil {
		return Config{}, err
	}
	for section, val := range defaults {
		m, ok := val.(map[string]any)
		if !ok {
			continue
		}
		for key, def := range m {
			if d, ok := def.(time.Duration); ok {
				def = d.String()
			}
			v.SetDefault(section+"."+key, def)
		}
	}

	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
	}

	src := sources{file: path, keys: map[string]bool{}, inFile: v.InConfig}
	for _, k := range v.AllKeys() {
		src.keys[k] = true
	}
	settings := v.AllSettings()
	if errs := src.check("", settings, reflect.TypeOf(Config{})); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	var cfg Config
	if err := decode(settings, &cfg, true); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	for i := range cfg.Trunks {
		cfg.Trunks[i] = cfg.Trunks[i].withDefaults(cfg.SIP.Transport)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, src.blame(err)
	}
	return cfg, nil
}

// decode decodes what viper read into out as viper's Unmarshal does (weakly typed: "10" is a number), with
// exact also refusing keys out has no field for.
func decode(in, out any, exact bool) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		WeaklyTypedInput: true,
		ErrorUnused:      exact,
		Result:           out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
	})
	if err != nil {
		return err
	}
	return d.Decode(in)
}

// sources knows where each value Load read came from, to name it in errors.
type sources struct {
	file   string                // the config file; "" when there is none
	keys   map[string]bool       // the keys viper knows, the only ones it looks up in the environment
	inFile func(key string) bool // whether the file sets key
}

// env returns the environment variable key's value came from, or "" when it came from the file or the
// defaults.
func (s sources) env(key string) string {
	// A list from the environment (FLASHOTP_HTTP_TRUSTED_PROXIES=a,b) is one variable for all its items.
	key, _, _ = strings.Cut(key, "[")
	if !s.keys[key] {
		return ""
	}
	name := "FLASHOTP_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if os.Getenv(name) == "" { // viper ignores an empty variable
		return ""
	}
	return name
}

// where says where key's value came from, as the end of an error message.
func (s sources) where(key string) string {
	if name := s.env(key); name != "" {
		return " (from environment " + name + ")"
	}
	if base, _, _ := strings.Cut(key, "["); s.file != "" && s.inFile(base) {
		return " (in file " + s.file + ")"
	}
	return "" // a default, or a key nobody set (trunks: at least one trunk is needed)
}

// blame adds to each error of Validate where its key's value came from: the environment variable (the file
// is not where to look for it) or the file.
func (s sources) blame(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if key, _, ok := strings.Cut(l, ": "); ok {
			lines[i] = l + s.where(key)
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

var durationType = reflect.TypeOf(time.Duration(0))

// check walks what viper read (val, at key) along the Config type t, and returns an error for each key t
// has no field for, each duration without a unit, and each value that does not decode into its field, each
// naming the key and where the value came from. mapstructure's own errors name neither the whole path of an
// unknown key nor the environment, and it reads a bare number as nanoseconds.
func (s sources) check(key string, val any, t reflect.Type) []error {
	if val == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	join := func(k string) string {
		if key == "" {
			return k
		}
		return key + "." + k
	}
	if t == durationType {
		if err := checkDuration(val); err != nil {
			return []error{fmt.Errorf("%s: %w%s", key, err, s.where(key))}
		}
		return nil
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Struct && isMap(val):
		m := stringMap(val)
		for _, k := range sortedKeys(m) {
			f, ok := field(t, k)
			if !ok {
				errs = append(errs, fmt.Errorf("unknown key %q%s", join(k), s.where(join(k))))
				continue
			}
			errs = append(errs, s.check(join(k), m[k], f.Type)...)
		}
		return errs
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && isMap(val):
		m := stringMap(val)
		for _, k := range sortedKeys(m) {
			errs = append(errs, s.check(join(k), m[k], t.Elem())...)
		}
		return errs
	case t.Kind() == reflect.Slice:
		if list, ok := val.([]any); ok && composite(t.Elem()) {
			for i, item := range list {
				errs = append(errs, s.check(fmt.Sprintf("%s[%d]", key, i), item, t.Elem())...)
			}
			return errs
		}
	}
	// A leaf (or a value of the wrong shape): it must decode into its field as the whole config will.
	if err := decode(val, reflect.New(t).Interface(), true); err != nil {
		return []error{fmt.Errorf("%s: %s%s", key, mismatch(t, val), s.where(key))}
	}
	return nil
}

// checkDuration accepts what time.ParseDuration does, and 0; a bare number is refused rather than read as
// nanoseconds.
func checkDuration(val any) error {
	switch v := val.(type) {
	case string:
		if _, err := time.ParseDuration(v); err != nil {
			if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
				return fmt.Errorf("%s has no unit: durations need one, e.g. \"%ss\" (ms, s, m, h)", v, v)
			}
			return fmt.Errorf("want a duration such as \"300ms\", \"30s\", \"5m\" or \"1h\", got %q", v)
		}
		return nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		if reflect.ValueOf(v).IsZero() {
			return nil
		}
		return fmt.Errorf("%v has no unit: durations need one, e.g. \"%vs\" (ms, s, m, h)", v, v)
	default:
		return fmt.Errorf("want a duration such as \"30s\", got %s", describe(val))
	}
}

// mismatch says what a value of type t looks like and what val was instead.
func mismatch(t reflect.Type, val any) string {
	var want string
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "a whole number"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.String:
		want = "a string"
	case reflect.Slice:
		want = "a list"
	default:
		want = "a mapping of keys"
	}
	return "want " + want + ", got " + describe(val)
}

// describe shows a value read from YAML or the environment in an error.
func describe(val any) string {
	switch v := val.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	default:
		return fmt.Sprint(v)
	}
}

// composite reports whether t (a list's element type) is walked into: structs and maps, not scalars.
func composite(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != durationType || t.Kind() == reflect.Map
}

// field finds t's field for a config key, matching its mapstructure tag as mapstructure does (case aside).
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func isMap(val any) bool {
	switch val.(type) {
	case map[string]any, map[any]any:
		return true
	}
	return false
}

// stringMap returns a YAML mapping with its keys as strings (YAML allows others, e.g. 1: x).
func stringMap(val any) map[string]any {
	if m, ok := val.(map[string]any); ok {
		return m
	}
	out := map[string]any{}
	for k, v := range val.(map[any]any) {
		out[fmt.Sprint(k)] = v
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	hexRe  = regexp.MustCompile(`^([0-9a-fA-F]{2}){16,}$`)
	// hostRe: a DNS name or an IPv4 address; nothing that could carry SIP syntax into a URI.
	hostRe       = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
	techPrefixRe = regexp.MustCompile(`^[0-9*#]{0,10}$`)
)

// Validate reports every contradiction or bad value, each naming its key.
func (c Config) Validate() error {
	var errs []error
	reported := map[string]bool{}
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
		reported[key] = true
	}
	checkAddr := func(key, addr string, needPort bool) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			if !needPort && addr != "" && !strings.ContainsAny(addr, ":/ ") {
				return // a bare host
			}
			bad(key, "want host:port, got %q", addr)
			return
		}
		if host == "" && needPort {
			bad(key, "host missing in %q", addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(key, "bad port in %q", addr)
		}
	}
	checkTransport := func(key, t string) {
		switch t {
		case "udp", "tcp", "tls":
		default:
			bad(key, "want udp, tcp or tls, got %q", t)
		}
	}

	checkAddr("http.listen", c.HTTP.Listen, true)
	if c.HTTP.MaxBodyBytes < 256 || c.HTTP.MaxBodyBytes > 16<<20 {
		bad("http.max_body_bytes", "want 256..16777216, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxConns < 0 || c.HTTP.MaxConns > 1<<20 {
		bad("http.max_conns", "want 0 (no cap) to 1048576, got %d", c.HTTP.MaxConns)
	}
	if c.HTTP.MaxConnsPerIP < 0 || (c.HTTP.MaxConns > 0 && c.HTTP.MaxConnsPerIP > c.HTTP.MaxConns) {
		bad("http.max_conns_per_ip", "want 0 (no cap) to http.max_conns (%d), got %d", c.HTTP.MaxConns, c.HTTP.MaxConnsPerIP)
	}
	if c.HTTP.DrainDelay < 0 || c.HTTP.DrainDelay > 5*time.Minute {
		bad("http.drain_delay", "want 0..5m, got %s", c.HTTP.DrainDelay)
	}
	checkAddr("sip.listen", c.SIP.Listen, true)
	checkTransport("sip.transport", c.SIP.Transport)
	if c.SIP.PublicAddress != "" {
		checkAddr("sip.public_address", c.SIP.PublicAddress, false)
	}
	switch c.SIP.ListenTCP {
	case ListenTCPAuto, ListenTCPOn, ListenTCPOff:
	default:
		bad("sip.listen_tcp", "want auto, on or off, got %q", c.SIP.ListenTCP)
	}
	if c.SIP.MaxTCPConns < 1 || c.SIP.MaxTCPConns > 65536 {
		bad("sip.max_tcp_conns", "want 1..65536, got %d", c.SIP.MaxTCPConns)
	}
	if c.SIP.MaxTCPConnsPerSource < 1 || c.SIP.MaxTCPConnsPerSource > c.SIP.MaxTCPConns {
		bad("sip.max_tcp_conns_per_source", "want 1..sip.max_tcp_conns (%d), got %d", c.SIP.MaxTCPConns, c.SIP.MaxTCPConnsPerSource)
	}
	if c.SIP.TCPIdleTimeout < 100*time.Millisecond || c.SIP.TCPIdleTimeout > time.Hour {
		bad("sip.tcp_idle_timeout", "want 100ms..1h, got %s", c.SIP.TCPIdleTimeout)
	}
	if c.SIP.TCPMessageTimeout < 100*time.Millisecond || c.SIP.TCPMessageTimeout > time.Minute {
		bad("sip.tcp_message_timeout", "want 100ms..1m, got %s", c.SIP.TCPMessageTimeout)
	}
	if c.Store.Path == "" {
		bad("store.path", "must not be empty")
	}
	if c.Store.SecretKey != "" && !hexRe.MatchString(c.Store.SecretKey) {
		bad("store.secret_key", "want at least 32 hex characters (16 bytes)")
	}

	if len(c.Trunks) == 0 {
		bad("trunks", "at least one trunk is needed")
	}
	seen := map[string]bool{}
	// checkName checks the name of a trunk, pool or app: well-formed and the only one of its kind.
	checkName := func(key, kind, name string) {
		if !nameRe.MatchString(name) {
			bad(key, "want letters, digits, _ . -, got %q", name)
		} else if seen[kind+" "+name] {
			bad(key, "duplicate %s %q", kind, name)
		}
		seen[kind+" "+name] = true
	}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		checkName(key+".name", "trunk", t.Name)
		checkAddr(key+".address", t.Address, true)
		t = t.withDefaults(c.SIP.Transport)
		checkTransport(key+".transport", t.Transport)
		if t.MaxCPS < 0 {
			bad(key+".max_cps", "must not be negative")
		}
		if t.MaxCalls < 0 {
			bad(key+".max_calls", "must not be negative")
		}
		if (t.Username == "") != (t.Password == "") {
			bad(key+".username", "username and password go together")
		}
		if t.AuthUsername != "" && t.Password == "" {
			bad(key+".auth_username", "needs a password")
		}
		if t.Weight < 1 || t.Weight > 1000 {
			bad(key+".weight", "want 1..1000, got %d", t.Weight)
		}
		if t.DownAfter < 1 {
			bad(key+".down_after", "must be positive")
		}
		if t.OptionsInterval < time.Second {
			bad(key+".options_interval", "want at least 1s, got %s", t.OptionsInterval)
		}
		if t.Domain != "" && !hostRe.MatchString(t.Domain) {
			bad(key+".domain", "want a host name or IP, got %q", t.Domain)
		}
		if t.OutboundProxy != "" {
			checkAddr(key+".outbound_proxy", t.OutboundProxy, true)
		}
		for j, n := range t.AcceptFrom {
			if _, err := parseNetwork(n); err != nil {
				bad(fmt.Sprintf("%s.accept_from[%d]", key, j), "want a CIDR (203.0.113.0/24) or an IP, got %q", n)
			}
		}
		switch t.NumberFormat {
		case dialer.NumberE164, dialer.NumberE164NoPlus, dialer.NumberNational:
		default:
			bad(key+".number_format", "want e164, e164_no_plus or national, got %q", t.NumberFormat)
		}
		if !techPrefixRe.MatchString(t.TechPrefix) {
			bad(key+".tech_prefix", "want up to 10 characters of 0-9 * #, got %q", t.TechPrefix)
		} else if t.TechPrefix != "" && t.NumberFormat == dialer.NumberE164 {
			bad(key+".tech_prefix", "needs number_format e164_no_plus or national (a prefix before + is no number)")
		}
		if len(t.CLIHeaders) == 0 {
			bad(key+".cli_headers", "name at least one of from, pai, rpid")
		}
		for j, h := range t.CLIHeaders {
			if h != "from" && h != "pai" && h != "rpid" {
				bad(fmt.Sprintf("%s.cli_headers[%d]", key, j), "want from, pai or rpid, got %q", h)
			}
		}
		if t.Transport != "tls" && (t.TLSCA != "" || t.TLSCert != "" || t.TLSKey != "" || t.TLSServerName != "") {
			bad(key+".transport", "tls_* keys need transport tls")
		}
		if (t.TLSCert == "") != (t.TLSKey == "") {
			bad(key+".tls_cert", "tls_cert and tls_key go together")
		}
	}

	if len(c.Pool) == 0 {
		bad("pool", "at least one pool is needed")
	}
	for i, p := range c.Pool {
		before := len(errs)
		key := fmt.Sprintf("pool[%d]", i)
		checkName(key+".name", "pool", p.Name)
		if len(p.Numbers) == 0 && len(p.Entries) == 0 {
			bad(key+".numbers", "at least one number pattern (or an entry) is needed")
		}
		for j, n := range p.Numbers {
			if err := numberpool.ValidateNumbers([]string{n}); err != nil {
				bad(fmt.Sprintf("%s.numbers[%d]", key, j), "want an E.164 pattern with X for free digits (+44207946XXXX), a range (+442079460000-+442079469999) or a number: %v", err)
			}
		}
		for j, e := range p.Entries {
			ekey := fmt.Sprintf("%s.entries[%d]", key, j)
			if err := numberpool.ValidateNumbers(e.Numbers); err != nil {
				bad(ekey+".numbers", "%v", err)
			}
			for k, cc := range e.Countries {
				if err := numberpool.CheckCountry(cc); err != nil {
					bad(fmt.Sprintf("%s.countries[%d]", ekey, k), "%v", err)
				}
			}
			for _, tn := range e.Trunks {
				if !seen["trunk "+tn] {
					bad(ekey+".trunks", "no trunk named %q", tn)
				}
			}
		}
		if p.Cooldown < 0 || p.Cooldown > 30*24*time.Hour {
			bad(key+".cooldown", "want 0..720h, got %s", p.Cooldown)
		}
		if p.QuarantineFor < 0 {
			bad(key+".quarantine_for", "must not be negative")
		}
		// What the keys above do not cover (entry IDs, weights, quarantine codes), once they hold.
		if len(errs) == before {
			if err := p.NumberPool().Validate(); err != nil {
				bad(key, "%v", err)
			}
		}
	}

	for i, p := range c.HTTP.TrustedProxies {
		if _, err := parseNetwork(p); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "want a CIDR (10.0.0.0/8) or an IP, got %q", p)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", "http.tls_cert and http.tls_key go together")
	}
	if c.OTP.CodeLength < 4 || c.OTP.CodeLength > 8 {
		bad("otp.code_length", "want 4..8, got %d", c.OTP.CodeLength)
	}
	if c.OTP.TTL < time.Minute || c.OTP.TTL > 15*time.Minute {
		bad("otp.ttl", "want 1m..15m, got %s", c.OTP.TTL)
	}
	if c.OTP.MaxAttempts < 1 || c.OTP.MaxAttempts > 20 {
		bad("otp.max_attempts", "want 1..20, got %d", c.OTP.MaxAttempts)
	}
	if c.OTP.MinCodeSpace < 1 {
		bad("otp.min_code_space", "must be positive")
	}
	if c.OTP.Retention < time.Hour {
		bad("otp.retention", "want at least 1h, got %s", c.OTP.Retention)
	}
	if c.Webhooks.RetryMin < 10*time.Millisecond || c.Webhooks.RetryMax < c.Webhooks.RetryMin {
		bad("webhooks.retry_min", "want at least 10ms and at most webhooks.retry_max, got %s", c.Webhooks.RetryMin)
	}
	if c.Webhooks.GiveUpAfter < c.Webhooks.RetryMin || c.Webhooks.GiveUpAfter > 7*24*time.Hour {
		bad("webhooks.give_up_after", "want webhooks.retry_min to 168h, got %s", c.Webhooks.GiveUpAfter)
	}
	if c.Webhooks.Timeout < 100*time.Millisecond || c.Webhooks.Timeout > time.Minute {
		bad("webhooks.timeout", "want 100ms to 1m, got %s", c.Webhooks.Timeout)
	}

	if c.Dialer.RingTime < 0 || c.Dialer.RingTime > time.Minute {
		bad("dialer.ring_time", "want 0..1m, got %s", c.Dialer.RingTime)
	}
	if c.Dialer.DialTimeout < 100*time.Millisecond || c.Dialer.DialTimeout > 5*time.Minute {
		bad("dialer.dial_timeout", "want 100ms..5m, got %s", c.Dialer.DialTimeout)
	}
	if c.Dialer.CancelGuard < 100*time.Millisecond || c.Dialer.CancelGuard > time.Minute {
		bad("dialer.cancel_guard", "want 100ms..1m, got %s", c.Dialer.CancelGuard)
	}
	if c.Dialer.QueueSize < 1 {
		bad("dialer.queue_size", "must be positive")
	}
	if c.Dialer.ShutdownTimeout < time.Second || c.Dialer.ShutdownTimeout > 10*time.Minute {
		bad("dialer.shutdown_timeout", "want 1s..10m, got %s", c.Dialer.ShutdownTimeout)
	} else if c.Dialer.ShutdownTimeout < c.Dialer.CancelGuard {
		bad("dialer.shutdown_timeout", "%s is shorter than dialer.cancel_guard %s: a cancelled call could not end in time", c.Dialer.ShutdownTimeout, c.Dialer.CancelGuard)
	}

	if len(c.Apps) == 0 {
		bad("apps", "at least one app is needed")
	}
	keys := map[string]bool{}
	for i, a := range c.Apps {
		key := fmt.Sprintf("apps[%d]", i)
		checkName(key+".id", "app", a.ID)
		if a.APIKey == "" {
			bad(key+".api_key", "must not be empty")
		} else if keys[a.APIKey] {
			bad(key+".api_key", "already used by another app")
		}
		keys[a.APIKey] = true
		if len(a.APISecret) < 8 {
			bad(key+".api_secret", "want at least 8 characters")
		}
		// A pool an app names need not be in this file: it may be made through the admin API. The engine
		// refuses to start if an app has no numbers at all.
		pools := a.AppPools(c.Pool)
		for j, p := range pools {
			if !nameRe.MatchString(p) {
				bad(fmt.Sprintf("%s.pools[%d]", key, j), "want letters, digits, _ . -, got %q", p)
			}
		}
		if len(pools) == 0 {
			bad(key+".pools", "app %q names no pool and no pool is called %q", a.ID, a.ID)
			continue
		}
		settings := a.Settings()
		settings.Pools = pools
		inherited := map[string]bool{"code_length": a.CodeLength == 0, "ttl": a.TTL == 0, "max_attempts": a.MaxAttempts == 0}
		if err := settings.WithDefaults(c.AppDefaults()).Validate(); err != nil {
			for _, e := range strings.Split(err.Error(), "\n") {
				field, msg, _ := strings.Cut(e, ": ")
				// A value the app inherits from the otp section is that key's error, said once.
				if reported["otp."+field] && inherited[field] {
					continue
				}
				if field != "pools" && !strings.HasPrefix(field, "pools[") && field != "id" {
					bad(key+"."+field, "%s", msg)
				}
			}
		}
		if a.WebhookURL != "" && len(a.WebhookSecret) < 16 {
			bad(key+".webhook_secret", "want at least 16 characters when webhook_url is set: receivers check signatures with it")
		}
	}

	if c.Phone.Enabled {
		checkAddr("phone.listen", c.Phone.Listen, true)
	}
	switch c.Phone.Mode {
	case sip.PhoneRing, sip.PhoneAnswer, sip.PhoneBusy, sip.PhoneSilent:
	default:
		bad("phone.mode", "want ring, answer, busy or silent, got %q", c.Phone.Mode)
	}
	return errors.Join(errs...)
}

// AppDefaults are the settings an app of this config inherits.
func (c Config) AppDefaults() apps.Defaults {
	return apps.Defaults{CodeLength: c.OTP.CodeLength, TTL: c.OTP.TTL, MaxAttempts: c.OTP.MaxAttempts}
}

// AppPools returns the pools the app draws caller IDs from: its own list, else the pool named like the app,
// else the only pool there is.
func (a App) AppPools(pools []Pool) []string {
	if len(a.Pools) > 0 {
		return a.Pools
	}
	for _, p := range pools {
		if p.Name == a.ID {
			return []string{p.Name}
		}
	}
	if len(pools) == 1 {
		return []string{pools[0].Name}
	}
	return nil
}
