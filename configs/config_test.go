package configs_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/console"
	"flashotp/dialer"
	"flashotp/email"
	"flashotp/httpapi"
	"flashotp/numberpool"
	"flashotp/otp"
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

// exampleFile is the checked-in demo configuration; go test runs in the package directory.
const exampleFile = "flashotp.yaml"

// writeConfig writes body as a YAML file in a fresh temporary directory and returns its path.
func writeConfig(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// validConfig returns a configuration that passes Validate, to be spoiled one key at a time.
func validConfig() configs.Config {
	c := configs.Default()
	c.Trunks = []dialer.Trunk{{Name: "phone", Address: "127.0.0.1:5062", Transport: "udp"}}
	c.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	c.Apps = []apps.ConfigApp{{App: apps.App{ID: "demo"}, APIKey: "demo", APISecret: "demo-secret"}}
	c.Phone.Enabled = true
	return c
}

func TestLoadExample(t *testing.T) {
	cfg, err := configs.Load(exampleFile)
	if err != nil {
		t.Fatalf("Load(%s): %v", exampleFile, err)
	}
	// SPEC section 5, plus the two dialer keys the example file adds.
	want := configs.Config{
		HTTP: httpapi.Settings{Listen: "127.0.0.1:8080", AdminToken: "demo-admin-token", MaxBodyBytes: 65536, DrainDelay: 5 * time.Second, MaxConns: 4096, MaxConnsPerIP: 512},
		SIP: sip.Settings{Listen: "127.0.0.1:5060", Transport: "udp", PublicAddress: "", ListenTCP: "auto",
			TCPLimits: sip.TCPLimits{MaxConns: 256, MaxConnsPerSource: 32, IdleTimeout: 30 * time.Second, MessageTimeout: 5 * time.Second}},
		Store: configs.Store{Driver: configs.StoreBolt, Path: "data/flashotp.db", SecretKey: ""},
		Trunks: []dialer.Trunk{{
			Name: "phone", Address: "127.0.0.1:5062", Transport: "udp",
			Username: "", Password: "", MaxCPS: 0, MaxCalls: 0,
			Weight: 1, DownAfter: 3, OptionsInterval: 30 * time.Second,
			NumberFormat: "e164", CLIHeaders: []string{"from", "pai"}, InboundTrust: []string{"pai", "from"}, InboundReject: 603, RegisterExpires: 10 * time.Minute,
		}},
		Pool: []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}},
		OTP: otp.Settings{
			CodeLength:   4,
			TTL:          5 * time.Minute,
			MaxAttempts:  5,
			MinCodeSpace: 10000,
			Retention:    30 * 24 * time.Hour,
		},
		Webhooks: webhook.Settings{RetryMin: time.Second, RetryMax: 5 * time.Minute, GiveUpAfter: time.Hour, Timeout: 10 * time.Second},
		Dialer: dialer.Settings{
			RingTime:    0,
			DialTimeout: 30 * time.Second,
			CancelGuard: 4 * time.Second,
			QueueSize:   10000, ShutdownTimeout: 10 * time.Second,
		},
		Apps: []apps.ConfigApp{{App: apps.App{ID: "demo",
			Channels: []string{apps.ChannelFlashCall, apps.ChannelVoice, apps.ChannelSMS},
			Workflow: []apps.Step{
				{Channel: apps.ChannelFlashCall, Timeout: apps.Duration(20 * time.Second)},
				{Channel: apps.ChannelSMS, Timeout: apps.Duration(time.Minute)},
				{Channel: apps.ChannelVoice},
			}}, APIKey: "demo", APISecret: "demo-secret"}},
		Phone:   sip.PhoneSettings{Enabled: true, Listen: "127.0.0.1:5062", Mode: sip.PhonePickup},
		Voice:   voice.Settings{AnswerTimeout: 30 * time.Second, Repeat: 2},
		SMS:     sms.Settings{Via: sms.ViaTrunk},
		HTTPSMS: smsgw.DefaultSettings, // unused: sms.via is trunk
		Email:   email.DefaultSettings,
		// The example leaves whatsapp commented out: its defaults, the channel off.
		WhatsApp: whatsapp.DefaultSettings,
		TOTP:     totp.Settings{Digits: 6, LookAhead: 10},
		STIR:     stir.DefaultSettings,
		Console:  console.Settings{Enabled: true, IdleTimeout: 30 * time.Minute, MaxAge: 12 * time.Hour},
		Node:     configs.Node{ID: configs.Default().Node.ID, Lease: 10 * time.Second},
		Log:      configs.Log{Level: "info", Format: "text"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(%s) =\n%+v\nwant\n%+v", exampleFile, cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate of the loaded example: %v", err)
	}
}

