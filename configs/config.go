// Package configs holds flashotp's one typed Config: its defaults, its validation and its loading from a YAML
// file plus FLASHOTP_<SECTION>_<KEY> environment overrides (viper). No other package reads viper or the
// environment; the parts receive plain values from here.
package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"flashotp/apps"
	"flashotp/console"
	"flashotp/dialer"
	"flashotp/email"
	"flashotp/httpapi"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/setting"
	"flashotp/sip"
	"flashotp/smpp"
	"flashotp/sms"
	"flashotp/smsgw"
	"flashotp/stir"
	"flashotp/totp"
	"flashotp/voice"
	"flashotp/webhook"
	"flashotp/whatsapp"
)

// Config is the whole engine configuration, as SPEC sections 5 and 8 give it. The sections of the parts that
// own their settings (http, sip, trunks, pools, otp, dialer, apps, webhooks, phone, voice, sms, http_sms,
// email, totp) are those parts' own types, with their own defaults and validation; Validate adds the rules
// across sections. store and log are the config's own.
type Config struct {
	HTTP     httpapi.Settings      `mapstructure:"http"`
	SIP      sip.Settings          `mapstructure:"sip"`
	Store    Store                 `mapstructure:"store"`
	Trunks   []dialer.Trunk        `mapstructure:"trunks"`
	Pool     []numberpool.FilePool `mapstructure:"pool"`
	OTP      otp.Settings          `mapstructure:"otp"`
	Dialer   dialer.Settings       `mapstructure:"dialer"`
	Apps     []apps.ConfigApp      `mapstructure:"apps"`
	Webhooks webhook.Settings      `mapstructure:"webhooks"`
	Phone    sip.PhoneSettings     `mapstructure:"phone"`
	Voice    voice.Settings        `mapstructure:"voice"`
	SMS      sms.Settings          `mapstructure:"sms"`
	HTTPSMS  smsgw.Settings        `mapstructure:"http_sms"`
	Email    email.Settings        `mapstructure:"email"`
	SMPP     []smpp.Settings       `mapstructure:"smpp"`
	WhatsApp whatsapp.Settings     `mapstructure:"whatsapp"`
	TOTP     totp.Settings         `mapstructure:"totp"`
	STIR     stir.Settings         `mapstructure:"stir"`
	Console  console.Settings      `mapstructure:"console"`
	Node     Node                  `mapstructure:"node"`
	Log      Log                   `mapstructure:"log"`
}

// Node names this engine among those sharing a store (store.driver postgres; SPEC section 10).
type Node struct {
	ID    string        `mapstructure:"id"`    // default: the host name
	Lease time.Duration `mapstructure:"lease"` // how long its lease lasts unrenewed
}

// nodeIDRe is what a node ID may be: a host name, or any short name of letters, digits, '.', '_', '-'.
var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// hostname is the default node.id.
func hostname() string {
	if h, err := os.Hostname(); err == nil && nodeIDRe.MatchString(h) {
		return h
	}
	return "flashotp"
}

// Log configures the engine's log (standard error).
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error, any case
	Format string `mapstructure:"format"` // text | json, any case
}

// SIPListensTCP reports whether the UA binds a TCP listener: sip.listen_tcp on, or auto and a trunk uses
// tcp. TLS trunks need none: TLS is client-only, and a TCP listener would only be one more port to attack.
func (c Config) SIPListensTCP() bool {
	switch c.SIP.ListenTCP {
	case sip.ListenTCPOn:
		return true
	case sip.ListenTCPOff:
		return false
	}
	for _, t := range c.Trunks {
		if t.WithDefaults(c.SIP.Transport).Transport == "tcp" {
			return true
		}
	}
	return false
}

// Store configures persistence: the embedded bbolt file (one engine), or PostgreSQL (any number of engines
// sharing one state, SPEC section 10).
type Store struct {
	Driver    string `mapstructure:"driver"` // StoreBolt or StorePostgres
	Path      string `mapstructure:"path"`   // bbolt's file
	DSN       string `mapstructure:"dsn"`    // PostgreSQL's connection string (pgx)
	SecretKey string `mapstructure:"secret_key"`
}