func TestLoadTempFileFillsDefaults(t *testing.T) {
	path := writeConfig(t, `
trunks:
  - name: carrier
    address: 192.0.2.10:5060
    username: alice
    password: s3cret
pool:
  - name: uk
    numbers: ["+44207946XXXX", "+441134960XXX"]
otp:
  code_length: 6
  ttl: 90s
apps:
  - id: shop
    api_key: shop-key
    api_secret: shop-secret-123
    pools: [uk]
`)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	def := configs.Default()
	tests := []struct {
		name      string
		got, want any
	}{
		{"http.listen default", cfg.HTTP.Listen, def.HTTP.Listen},
		{"http.max_body_bytes default", cfg.HTTP.MaxBodyBytes, def.HTTP.MaxBodyBytes},
		{"sip.transport default", cfg.SIP.Transport, "udp"},
		{"store.path default", cfg.Store.Path, "data/flashotp.db"},
		{"otp.code_length from file", cfg.OTP.CodeLength, 6},
		{"otp.ttl from file", cfg.OTP.TTL, 90 * time.Second},
		{"otp.max_attempts default", cfg.OTP.MaxAttempts, 5},
		{"otp.min_code_space default", cfg.OTP.MinCodeSpace, 10000},
		{"dialer.dial_timeout default", cfg.Dialer.DialTimeout, 30 * time.Second},
		{"dialer.ring_time default", cfg.Dialer.RingTime, time.Duration(0)},
		{"phone.mode default", cfg.Phone.Mode, sip.PhoneRing},
		{"trunks from file", cfg.Trunks, []dialer.Trunk{{
			Name: "carrier", Address: "192.0.2.10:5060", Username: "alice", Password: "s3cret",
			Transport: "udp", Weight: 1, DownAfter: 3, OptionsInterval: 30 * time.Second,
			NumberFormat: "e164", CLIHeaders: []string{"from", "pai"}, InboundTrust: []string{"pai", "from"}, InboundReject: 603, RegisterExpires: 10 * time.Minute,
		}}},
		{"pool from file", cfg.Pool, []numberpool.FilePool{{Name: "uk", Numbers: []string{"+44207946XXXX", "+441134960XXX"}}}},
		{"apps from file", cfg.Apps, []apps.ConfigApp{{
			App: apps.App{ID: "shop", Pools: []string{"uk"}}, APIKey: "shop-key", APISecret: "shop-secret-123",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body string
		want string // a substring the error must contain
	}{
		{"unknown top-level key", string(example) + "bogus: 1\n", "bogus"},
		{"unknown nested key", strings.Replace(string(example), "  admin_token:", "  admin_tokn:", 1), "admin_tokn"},
		{"unknown trunk key", strings.Replace(string(example), "    max_cps: 0", "    max_cps: 0\n    proxy: x", 1), "proxy"},
		{"bad duration", strings.Replace(string(example), "ttl: 5m", "ttl: five", 1), "ttl"},
		{"invalid value names key", strings.Replace(string(example), "code_length: 4", "code_length: 3", 1), "otp.code_length"},
		{"not yaml", "http: [\n", ""},
		{"empty file: no trunks", "", "trunks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configs.Load(writeConfig(t, tt.body))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		if _, err := configs.Load(path); err == nil {
			t.Fatal("Load of a missing file succeeded")
		}
	})
}

func TestLoadEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c configs.Config)
		wantErr string // non-empty: Load must fail mentioning it
	}{
		{
			name: "http listen",
			env:  map[string]string{"FLASHOTP_HTTP_LISTEN": "127.0.0.1:9090"},
			check: func(t *testing.T, c configs.Config) {
				if c.HTTP.Listen != "127.0.0.1:9090" {
					t.Errorf("http.listen = %q, want 127.0.0.1:9090", c.HTTP.Listen)
				}
			},
		},
		{
			name: "otp ttl",
			env:  map[string]string{"FLASHOTP_OTP_TTL": "2m"},
			check: func(t *testing.T, c configs.Config) {
				if c.OTP.TTL != 2*time.Minute {
					t.Errorf("otp.ttl = %s, want 2m", c.OTP.TTL)
				}
			},
		},
		{
			name: "both, and the file's other values stay",
			env:  map[string]string{"FLASHOTP_HTTP_LISTEN": "127.0.0.1:9191", "FLASHOTP_OTP_TTL": "10m"},
			check: func(t *testing.T, c configs.Config) {
				if c.HTTP.Listen != "127.0.0.1:9191" || c.OTP.TTL != 10*time.Minute {
					t.Errorf("http.listen = %q, otp.ttl = %s; want 127.0.0.1:9191, 10m", c.HTTP.Listen, c.OTP.TTL)
				}
				if c.SIP.Listen != "127.0.0.1:5060" || c.OTP.CodeLength != 4 {
					t.Errorf("other keys changed: sip.listen %q, otp.code_length %d", c.SIP.Listen, c.OTP.CodeLength)
				}
			},
		},
		{
			name: "http drain delay",
			env:  map[string]string{"FLASHOTP_HTTP_DRAIN_DELAY": "15s"},
			check: func(t *testing.T, c configs.Config) {
				if c.HTTP.DrainDelay != 15*time.Second {
					t.Errorf("http.drain_delay = %s, want 15s", c.HTTP.DrainDelay)
				}
			},
		},
		{
			name:    "drain delay out of range is validated",
			env:     map[string]string{"FLASHOTP_HTTP_DRAIN_DELAY": "1h"},
			wantErr: "http.drain_delay",
		},
		{
			name: "log and trusted proxies",
			env: map[string]string{"FLASHOTP_LOG_LEVEL": "DEBUG", "FLASHOTP_LOG_FORMAT": "json",
				"FLASHOTP_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::ffff:127.0.0.1,2001:db8::/32"},
			check: func(t *testing.T, c configs.Config) {
				if c.Log != (configs.Log{Level: "DEBUG", Format: "json"}) {
					t.Errorf("log = %+v, want DEBUG, json", c.Log)
				}
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
					netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("2001:db8::/32")}
				if got := c.HTTP.Proxies(); !reflect.DeepEqual(got, want) {
					t.Errorf("http.trusted_proxies = %v, want %v", got, want)
				}
			},
		},
		{
			name:    "trusted proxies are validated, naming the variable",
			env:     map[string]string{"FLASHOTP_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33"},
			wantErr: `http.trusted_proxies[1]: want a CIDR (10.0.0.0/8) or an IP, got "10.0.0.0/33" (from environment FLASHOTP_HTTP_TRUSTED_PROXIES)`,
		},
		{
			name:    "log format is validated",
			env:     map[string]string{"FLASHOTP_LOG_FORMAT": "xml"},
			wantErr: "log.format: want text or json",
		},
		{
			name:    "ttl out of range is validated",
			env:     map[string]string{"FLASHOTP_OTP_TTL": "1h"},
			wantErr: "otp.ttl",
		},
		{
			name:    "listen without port is validated",
			env:     map[string]string{"FLASHOTP_HTTP_LISTEN": "localhost"},
			wantErr: "http.listen",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := configs.Load(exampleFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("the base configuration does not validate: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(c *configs.Config)
		key    string // the key the error must name
	}{
		{"code length too short", func(c *configs.Config) { c.OTP.CodeLength = 3 }, "otp.code_length"},
		{"code length too long", func(c *configs.Config) { c.OTP.CodeLength = 9 }, "otp.code_length"},
		{"trunk address", func(c *configs.Config) { c.Trunks[0].Address = "nope" }, "trunks[0].address"},
		{"trunk address without host", func(c *configs.Config) { c.Trunks[0].Address = ":5060" }, "trunks[0].address"},
		{"trunk address bad port", func(c *configs.Config) { c.Trunks[0].Address = "127.0.0.1:70000" }, "trunks[0].address"},
		{"pool number not digits", func(c *configs.Config) { c.Pool[0].Numbers[0] = "+44abc" }, "pool[0].numbers[0]"},
		{"pool number without plus", func(c *configs.Config) { c.Pool[0].Numbers = []string{"+44207946XXXX", "44207946XXXX"} }, "pool[0].numbers[1]"},
		{"pool without numbers", func(c *configs.Config) { c.Pool[0].Numbers = nil }, "pool[0].numbers"},
		{"api secret too short", func(c *configs.Config) { c.Apps[0].APISecret = "short" }, "apps[0].api_secret"},
		{"duplicate app id", func(c *configs.Config) {
			c.Apps = append(c.Apps, apps.ConfigApp{App: apps.App{ID: "demo"}, APIKey: "other", APISecret: "other-secret"})
		}, "apps[1].id"},
		{"duplicate api key", func(c *configs.Config) {
			c.Apps = append(c.Apps, apps.ConfigApp{App: apps.App{ID: "other"}, APIKey: "demo", APISecret: "other-secret"})
		}, "apps[1].api_key"},
		// The file's names share one pattern, a letter or digit first, stricter than the admin API's app IDs.
		{"app id starting with a dash", func(c *configs.Config) { c.Apps[0].ID, c.Apps[0].Pools = "-shop", []string{"demo"} }, "apps[0].id"},
		{"app id starting with an underscore", func(c *configs.Config) { c.Apps[0].ID, c.Apps[0].Pools = "_shop", []string{"demo"} }, "apps[0].id"},
		{"app names a malformed pool", func(c *configs.Config) { c.Apps[0].Pools = []string{"no such"} }, "apps[0].pools[0]"},
		{"unknown phone mode", func(c *configs.Config) { c.Phone.Mode = "ringing" }, "phone.mode"},
		{"sip transport unknown", func(c *configs.Config) { c.SIP.Transport = "sctp" }, "sip.transport"},
		{"sip listen_tcp unknown", func(c *configs.Config) { c.SIP.ListenTCP = "yes" }, "sip.listen_tcp"},
		{"sip tls_listen without its certificate", func(c *configs.Config) { c.SIP.TLSListen = "127.0.0.1:5061" }, "sip.tls_cert"},
		{"sip tls_cert without tls_listen", func(c *configs.Config) { c.SIP.TLSCert, c.SIP.TLSKey = "a.pem", "b.pem" }, "sip.tls_listen"},
		{"trunk register without username", func(c *configs.Config) { c.Trunks[0].Register = true }, "trunks[0].username"},
		{"trunk inbound_reject", func(c *configs.Config) { c.Trunks[0].InboundReject = 404 }, "trunks[0].inbound_reject"},
		{"sip max_tcp_conns zero", func(c *configs.Config) { c.SIP.MaxConns = 0 }, "sip.max_tcp_conns"},
		{"sip max_tcp_conns_per_source over the total", func(c *configs.Config) { c.SIP.MaxConnsPerSource = c.SIP.MaxConns + 1 }, "sip.max_tcp_conns_per_source"},
		{"sip tcp_idle_timeout zero", func(c *configs.Config) { c.SIP.IdleTimeout = 0 }, "sip.tcp_idle_timeout"},
		{"sip tcp_message_timeout too long", func(c *configs.Config) { c.SIP.MessageTimeout = time.Hour }, "sip.tcp_message_timeout"},
		{"trunk transport unknown", func(c *configs.Config) { c.Trunks[0].Transport = "ws" }, "trunks[0].transport"},
		{"tls keys without tls", func(c *configs.Config) { c.Trunks[0].TLSCA = "ca.pem" }, "trunks[0].transport"},
		{"tls cert without key", func(c *configs.Config) { c.Trunks[0].Transport, c.Trunks[0].TLSCert = "tls", "c.pem" }, "trunks[0].tls_cert"},
		{"weight too large", func(c *configs.Config) { c.Trunks[0].Weight = 5000 }, "trunks[0].weight"},
		{"number format", func(c *configs.Config) { c.Trunks[0].NumberFormat = "local" }, "trunks[0].number_format"},
		{"tech prefix with text", func(c *configs.Config) { c.Trunks[0].TechPrefix = "12\r\nX" }, "trunks[0].tech_prefix"},
		{"tech prefix before a plus", func(c *configs.Config) { c.Trunks[0].TechPrefix, c.Trunks[0].NumberFormat = "99", "e164" }, "trunks[0].tech_prefix"},
		{"cli header unknown", func(c *configs.Config) { c.Trunks[0].CLIHeaders = []string{"from", "diversion"} }, "trunks[0].cli_headers[1]"},
		{"cli headers empty", func(c *configs.Config) { c.Trunks[0].CLIHeaders = []string{} }, "trunks[0].cli_headers"},
		{"domain with sip syntax", func(c *configs.Config) { c.Trunks[0].Domain = "evil;maddr=x" }, "trunks[0].domain"},
		{"outbound proxy", func(c *configs.Config) { c.Trunks[0].OutboundProxy = "proxy" }, "trunks[0].outbound_proxy"},
		{"accept_from a host name", func(c *configs.Config) { c.Trunks[0].AcceptFrom = []string{"203.0.113.0/24", "sbc.example"} }, "trunks[0].accept_from[1]"},
		{"accept_from bad prefix", func(c *configs.Config) { c.Trunks[0].AcceptFrom = []string{"203.0.113.0/33"} }, "trunks[0].accept_from[0]"},
		{"options interval", func(c *configs.Config) { c.Trunks[0].OptionsInterval = time.Millisecond }, "trunks[0].options_interval"},
		{"duplicate trunk", func(c *configs.Config) { c.Trunks = append(c.Trunks, c.Trunks[0]) }, "trunks[1].name"},
		{"username without password", func(c *configs.Config) { c.Trunks[0].Username = "alice" }, "trunks[0].username"},
		{"negative max_cps", func(c *configs.Config) { c.Trunks[0].MaxCPS = -1 }, "trunks[0].max_cps"},
		{"no trunks", func(c *configs.Config) { c.Trunks = nil }, "trunks"},
		{"no apps", func(c *configs.Config) { c.Apps = nil }, "apps"},
		{"http listen empty", func(c *configs.Config) { c.HTTP.Listen = "" }, "http.listen"},
		{"max body too small", func(c *configs.Config) { c.HTTP.MaxBodyBytes = 10 }, "http.max_body_bytes"},
		{"max conns negative", func(c *configs.Config) { c.HTTP.MaxConns = -1 }, "http.max_conns"},
		{"max conns per ip over max conns", func(c *configs.Config) { c.HTTP.MaxConnsPerIP = c.HTTP.MaxConns + 1 }, "http.max_conns_per_ip"},
		{"drain delay negative", func(c *configs.Config) { c.HTTP.DrainDelay = -time.Second }, "http.drain_delay"},
		{"drain delay too long", func(c *configs.Config) { c.HTTP.DrainDelay = 6 * time.Minute }, "http.drain_delay"},
		{"store path empty", func(c *configs.Config) { c.Store.Path = "" }, "store.path"},
		{"store driver unknown", func(c *configs.Config) { c.Store.Driver = "sqlite" }, "store.driver"},
		{"node id with a space", func(c *configs.Config) { c.Node.ID = "node 1" }, "node.id"},
		{"node id empty", func(c *configs.Config) { c.Node.ID = "" }, "node.id"},
		{"node lease too short", func(c *configs.Config) { c.Node.Lease = time.Second }, "node.lease"},
		{"postgres without dsn", func(c *configs.Config) {
			c.Store.Driver, c.Store.SecretKey = configs.StorePostgres, strings.Repeat("ab", 16)
		}, "store.dsn"},
		{"postgres without secret key", func(c *configs.Config) { c.Store.Driver, c.Store.DSN = configs.StorePostgres, "postgres://db/flashotp" }, "store.secret_key"},
		{"secret key not hex", func(c *configs.Config) { c.Store.SecretKey = strings.Repeat("zz", 16) }, "store.secret_key"},
		{"secret key too short", func(c *configs.Config) { c.Store.SecretKey = "abcdef" }, "store.secret_key"},
		{"ttl too short", func(c *configs.Config) { c.OTP.TTL = 30 * time.Second }, "otp.ttl"},
		{"max attempts zero", func(c *configs.Config) { c.OTP.MaxAttempts = 0 }, "otp.max_attempts"},
		{"min code space zero", func(c *configs.Config) { c.OTP.MinCodeSpace = 0 }, "otp.min_code_space"},
		{"negative ring time", func(c *configs.Config) { c.Dialer.RingTime = -time.Second }, "dialer.ring_time"},
		{"dial timeout zero", func(c *configs.Config) { c.Dialer.DialTimeout = 0 }, "dialer.dial_timeout"},
		{"queue size zero", func(c *configs.Config) { c.Dialer.QueueSize = 0 }, "dialer.queue_size"},
		{"voice answer timeout", func(c *configs.Config) { c.Voice.AnswerTimeout = 0 }, "voice.answer_timeout"},
		{"voice caller id", func(c *configs.Config) { c.Voice.CallerID = "hello" }, "voice.caller_id"},
		{"voice prompts dir", func(c *configs.Config) { c.Voice.PromptsDir = "/nonexistent" }, "voice.prompts_dir"},
		{"sms via smpp without an SMSC", func(c *configs.Config) { c.SMS.Via = sms.ViaSMPP }, "smpp"},
		{"smpp address", func(c *configs.Config) { c.SMPP = []smpp.Settings{{Name: "a", Address: "smsc", SystemID: "x"}} }, "smpp[0].address"},
		{"smpp duplicate", func(c *configs.Config) {
			c.SMPP = []smpp.Settings{{Name: "a", Address: "smsc:2775", SystemID: "x"}, {Name: "a", Address: "smsc:2776", SystemID: "x"}}
		}, "smpp[1].name"},
		{"sms sender", func(c *configs.Config) { c.SMS.Sender = "Way Too Long Sender" }, "sms.sender"},
		{"email tls", func(c *configs.Config) {
			c.Email.Host, c.Email.From, c.Email.TLS = "smtp.example.com", "otp@shop.example", "ssl"
		}, "email.tls"},
		{"email in clear to a remote host", func(c *configs.Config) {
			c.Email.Host, c.Email.From, c.Email.TLS = "smtp.example.com", "otp@shop.example", email.TLSNone
		}, "email.tls"},
		{"email from", func(c *configs.Config) { c.Email.Host, c.Email.From = "smtp.example.com", "Shop" }, "email.from"},
		{"an app's email without the section", func(c *configs.Config) { c.Apps[0].Channels = append(c.Apps[0].Channels, "email") }, "apps[0].channels"},
		{"phone listen bad", func(c *configs.Config) { c.Phone.Listen = "nope" }, "phone.listen"},
		{"log level unknown", func(c *configs.Config) { c.Log.Level = "trace" }, "log.level"},
		{"log format unknown", func(c *configs.Config) { c.Log.Format = "logfmt" }, "log.format"},
		{"trusted proxy not an address", func(c *configs.Config) { c.HTTP.TrustedProxies = []string{"10.0.0.1", "proxy.local"} }, "http.trusted_proxies[1]"},
		{"trusted proxy bad prefix", func(c *configs.Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/40"} }, "http.trusted_proxies[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate succeeded, want an error naming %s", tt.key)
			}
			if !strings.Contains(err.Error(), tt.key+":") {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
		})
	}
}

// FuzzLoad feeds arbitrary files to Load: it must never panic, and whatever it accepts must validate.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		f.Fatal(err)
	}
	// The other seeds are in testdata/fuzz/FuzzLoad; the shipped example is read here, so that the seed is
	// the example as it is now.
	f.Add(example)
	// One file per fuzz worker process, rewritten for every input: the fuzz function never runs in parallel
	// within a process, and a directory per input makes the run disk-bound.
	path := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(path)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a configuration that does not validate: %v", err)
		}
	})
}

func TestWebhookNeedsSecret(t *testing.T) {
	cfg := configs.Default()
	cfg.Trunks = []dialer.Trunk{{Name: "phone", Address: "127.0.0.1:5062"}}
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	cfg.Apps = []apps.ConfigApp{{App: apps.App{ID: "demo", WebhookURL: "https://example.com/hooks"}, APIKey: "demo", APISecret: "demo-secret"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "apps[0].webhook_secret") {
		t.Fatalf("webhook_url without webhook_secret: %v", err)
	}
	cfg.Apps[0].WebhookSecret = "0123456789abcdef"
	cfg.Apps[0].RateLimits = map[string]apps.Limit{"recipient": {Limit: 3, Window: 0}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "apps[0].rate_limits.recipient.window") {
		t.Fatalf("a limit without a window: %v", err)
	}
}

func TestHTTPTLSNeedsBoth(t *testing.T) {
	cfg := configs.Default()
	cfg.Trunks = []dialer.Trunk{{Name: "phone", Address: "127.0.0.1:5062"}}
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	cfg.Apps = []apps.ConfigApp{{App: apps.App{ID: "demo"}, APIKey: "demo", APISecret: "demo-secret"}}
	cfg.HTTP.TLSCert = "/etc/flashotp/cert.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Fatalf("a certificate without a key: %v", err)
	}
}