// The store drivers.
const (
	StoreBolt     = "bbolt"
	StorePostgres = "postgres"
)

// Default returns the configuration used for every key the file and the environment leave unset.
func Default() Config {
	return Config{
		HTTP:     httpapi.DefaultSettings,
		SIP:      sip.DefaultSettings,
		Store:    Store{Driver: StoreBolt, Path: "data/flashotp.db"},
		OTP:      otp.DefaultSettings,
		Webhooks: webhook.DefaultSettings,
		Dialer:   dialer.DefaultSettings,
		Phone:    sip.DefaultPhoneSettings,
		Voice:    voice.DefaultSettings,
		SMS:      sms.DefaultSettings,
		HTTPSMS:  smsgw.DefaultSettings,
		Email:    email.DefaultSettings,
		WhatsApp: whatsapp.DefaultSettings,
		TOTP:     totp.DefaultSettings,
		STIR:     stir.DefaultSettings,
		Console:  console.DefaultSettings,
		Node:     Node{ID: hostname(), Lease: otp.DefaultLease},
		Log:      Log{Level: "info", Format: "text"},
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
		cfg.Trunks[i] = cfg.Trunks[i].WithDefaults(cfg.SIP.Transport)
	}
	for i := range cfg.SMPP {
		cfg.SMPP[i] = cfg.SMPP[i].WithDefaults()
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
			stringToPoolDuration,
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
// is not where to look for it) or the file. It goes after the message's first line: a pool's own
// Validate may say more on the lines after it.
func (s sources) blame(err error) error {
	var out []string
	for _, e := range setting.Split(err) {
		var se *setting.Error
		if !errors.As(e, &se) {
			out = append(out, e.Error())
			continue
		}
		first, rest, multi := strings.Cut(se.Error(), "\n")
		line := first + s.where(se.Key)
		if multi {
			line += "\n" + rest
		}
		out = append(out, line)
	}
	return errors.New(strings.Join(out, "\n"))
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	// poolDurationType is the duration of the settings the apps keep as JSON too (apps[].ttl, …).
	poolDurationType = reflect.TypeOf(numberpool.Duration(0))
)

// isDuration reports whether t is a duration: its value is written "30s".
func isDuration(t reflect.Type) bool { return t == durationType || t == poolDurationType }

// stringToPoolDuration decodes "30s" into a numberpool.Duration, as mapstructure's own hook does for a
// time.Duration.
func stringToPoolDuration(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != poolDurationType {
		return data, nil
	}
	d, err := time.ParseDuration(data.(string))
	return numberpool.Duration(d), err
}

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
	if isDuration(t) {
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

// field finds t's field for a config key, matching its mapstructure tag as mapstructure does (case aside),
// in the structs t squashes too (apps.ConfigApp's App). A field tagged "-" is no key.
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if f.Anonymous && opts == "squash" {
			if sf, ok := field(f.Type, key); ok {
				return sf, true
			}
			continue
		}
		if name != "-" && strings.EqualFold(name, key) {
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

var hexRe = regexp.MustCompile(`^([0-9a-fA-F]{2}){16,}$`)

// Validate reports every contradiction or bad value, each naming its key. Each part's section is checked
// by that part's own Validate; here are the config's own sections and the rules across sections: names
// unique per kind, the trunks a pool's entries name, the pools an app draws from, the otp defaults an app
// inherits.
func (c Config) Validate() error {
	var errs setting.Errors
	reported := map[string]bool{}
	bad := func(key, format string, a ...any) {
		errs.Add(key, format, a...)
		reported[key] = true
	}
	// under reports the errors of a part's Validate, their keys under prefix.
	under := func(prefix string, err error) {
		for _, e := range fieldErrors(err) {
			bad(prefix+e.Key, "%s", e.Msg)
		}
	}
	under("http.", c.HTTP.Validate())
	under("sip.", c.SIP.Validate())
	switch c.Store.Driver {
	case StoreBolt:
		if c.Store.Path == "" {
			bad("store.path", "must not be empty")
		}
	case StorePostgres:
		if c.Store.DSN == "" {
			bad("store.dsn", "must not be empty with store.driver postgres (a pgx connection string, e.g. postgres://flashotp@db1,db2/flashotp?target_session_attrs=read-write)")
		}
		if c.Store.SecretKey == "" {
			// Every engine must MAC codes under the same key, and the key must not live in the database
			// beside the MACs it protects.
			bad("store.secret_key", "must be set with store.driver postgres: the same key on every engine (generate one with: openssl rand -hex 32)")
		}
	default:
		bad("store.driver", "want %s or %s", StoreBolt, StorePostgres)
	}
	if c.Store.SecretKey != "" && !hexRe.MatchString(c.Store.SecretKey) {
		bad("store.secret_key", "want at least 32 hex characters (16 bytes)")
	}
	if !nodeIDRe.MatchString(c.Node.ID) {
		bad("node.id", "want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit (default: the host name)")
	}
	if c.Node.Lease < 2*time.Second || c.Node.Lease > 5*time.Minute {
		bad("node.lease", "want 2s to 5m")
	}

	if len(c.Trunks) == 0 {
		bad("trunks", "at least one trunk is needed")
	}
	seen := map[string]bool{}
	// checkName checks the name of a trunk, pool or app: well-formed as its kind's names are (valid) and
	// the only one of its kind.
	checkName := func(key, kind, name string, valid func(string) bool) {
		if !valid(name) {
			bad(key, "want letters, digits, _ . -, got %q", name)
		} else if seen[kind+" "+name] {
			bad(key, "duplicate %s %q", kind, name)
		}
		seen[kind+" "+name] = true
	}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		// A pool's entries name trunks: a trunk's name is one they can name.
		checkName(key+".name", "trunk", t.Name, numberpool.ValidName)
		under(key+".", t.WithDefaults(c.SIP.Transport).Validate())
	}

	if len(c.Pool) == 0 {
		bad("pool", "at least one pool is needed")
	}
	for i, p := range c.Pool {
		before := len(errs)
		key := fmt.Sprintf("pool[%d]", i)
		checkName(key+".name", "pool", p.Name, numberpool.ValidName)
		under(key+".", p.Validate(func(trunk string) bool { return seen["trunk "+trunk] }))
		// What the keys above do not cover (entry IDs, weights, quarantine codes), once they hold.
		if len(errs) == before {
			if err := p.Pool().Validate(); err != nil {
				bad(key, "%v", err)
			}
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
	under("otp.", c.OTP.Validate())
	under("webhooks.", c.Webhooks.Validate())
	under("dialer.", c.Dialer.Validate())
	under("voice.", c.Voice.Validate())
	under("sms.", c.SMS.Validate())
	under("totp.", c.TOTP.Validate())
	under("stir.", c.STIR.Validate())
	under("console.", c.Console.Validate())
	if c.SMS.Via == sms.ViaHTTP {
		// The gateway's section matters only when it carries the SMS.
		under("http_sms.", c.HTTPSMS.Validate())
		g := c.HTTPSMS
		if (g.Preset == smsgw.PresetTwilio || g.Preset == smsgw.PresetVonage) && g.From == "" && c.SMS.Sender == "" && g.MessagingServiceSID == "" {
			bad("http_sms.from", "preset %s needs a sender: http_sms.from or sms.sender (or, for twilio, http_sms.messaging_service_sid)", g.Preset)
		}
		if g.From != "" {
			if err := sms.CheckSender(g.From); err != nil {
				bad("http_sms.from", "%s", err)
			}
		}
	}
	under("email.", c.Email.Validate())
	for i, smsc := range c.SMPP {
		key := fmt.Sprintf("smpp[%d]", i)
		if seen["smsc "+smsc.Name] {
			bad(key+".name", "duplicate SMSC %q", smsc.Name)
		}
		seen["smsc "+smsc.Name] = true
		under(key+".", smsc.WithDefaults().Validate())
	}
	if c.SMS.Via == sms.ViaSMPP && len(c.SMPP) == 0 {
		bad("smpp", "sms.via is smpp: at least one SMSC is needed")
	}
	under("whatsapp.", c.WhatsApp.Validate())

	if len(c.Apps) == 0 {
		bad("apps", "at least one app is needed")
	}
	keys := map[string]bool{}
	for i, a := range c.Apps {
		key := fmt.Sprintf("apps[%d]", i)
		// The file's names share one pattern (a letter or digit first), stricter than the admin API's app IDs
		// (apps.ValidID): an app made in the file keeps an ID that every name there may have.
		checkName(key+".id", "app", a.ID, numberpool.ValidName)
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
		// refuses to start if an app has no numbers at all. The names of the pools it names are checked
		// by the app's own Validate.
		pools := c.appPools(a.App)
		if len(pools) == 0 {
			bad(key+".pools", "app %q names no pool and no pool is called %q", a.ID, a.ID)
			continue
		}
		settings := a.App
		settings.Pools = pools
		inherited := map[string]bool{"code_length": a.CodeLength == 0, "ttl": a.TTL == 0, "max_attempts": a.MaxAttempts == 0}
		for _, e := range fieldErrors(settings.WithDefaults(c.OTP.AppDefaults()).Validate()) {
			// A value the app inherits from the otp section is that key's error, said once; the id is
			// checked above, with the file's stricter pattern.
			if reported["otp."+e.Key] && inherited[e.Key] || e.Key == "id" {
				continue
			}
			bad(key+"."+e.Key, "%s", e.Msg)
		}
		if slices.Contains(a.Channels, apps.ChannelEmail) && !c.Email.Configured() {
			bad(key+".channels", "app %q uses channel email: configure the email section (email.host, email.from)", a.ID)
		}
		for j, ch := range a.Channels {
			if ch == apps.ChannelInbound && !slices.ContainsFunc(c.Trunks, func(t dialer.Trunk) bool { return t.Inbound }) {
				bad(fmt.Sprintf("%s.channels[%d]", key, j), "channel inbound needs a trunk with inbound: true (the one the users' calls come in on)")
			}
			if ch == apps.ChannelWhatsApp && !c.WhatsApp.Configured() {
				bad(fmt.Sprintf("%s.channels[%d]", key, j), "channel whatsapp needs the whatsapp section (whatsapp.phone_number_id and its credentials)")
			}
		}
		if a.WebhookURL != "" && len(a.WebhookSecret) < 16 {
			bad(key+".webhook_secret", "want at least 16 characters when webhook_url is set: receivers check signatures with it")
		}
	}

	under("phone.", c.Phone.Validate())
	return errs.Err()
}

// fieldErrors returns the *setting.Errors a part's Validate joined into err. An error of another kind
// (there should be none) is kept under the key "" rather than lost.
func fieldErrors(err error) []*setting.Error {
	var out []*setting.Error
	for _, e := range setting.Split(err) {
		var se *setting.Error
		if !errors.As(e, &se) {
			se = &setting.Error{Msg: e.Error()}
		}
		out = append(out, se)
	}
	return out
}

// ConfigApps returns the apps of the file, each with the pools it draws caller IDs from filled in.
func (c Config) ConfigApps() []apps.ConfigApp {
	out := make([]apps.ConfigApp, 0, len(c.Apps))
	for _, a := range c.Apps {
		a.Pools = c.appPools(a.App)
		out = append(out, a)
	}
	return out
}

// appPools returns the pools a draws caller IDs from: its own list, else the pool named like the app, else
// the only pool there is.
func (c Config) appPools(a apps.App) []string {
	if len(a.Pools) > 0 {
		return a.Pools
	}
	for _, p := range c.Pool {
		if p.Name == a.ID {
			return []string{p.Name}
		}
	}
	if len(c.Pool) == 1 {
		return []string{c.Pool[0].Name}
	}
	return nil
}