// A pool entry's countries must be codes a recipient's country can be (as apps' allowed_countries): "UK"
// would be stored and then never serve a British number, whose code is GB.
func TestLoadPoolCountries(t *testing.T) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		countries string
		want      []string // what the error must say; none: it loads
	}{
		{`["UK"]`, []string{"pool[0].entries[0].countries[0]:", `"UK"`, "did you mean GB"}},
		{`["FR", "ZZ"]`, []string{"pool[0].entries[0].countries[1]:", `"ZZ"`}},
		{`["gb"]`, []string{"pool[0].entries[0].countries[0]:", "capitals: GB"}},
		{`["GB"]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.countries, func(t *testing.T) {
			body := strings.Replace(string(example), `    numbers: ["+44207946XXXX"]`,
				`    numbers: ["+44207946XXXX"]`+"\n    entries:\n      - numbers: [\"+44113496XXXX\"]\n        countries: "+tt.countries, 1)
			cfg, err := configs.Load(writeConfig(t, body))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := cfg.Pool[0].Entries[0].Countries; len(got) != 1 || got[0] != "GB" {
					t.Errorf("countries = %v, want [GB]", got)
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// durationKeys lists the duration keys of the Config type t, lists as [] and maps as *: otp.ttl,
// trunks[].options_interval, apps[].rate_limits.*.window.
func durationKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)) || t == reflect.TypeOf(numberpool.Duration(0)):
		return []string{prefix}
	case t.Kind() == reflect.Slice:
		return durationKeys(t.Elem(), prefix+"[]")
	case t.Kind() == reflect.Map:
		return durationKeys(t.Elem(), prefix+".*")
	case t.Kind() != reflect.Struct:
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		switch {
		case name == "-":
			continue
		case opts == "squash": // apps.ConfigApp's App: its keys are the app's own
			name = prefix
		case prefix != "":
			name = prefix + "." + name
		}
		keys = append(keys, durationKeys(t.Field(i).Type, name)...)
	}
	return keys
}

// minimalFile is the least a file needs (a trunk, a pool, an app); each part can be replaced.
func minimalFile(trunk, pool, app string) string {
	return "trunks: [{name: t, address: \"127.0.0.1:5062\"" + trunk + "}]\n" +
		"pool: [{name: p, numbers: [\"+44207946XXXX\"]" + pool + "}]\n" +
		"apps: [{id: a, api_key: k, api_secret: secret-123" + app + "}]\n"
}

// A duration written as a bare number (ttl: 300) was read as nanoseconds; every duration key, in the file
// and in the environment, now refuses it, naming the key and where it was set.
func TestLoadDurationNeedsUnit(t *testing.T) {
	if _, err := configs.Load(writeConfig(t, minimalFile("", "", ""))); err != nil {
		t.Fatalf("the minimal file does not load: %v", err)
	}
	inLists := map[string]string{ // the keys inside lists, set in the minimal file
		"trunks[].options_interval":    minimalFile(", options_interval: 300", "", ""),
		"trunks[].register_expires":    minimalFile(", register_expires: 300", "", ""),
		"pool[].cooldown":              minimalFile("", ", cooldown: 300", ""),
		"pool[].quarantine_for":        minimalFile("", ", quarantine_for: 300", ""),
		"apps[].ttl":                   minimalFile("", "", ", ttl: 300"),
		"apps[].resend_cooldown":       minimalFile("", "", ", resend_cooldown: 300"),
		"apps[].rate_limits.*.window":  minimalFile("", "", ", rate_limits: {recipient: {limit: 1, window: 300}}"),
		"apps[].pre_send_hook.timeout": minimalFile("", "", ", pre_send_hook: {url: \"https://x.example\", timeout: 300}"),
		"apps[].workflow[].timeout":    minimalFile("", "", ", workflow: [{channel: flashcall, timeout: 300}]"),
		"smpp[].enquire_link":          minimalFile("", "", "") + "smpp:\n  - {name: a, address: \"smsc:2775\", system_id: x, enquire_link: 300}\n",
		"smpp[].bind_timeout":          minimalFile("", "", "") + "smpp:\n  - {name: a, address: \"smsc:2775\", system_id: x, bind_timeout: 300}\n",
	}
	for _, key := range durationKeys(reflect.TypeOf(configs.Config{}), "") {
		body, inList := inLists[key]
		if !inList {
			if strings.ContainsAny(key, "[*") {
				t.Fatalf("duration key %s is not tested: add it to inLists", key)
			}
			section, name, _ := strings.Cut(key, ".")
			body = minimalFile("", "", "") + section + ":\n  " + name + ": 300\n"
		}
		t.Run("file "+key, func(t *testing.T) {
			path := writeConfig(t, body)
			_, err := configs.Load(path)
			want := strings.NewReplacer("[]", "[0]", "*", "recipient").Replace(key) + ": 300 has no unit"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"300s"`) ||
				!strings.Contains(err.Error(), "(in file "+path+")") {
				t.Errorf("Load error = %v, want one saying %q, suggesting \"300s\" and naming the file", err, want)
			}
		})
		if inList {
			continue
		}
		t.Run("env "+key, func(t *testing.T) {
			name := "FLASHOTP_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			t.Setenv(name, "300")
			_, err := configs.Load(writeConfig(t, minimalFile("", "", "")))
			if err == nil || !strings.Contains(err.Error(), key+": 300 has no unit") || !strings.Contains(err.Error(), name) {
				t.Errorf("Load error = %v, want one naming %s and %s", err, key, name)
			}
		})
	}
	t.Run("zero needs none", func(t *testing.T) {
		cfg, err := configs.Load(writeConfig(t, minimalFile("", "", "")+"dialer:\n  ring_time: 0\n"))
		if err != nil || cfg.Dialer.RingTime != 0 {
			t.Errorf("ring_time: 0: %v, %s", err, cfg.Dialer.RingTime)
		}
	})
}

// A bad value from the environment was blamed on the file; the error names the variable when the value came
// from there, and the file otherwise.
func TestLoadErrorsNameTheSource(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		body    string // "": the example file
		want    []string
		notWant []string
	}{
		{"env not a duration", map[string]string{"FLASHOTP_OTP_TTL": "five"}, "",
			[]string{"otp.ttl:", `"five"`, "FLASHOTP_OTP_TTL"}, []string{exampleFile}},
		{"env out of range", map[string]string{"FLASHOTP_OTP_TTL": "1h"}, "",
			[]string{"otp.ttl: want 1m..15m", "FLASHOTP_OTP_TTL"}, []string{exampleFile}},
		{"env not a number", map[string]string{"FLASHOTP_OTP_CODE_LENGTH": "four"}, "",
			[]string{"otp.code_length: want a whole number", "FLASHOTP_OTP_CODE_LENGTH"}, []string{exampleFile}},
		{"env bad bool", map[string]string{"FLASHOTP_PHONE_ENABLED": "maybe"}, "",
			[]string{"phone.enabled:", "FLASHOTP_PHONE_ENABLED"}, nil},
		{"file not a duration", nil, strings.Replace(exampleBody(t), "ttl: 5m", "ttl: five", 1),
			[]string{"otp.ttl:", `"five"`, "(in file "}, []string{"FLASHOTP"}},
		{"file not a number", nil, strings.Replace(exampleBody(t), "code_length: 4", "code_length: four", 1),
			[]string{"otp.code_length: want a whole number", "(in file "}, []string{"FLASHOTP"}},
		{"file out of range, env set elsewhere", map[string]string{"FLASHOTP_OTP_TTL": "2m"}, strings.Replace(exampleBody(t), "code_length: 4", "code_length: 3", 1),
			[]string{"otp.code_length: want 4..8, got 3 (in file "}, []string{"FLASHOTP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := exampleFile
			if tt.body != "" {
				path = writeConfig(t, tt.body)
			}
			_, err := configs.Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
		})
	}
}

// An unknown key read "” has invalid keys: sms"; it is named with its whole path, and the file.
func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"section", exampleBody(t) + "fax:\n  from: x\n", []string{`unknown key "fax"`}},
		{"in a section", strings.Replace(exampleBody(t), "  admin_token:", "  admin_tokn:", 1), []string{`unknown key "http.admin_tokn"`}},
		{"in a list", strings.Replace(exampleBody(t), "    max_cps: 0", "    max_cps: 0\n    bar: x", 1), []string{`unknown key "trunks[0].bar"`}},
		{"deeper", minimalFile("", ", entries: [{numbers: [\"+1415555XXXX\"], colour: red}]", ", rate_limits: {recipient: {limit: 1, window: 1m, burst: 2}}"),
			[]string{`unknown key "pool[0].entries[0].colour"`, `unknown key "apps[0].rate_limits.recipient.burst"`}},
		{"several", exampleBody(t) + "fax: 1\npager: 2\n", []string{`unknown key "fax"`, `unknown key "pager"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.body)
			_, err := configs.Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w+" (in file "+path+")") {
					t.Errorf("error %q does not say %s (in file %s)", err, w, path)
				}
			}
		})
	}
}

// exampleBody returns the example file's text.
func exampleBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A TCP listener only when a trunk uses tcp (auto) or sip.listen_tcp asks for one.
func TestSIPListensTCP(t *testing.T) {
	tests := []struct {
		name       string
		listenTCP  string
		transports []string // trunks'; "" takes sip.transport (udp)
		want       bool
	}{
		{"auto, udp trunks", "auto", []string{"udp", ""}, false},
		{"auto, a tls trunk", "auto", []string{"udp", "tls"}, false},
		{"auto, a tcp trunk", "auto", []string{"udp", "tcp"}, true},
		{"on, udp trunks", "on", []string{"udp"}, true},
		{"off, a tcp trunk", "off", []string{"tcp"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.SIP.ListenTCP = tc.listenTCP
			c.Trunks = nil
			for i, tr := range tc.transports {
				c.Trunks = append(c.Trunks, dialer.Trunk{Name: fmt.Sprint("t", i), Address: "127.0.0.1:5062", Transport: tr})
			}
			if got := c.SIPListensTCP(); got != tc.want {
				t.Errorf("SIPListensTCP() = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestLoadSMPP(t *testing.T) {
	path := writeConfig(t, `
trunks:
  - name: carrier
    address: 192.0.2.10:5060
pool:
  - name: uk
    numbers: ["+44207946XXXX"]
apps:
  - id: shop
    api_key: shop-key
    api_secret: shop-secret-123
    pools: [uk]
sms:
  via: smpp
  sender: Shop
smpp:
  - name: main
    address: 192.0.2.20:2775
    system_id: flashotp
    password: s3cret
    rate: 20
  - name: backup
    address: 192.0.2.21:3550
    system_id: flashotp
    tls: true
`)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []smpp.Settings{
		{Name: "main", Address: "192.0.2.20:2775", SystemID: "flashotp", Password: "s3cret", Window: 10, Rate: 20,
			EnquireLink: 30 * time.Second, BindTimeout: 10 * time.Second},
		{Name: "backup", Address: "192.0.2.21:3550", SystemID: "flashotp", TLS: true, Window: 10, Rate: 50,
			EnquireLink: 30 * time.Second, BindTimeout: 10 * time.Second},
	}
	if !reflect.DeepEqual(cfg.SMPP, want) {
		t.Errorf("smpp %+v, want %+v", cfg.SMPP, want)
	}
}
