package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/console"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/httpapi"
	"flashotp/internal/apptest"
	"flashotp/internal/fakes"
	"flashotp/internal/storetest"
	"flashotp/internal/testclock"
	"flashotp/limits"
	"flashotp/metrics"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/store"
	"flashotp/totp"
)

const (
	maxBodyBytes = 2048
	recipient    = "+14155552671"
	demoKey      = "demo"
	demoSecret   = "demo-secret"
	otherKey     = "other-key"
	otherSecret  = "other-secret"
	shortKey     = "short-key"
	shortSecret  = "short-secret"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{5,14}$`)

type env struct {
	db    *store.DB
	srv   *httpapi.Server
	svc   *otp.Service
	pools *numberpool.Registry
	apps  *apps.Registry
	dial  *fakes.Dialer
	clock *testclock.Clock
	totp  *totp.Service
	// console: its accounts, sessions and audit log, on the same clock and store.
	accounts *console.Accounts
	sessions *console.Sessions
	audit    *console.Audit
	// The console's data: live figures sampled from metrics (Tick by hand), trunks and webhook tries.
	metrics *metrics.Metrics
	live    *metrics.Sampler
	trunks  *fakeTrunks
	hooks   *fakeTries
	// bases are the sockets each server serves on, for do's bodies over the limit; keyed by server, as
	// tests copy an env to give it another.
	bases map[*httpapi.Server]string
}

// adminToken is the admin API's token in the tests.
const adminToken = "t0k"

// newEnv returns the API over a real otp.Service and number pool registry on a real store, with a fake
// dialer and the admin API on. Apps: "demo" (key demo; pools demo, +44207946XXXX, and live, made through
// the admin API), "other" (key other-key; +33612XXXXXX) and "short" (key short-key; +683XXXX).
func newEnv(t testing.TB) *env { return newEnvWith(t, adminToken) }

// newEnvWith is newEnv with the given admin token ("": admin API off).
func newEnvWith(t testing.TB, token string) *env {
	t.Helper()
	db := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{db: db, dial: &fakes.Dialer{}, bases: map[*httpapi.Server]string{}, clock: testclock.New(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC))}
	pool := func(name, numbers string) numberpool.Pool {
		return numberpool.Pool{Name: name, Entries: []numberpool.Entry{{Numbers: []string{numbers}, Enabled: true}}}.WithDefaults()
	}
	var err error
	e.pools, err = numberpool.NewRegistry(t.Context(), numberpool.Config{
		Apps:         map[string][]string{"demo": {"demo", "live"}, "other": {"other"}, "short": {"short"}},
		CodeLength:   4,
		MinCodeSpace: 10000,
		Key:          db.Key(),
		Now:          e.clock.Now,
		Log:          log,
	}, db,
		[]numberpool.Pool{
			pool("demo", "+44207946XXXX"),
			pool("other", "+33612XXXXXX"),
			// +683 (Niue) numbers are 7 digits long: fine for 4-digit codes, too short for 7-digit ones.
			pool("short", "+683XXXX"),
		})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() { e.pools.Close() }) // before the store closes: cleanups run last first
	demoApp := apptest.App("demo", demoKey, demoSecret)
	demoApp.Pools = []string{"demo", "live"}
	e.apps = apptest.Open(t, db, apps.Defaults{CodeLength: 4, TTL: 5 * time.Minute, MaxAttempts: 5}, e.pools, demoApp, apptest.App("other", otherKey, otherSecret), apptest.App("short", shortKey, shortSecret))
	e.svc = otp.New(otp.Config{Apps: e.apps, Dialer: e.dial, Now: e.clock.Now, Key: db.Key()}, db.Verifications(), e.pools, log)
	e.totp, err = totp.New(totp.Config{Settings: totp.DefaultSettings, Store: db, Apps: e.apps, Key: db.Key(), Now: e.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if e.accounts, err = console.LoadAccounts(t.Context(), db, bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	e.sessions = console.NewSessions(0, 0, e.clock.Now)
	e.audit = console.NewAudit(db, e.clock.Now)
	e.metrics = metrics.New()
	e.live = metrics.NewSampler(e.metrics, e.clock.Now)
	e.trunks = newFakeTrunks()
	e.hooks = &fakeTries{}
	e.srv = httpapi.New(httpapi.Config{
		Console:      e.consoleConfig(),
		MaxBodyBytes: maxBodyBytes,
		Apps:         e.apps,
		// The tests send many bad credentials from one address; TestAuthFailureThrottle tests the limit.
		AuthFailures: limits.Rule{Scope: "auth_failures", Limit: 1_000_000, Window: time.Minute},
		AdminToken:   token,
		Pools:        e.pools,
		Backup:       snapshots(db),
		TOTP:         e.totp,
	}, e.svc, log)
	return e
}

// consoleConfig is the console over e's accounts, sessions and audit log, and its data.
func (e *env) consoleConfig() httpapi.ConsoleConfig {
	return httpapi.ConsoleConfig{Files: consoleFiles, Accounts: e.accounts, Sessions: e.sessions, Audit: e.audit, Data: httpapi.ConsoleData{
		Live: e.live, Verifications: e.svc, Trunks: e.trunks, Webhooks: e.hooks,
		Version: "test", Node: "node-1", Started: time.Now().Add(-time.Hour), Channels: []string{"flashcall", "sms"},
	}}
}

// snapshots is the admin backup route's source for db, as the engine wires it.
func snapshots(db *store.DB) func() (httpapi.Snapshot, error) {
	return func() (httpapi.Snapshot, error) { return db.Snapshot() }
}

// auth sets a request's credentials.
type auth func(r *http.Request)

func xAPI(key, secret string) auth {
	return func(r *http.Request) {
		r.Header.Set("X-API-Key", key)
		r.Header.Set("X-API-Secret", secret)
	}
}

func basic(key, secret string) auth {
	return func(r *http.Request) { r.SetBasicAuth(key, secret) }
}

func bearer(token string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

var demo = xAPI(demoKey, demoSecret)

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t testing.TB, method, path, body string, a auth) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	if len(body) > maxBodyBytes {
		// fasthttp refuses such a body itself, an answer app.Test drops for the error it comes with.
		base, ok := e.bases[e.srv]
		if !ok {
			base = e.listen(t)
			e.bases[e.srv] = base
		}
		return e.doHTTP(t, base, method, path, body, a)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if a != nil {
		a(req)
	}
	res, err := e.srv.Handler().Test(req, 10000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{res.StatusCode, res.Header, b}
}

// listen serves the API on a socket of its own, for what app.Test cannot show: fasthttp answers a body over
// the limit itself, and app.Test drops that answer for the error it comes with.
func (e *env) listen(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := e.srv.Shutdown(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// doHTTP is do over a real socket.
func (e *env) doHTTP(t testing.TB, base, method, path, body string, a auth) response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a != nil {
		a(req)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{res.StatusCode, res.Header, b}
}

func sendBody(appid, to string) string {
	return fmt.Sprintf(`{"appid":%q,"recipient":%q,"channel":"flashcall"}`, appid, to)
}

func verifyBody(appid, id, code string) string {
	return fmt.Sprintf(`{"appid":%q,"verification_id":%q,"otp_code":%q}`, appid, id, code)
}

// send sends a call for demo and returns the verification ID and the CLI the dialer got.
func (e *env) send(t testing.TB) (string, string) {
	t.Helper()
	res := e.do(t, "POST", "/otp/send", sendBody("demo", recipient), demo)
	if res.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", res.status, res.body)
	}
	var v struct {
		ID string `json:"verification_id"`
	}
	if err := json.Unmarshal(res.body, &v); err != nil {
		t.Fatalf("send: %v: %s", err, res.body)
	}
	return v.ID, e.dial.Last(t).CLI
}

func codeOf(cli string) string { return cli[len(cli)-4:] }

func wrongCode(code string) string {
	last := code[len(code)-1]
	return code[:len(code)-1] + string('0'+(last-'0'+1)%10)
}

// wantError checks an error answer: its status, and a body {"error":{"code":code,"message":...}} with
// nothing else at the top. It returns the error object.
func wantError(t testing.TB, res response, status int, code string) map[string]json.RawMessage {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d, want %d; body %s", res.status, status, res.body)
	}
	inner, gotCode := errorShape(t, res)
	if gotCode != code {
		t.Errorf("error.code = %q, want %q; body %s", gotCode, code, res.body)
	}
	return inner
}

// errorShape checks that res is a JSON body {"error":{"code":...,"message":...}} with nothing else at the
// top, and returns the error object and its code.
func errorShape(t testing.TB, res response) (map[string]json.RawMessage, string) {
	t.Helper()
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &top); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %s", err, res.body)
	}
	if len(top) != 1 || top["error"] == nil {
		t.Fatalf("error body %s: want only an \"error\" object", res.body)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		t.Fatalf("error is not an object: %v: %s", err, res.body)
	}
	var gotCode, msg string
	if err := json.Unmarshal(inner["code"], &gotCode); err != nil {
		t.Errorf("error.code is not a string: %s", res.body)
	}
	if err := json.Unmarshal(inner["message"], &msg); err != nil || msg == "" {
		t.Errorf("error.message is not a non-empty string: %s", res.body)
	}
	return inner, gotCode
}

func TestSendAccepted(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "POST", "/otp/send", `{"appid":"demo","recipient":"14155552671","channel":"flashcall","reference":"order-42"}`, demo)
	if res.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", res.status, res.body)
	}
	cli := e.dial.Last(t).CLI
	if strings.Contains(string(res.body), strings.TrimPrefix(cli, "+")) {
		t.Errorf("send answer holds the whole CLI %s: %s", cli, res.body)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatalf("body: %v: %s", err, res.body)
	}
	for _, k := range []string{"verification_id", "appid", "recipient", "channel", "status", "code_length",
		"cli_prefix", "attempts", "attempts_remaining", "created_at", "expires_at", "call"} {
		if _, ok := got[k]; !ok {
			t.Errorf("field %q missing: %s", k, res.body)
		}
	}
	for k := range got {
		if strings.Contains(k, "mac") || k == "code" || k == "otp_code" || k == "cli" || k == "max_attempts" {
			t.Errorf("field %q must not be shown: %s", k, res.body)
		}
	}
	var call map[string]json.RawMessage
	if err := json.Unmarshal(got["call"], &call); err != nil {
		t.Fatalf("call: %v: %s", err, res.body)
	}
	for _, k := range []string{"state", "sip_code", "reason", "trunk", "post_dial_delay_ms", "started_at", "ended_at"} {
		if _, ok := call[k]; !ok {
			t.Errorf("field call.%q missing: %s", k, res.body)
		}
	}

	var v struct {
		ID                string `json:"verification_id"`
		AppID             string `json:"appid"`
		Recipient         string `json:"recipient"`
		Channel           string `json:"channel"`
		Status            string `json:"status"`
		CodeLength        int    `json:"code_length"`
		CLIPrefix         string `json:"cli_prefix"`
		Reference         string `json:"reference"`
		Attempts          int    `json:"attempts"`
		AttemptsRemaining int    `json:"attempts_remaining"`
		CreatedAt         string `json:"created_at"`
		ExpiresAt         string `json:"expires_at"`
		Call              struct {
			State           string  `json:"state"`
			PostDialDelayMS *int64  `json:"post_dial_delay_ms"`
			StartedAt       *string `json:"started_at"`
		} `json:"call"`
	}
	if err := json.Unmarshal(res.body, &v); err != nil {
		t.Fatalf("body: %v: %s", err, res.body)
	}
	if !strings.HasPrefix(v.ID, "otp_") || v.ID != e.dial.Last(t).ID {
		t.Errorf("verification_id = %q, dialer got %q", v.ID, e.dial.Last(t).ID)
	}
	if v.AppID != "demo" || v.Recipient != recipient || v.Channel != "flashcall" || v.Status != "pending" || v.Reference != "order-42" {
		t.Errorf("got %+v", v)
	}
	if v.CodeLength != 4 || v.CLIPrefix != "+44207946" || v.CLIPrefix != cli[:len(cli)-4] {
		t.Errorf("code_length %d cli_prefix %q for CLI %s", v.CodeLength, v.CLIPrefix, cli)
	}
	if v.Attempts != 0 || v.AttemptsRemaining != 5 {
		t.Errorf("attempts %d remaining %d, want 0 5", v.Attempts, v.AttemptsRemaining)
	}
	created, err1 := time.Parse(time.RFC3339, v.CreatedAt)
	expires, err2 := time.Parse(time.RFC3339, v.ExpiresAt)
	if err1 != nil || err2 != nil || !strings.HasSuffix(v.CreatedAt, "Z") || !strings.HasSuffix(v.ExpiresAt, "Z") {
		t.Errorf("created_at %q expires_at %q: want RFC 3339 in UTC", v.CreatedAt, v.ExpiresAt)
	}
	if !created.Equal(e.clock.Now()) || expires.Sub(created) != 5*time.Minute {
		t.Errorf("created_at %v expires_at %v, want %v and 5m later", created, expires, e.clock.Now())
	}
	if v.Call.State != "queued" || v.Call.PostDialDelayMS != nil || v.Call.StartedAt != nil {
		t.Errorf("call = %+v, want queued, null delay and start", v.Call)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		auth   auth
		appid  string
		status int
		code   string
	}{
		{"x-api headers", xAPI(demoKey, demoSecret), "demo", http.StatusAccepted, ""},
		{"basic", basic(demoKey, demoSecret), "demo", http.StatusAccepted, ""},
		{"bearer base64", bearer(b64(demoKey + ":" + demoSecret)), "demo", http.StatusAccepted, ""},
		{"lowercase scheme", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+b64(demoKey+":"+demoSecret)) }, "demo", http.StatusAccepted, ""},
		{"other app's own key", xAPI(otherKey, otherSecret), "other", http.StatusAccepted, ""},
		{"none", nil, "demo", http.StatusUnauthorized, "unauthorized"},
		{"wrong secret", xAPI(demoKey, "nope"), "demo", http.StatusUnauthorized, "unauthorized"},
		{"key only", func(r *http.Request) { r.Header.Set("X-API-Key", demoKey) }, "demo", http.StatusUnauthorized, "unauthorized"},
		{"secret only", func(r *http.Request) { r.Header.Set("X-API-Secret", demoSecret) }, "demo", http.StatusUnauthorized, "unauthorized"},
		{"unknown key", xAPI("nobody", demoSecret), "demo", http.StatusUnauthorized, "unauthorized"},
		{"empty key and secret", xAPI("", ""), "demo", http.StatusUnauthorized, "unauthorized"},
		{"other app's secret", xAPI(demoKey, otherSecret), "demo", http.StatusUnauthorized, "unauthorized"},
		{"basic wrong secret", basic(demoKey, "nope"), "demo", http.StatusUnauthorized, "unauthorized"},
		{"basic empty", basic("", ""), "demo", http.StatusUnauthorized, "unauthorized"},
		{"bearer raw secret", bearer(demoSecret), "demo", http.StatusUnauthorized, "unauthorized"},
		{"bearer no colon", bearer(b64(demoKey + demoSecret)), "demo", http.StatusUnauthorized, "unauthorized"},
		{"bearer not base64", bearer("!!!"), "demo", http.StatusUnauthorized, "unauthorized"},
		{"bearer empty", bearer(""), "demo", http.StatusUnauthorized, "unauthorized"},
		{"unknown scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest "+b64(demoKey+":"+demoSecret)) }, "demo", http.StatusUnauthorized, "unauthorized"},
		{"appid of another app", xAPI(demoKey, demoSecret), "other", http.StatusForbidden, "forbidden"},
		{"appid of another app via basic", basic(otherKey, otherSecret), "demo", http.StatusForbidden, "forbidden"},
		{"appid unknown", xAPI(demoKey, demoSecret), "nobody", http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.do(t, "POST", "/otp/send", sendBody(tt.appid, recipient), tt.auth)
			if tt.code == "" {
				if res.status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
				}
				if e.dial.Offered() != 1 {
					t.Errorf("dialer was offered %d calls, want 1", e.dial.Offered())
				}
				return
			}
			wantError(t, res, tt.status, tt.code)
			if n := e.dial.Offered(); n != 0 {
				t.Errorf("dialer was offered %d calls, want none", n)
			}
		})
	}
}

func TestAuthEveryRoute(t *testing.T) {
	e := newEnv(t)
	id, cli := e.send(t)
	tests := []struct {
		method, path, body string
	}{
		{"POST", "/otp/send", sendBody("demo", recipient)},
		{"POST", "/otp/verify", verifyBody("demo", id, codeOf(cli))},
		{"GET", "/otp/status?verification_id=" + id, ""},
		{"GET", "/otp/nope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := e.dial.Offered()
			wantError(t, e.do(t, tt.method, tt.path, tt.body, nil), http.StatusUnauthorized, "unauthorized")
			wantError(t, e.do(t, tt.method, tt.path, tt.body, xAPI(demoKey, "nope")), http.StatusUnauthorized, "unauthorized")
			if e.dial.Offered() != before {
				t.Errorf("dialer was offered a call")
			}
		})
	}
	// The unauthenticated verify did not use the code up.
	res := e.do(t, "POST", "/otp/verify", verifyBody("demo", id, codeOf(cli)), demo)
	if res.status != http.StatusOK {
		t.Errorf("verify after unauthenticated tries: %d %s", res.status, res.body)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed json", `{"appid":"demo",`, 400, "invalid_request"},
		{"empty body", ``, 400, "invalid_request"},
		{"not an object", `["demo"]`, 400, "invalid_request"},
		{"null", `null`, 400, "invalid_request"},
		{"string", `"demo"`, 400, "invalid_request"},
		{"unknown field", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","to":"+14155552671"}`, 400, "invalid_request"},
		{"missing appid", `{"recipient":"+14155552671","channel":"flashcall"}`, 400, "invalid_request"},
		{"missing recipient", `{"appid":"demo","channel":"flashcall"}`, 400, "invalid_request"},
		{"missing channel", `{"appid":"demo","recipient":"+14155552671"}`, 400, "invalid_request"},
		{"null recipient", `{"appid":"demo","recipient":null,"channel":"flashcall"}`, 400, "invalid_request"},
		{"trailing object", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}{}`, 400, "invalid_request"},
		{"trailing garbage", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"} x`, 400, "invalid_request"},
		{"wrong type", `{"appid":"demo","recipient":14155552671,"channel":"flashcall"}`, 400, "invalid_request"},
		{"code_length as string", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","code_length":"4"}`, 400, "invalid_request"},
		{"code_length 3", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","code_length":3}`, 400, "invalid_request"},
		{"channel sms", `{"appid":"demo","recipient":"+14155552671","channel":"sms"}`, 400, "invalid_request"},
		{"unknown pool", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","from":"nope"}`, 400, "invalid_request"},
		{"reference with CRLF", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","reference":"a\r\nX: y"}`, 400, "invalid_request"},
		{"recipient too short", sendBody("demo", "+1555"), 400, "invalid_recipient"},
		{"recipient letters", sendBody("demo", "abc"), 400, "invalid_recipient"},
		{"recipient empty", sendBody("demo", ""), 400, "invalid_recipient"},
		{"recipient with CRLF", sendBody("demo", "+14155552671\r\nX: y"), 400, "invalid_recipient"},
		{"recipient sip uri", sendBody("demo", "sip:+14155552671@evil.example"), 400, "invalid_recipient"},
		{"premium rate", sendBody("demo", "+19005550123"), 403, "destination_blocked"},
		{"appid of another app", sendBody("other", recipient), 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			wantError(t, e.do(t, "POST", "/otp/send", tt.body, demo), tt.status, tt.code)
			if n := e.dial.Offered(); n != 0 {
				t.Errorf("dialer was offered %d calls, want none", n)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	// pad pads a JSON body with trailing spaces to n bytes.
	pad := func(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }
	tests := []struct {
		name   string
		path   string
		body   string
		auth   auth
		status int
		code   string // "" for 202
	}{
		{"send at the limit", "/otp/send", pad(sendBody("demo", recipient), maxBodyBytes), demo, 202, ""},
		{"send over the limit", "/otp/send", pad(sendBody("demo", recipient), maxBodyBytes+1), demo, 413, "request_too_large"},
		{"send far over the limit", "/otp/send", pad(sendBody("demo", recipient), 10*maxBodyBytes), demo, 413, "request_too_large"},
		{"send over the limit without credentials", "/otp/send", pad(sendBody("demo", recipient), maxBodyBytes+1), nil, 413, "request_too_large"},
		{"verify over the limit", "/otp/verify", pad(verifyBody("demo", "otp_"+ulid.Make().String(), "1234"), maxBodyBytes+1), demo, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.doHTTP(t, e.listen(t), "POST", tt.path, tt.body, tt.auth)
			if tt.code == "" {
				if res.status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
				}
				return
			}
			wantError(t, res, tt.status, tt.code)
			if n := e.dial.Offered(); n != 0 {
				t.Errorf("dialer was offered %d calls, want none", n)
			}
		})
	}
}

// A code_length the app's numbers are too short for is the caller's mistake, not the server's.
func TestSendCodeLengthLongerThanPool(t *testing.T) {
	tests := []struct {
		name       string
		codeLength int
		status     int
		code       string
	}{
		{"4 digits", 4, 202, ""},
		{"6 digits", 6, 202, ""},
		{"7 digits: the whole number", 7, 400, "invalid_request"},
		{"8 digits: longer than the number", 8, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			body := fmt.Sprintf(`{"appid":"short","recipient":%q,"channel":"flashcall","code_length":%d}`, recipient, tt.codeLength)
			res := e.do(t, "POST", "/otp/send", body, xAPI(shortKey, shortSecret))
			if tt.code == "" {
				if res.status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
				}
				return
			}
			wantError(t, res, tt.status, tt.code)
			if n := e.dial.Offered(); n != 0 {
				t.Errorf("dialer was offered %d calls, want none", n)
			}
		})
	}
}

func TestSendUnavailable(t *testing.T) {
	for _, refusal := range []error{dialer.ErrQueueFull, dialer.ErrStopped} {
		t.Run(refusal.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.dial.Refuse(fault.Errorf(fault.Unavailable, "no capacity for the call: %w", refusal)) // as the dialer refuses
			res := e.do(t, "POST", "/otp/send", sendBody("demo", recipient), demo)
			wantError(t, res, http.StatusServiceUnavailable, "unavailable")
			if ra := res.header.Get("Retry-After"); ra == "" {
				t.Errorf("503 without Retry-After")
			}
			if e.dial.Offered() != 1 {
				t.Errorf("dialer was offered %d calls, want 1", e.dial.Offered())
			}
		})
	}
}

func TestVerify(t *testing.T) {
	type step struct {
		body      func(id, cli string) string
		auth      auth
		status    int
		code      string // error code; "" for 200 approved
		remaining int    // error.attempts_remaining for invalid_code
	}
	right := func(id, cli string) string { return verifyBody("demo", id, codeOf(cli)) }
	wrong := func(id, cli string) string { return verifyBody("demo", id, wrongCode(codeOf(cli))) }
	ok := step{body: right, status: 200}
	bad := func(remaining int) step {
		return step{body: wrong, status: 422, code: "invalid_code", remaining: remaining}
	}
	tests := []struct {
		name    string
		prepare func(e *env, id string)
		steps   []step
	}{
		{name: "right code", steps: []step{ok}},
		{name: "right code twice", steps: []step{ok, {body: right, status: 409, code: "already_verified"}}},
		{name: "wrong then right", steps: []step{bad(4), ok}},
		{name: "whole CLI", steps: []step{{body: func(id, cli string) string { return verifyBody("demo", id, cli) }, status: 200}}},
		{name: "whole CLI without plus", steps: []step{{body: func(id, cli string) string { return verifyBody("demo", id, cli[1:]) }, status: 200}}},
		// The call log may show the CLI nationally: its last digits are what count.
		{name: "whole CLI in national form", steps: []step{{body: func(id, cli string) string { return verifyBody("demo", id, "0"+cli[3:]) }, status: 200}}},
		{name: "attempts used up", steps: []step{
			bad(4), bad(3), bad(2), bad(1),
			{body: wrong, status: 410, code: "max_attempts_reached"},
			{body: right, status: 410, code: "max_attempts_reached"},
		}},
		{name: "expired", prepare: func(e *env, _ string) { e.clock.Advance(5 * time.Minute) }, steps: []step{
			{body: right, status: 410, code: "expired"},
		}},
		{name: "undeliverable", prepare: func(e *env, id string) {
			e.svc.CallEnded(id, "phone", "+442079460000", call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486})
		}, steps: []step{{body: right, status: 410, code: "undeliverable"}}},
		{name: "unknown id", steps: []step{
			{body: func(_, cli string) string { return verifyBody("demo", "otp_"+ulid.Make().String(), codeOf(cli)) }, status: 404, code: "not_found"},
			ok,
		}},
		{name: "another app's verification", steps: []step{
			{body: func(id, cli string) string { return verifyBody("other", id, codeOf(cli)) }, auth: xAPI(otherKey, otherSecret), status: 404, code: "not_found"},
			ok,
		}},
		{name: "appid of another app", steps: []step{
			{body: func(id, cli string) string { return verifyBody("other", id, codeOf(cli)) }, status: 403, code: "forbidden"},
			ok,
		}},
		{name: "malformed id", steps: []step{
			{body: func(id, cli string) string { return verifyBody("demo", id[:len(id)-1], codeOf(cli)) }, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string { return verifyBody("demo", id+"\r\nX: y", codeOf(cli)) }, status: 400, code: "invalid_request"},
			ok,
		}},
		{name: "bad otp_code", steps: []step{
			{body: func(id, _ string) string { return verifyBody("demo", id, "abcd") }, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string { return verifyBody("demo", id, codeOf(cli)+"\r\n") }, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string { return verifyBody("demo", id, codeOf(cli)[:3]) }, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string {
				return fmt.Sprintf(`{"appid":"demo","verification_id":%q,"otp_code":%s}`, id, codeOf(cli))
			}, status: 400, code: "invalid_request"},
			ok,
		}},
		{name: "missing fields", steps: []step{
			{body: func(id, _ string) string { return fmt.Sprintf(`{"appid":"demo","verification_id":%q}`, id) }, status: 400, code: "invalid_request"},
			{body: func(_, cli string) string { return fmt.Sprintf(`{"appid":"demo","otp_code":%q}`, codeOf(cli)) }, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string {
				return fmt.Sprintf(`{"verification_id":%q,"otp_code":%q}`, id, codeOf(cli))
			}, status: 400, code: "invalid_request"},
			{body: func(id, cli string) string {
				return fmt.Sprintf(`{"appid":"demo","verification_id":%q,"otp_code":%q,"extra":1}`, id, codeOf(cli))
			}, status: 400, code: "invalid_request"},
			{body: func(string, string) string { return `{"appid":"demo",` }, status: 400, code: "invalid_request"},
			ok,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			id, cli := e.send(t)
			if tt.prepare != nil {
				tt.prepare(e, id)
			}
			for i, s := range tt.steps {
				a := s.auth
				if a == nil {
					a = demo
				}
				res := e.do(t, "POST", "/otp/verify", s.body(id, cli), a)
				if s.code == "" {
					if res.status != s.status {
						t.Fatalf("step %d: status = %d, want %d; body %s", i, res.status, s.status, res.body)
					}
					var v struct {
						ID     string `json:"verification_id"`
						Status string `json:"status"`
					}
					if err := json.Unmarshal(res.body, &v); err != nil || v.ID != id || v.Status != "approved" {
						t.Errorf("step %d: body %s, want %s approved", i, res.body, id)
					}
					continue
				}
				inner := wantError(t, res, s.status, s.code)
				raw, has := inner["attempts_remaining"]
				if s.code == "invalid_code" {
					var left int
					if err := json.Unmarshal(raw, &left); !has || err != nil || left != s.remaining {
						t.Errorf("step %d: error.attempts_remaining = %s, want %d", i, raw, s.remaining)
					}
				} else if has {
					t.Errorf("step %d: %s carries attempts_remaining: %s", i, s.code, res.body)
				}
			}
			if n := e.dial.Offered(); n != 1 {
				t.Errorf("dialer was offered %d calls, want only the send's", n)
			}
		})
	}
}

// The attempt that uses up the attempts answers 410 and fails the verification: status and list say failed,
// and status=pending no longer lists it.
func TestVerifyAttemptsUsedUpIsFailed(t *testing.T) {
	e := newEnv(t)
	id, cli := e.send(t)
	for i := 1; i <= 5; i++ {
		res := e.do(t, "POST", "/otp/verify", verifyBody("demo", id, wrongCode(codeOf(cli))), demo)
		if i < 5 {
			wantError(t, res, 422, "invalid_code")
		} else {
			wantError(t, res, 410, "max_attempts_reached")
		}
	}
	var st struct {
		Status            string `json:"status"`
		AttemptsRemaining int    `json:"attempts_remaining"`
	}
	res := e.do(t, "GET", "/otp/status?verification_id="+id, "", demo)
	if err := json.Unmarshal(res.body, &st); err != nil || res.status != 200 || st.Status != "failed" || st.AttemptsRemaining != 0 {
		t.Errorf("status: %d %s, want failed with 0 attempts left", res.status, res.body)
	}
	type item struct {
		ID     string `json:"verification_id"`
		Status string `json:"status"`
	}
	for status, want := range map[string]bool{"failed": true, "pending": false, "": true} {
		res := e.do(t, "GET", "/otp/list?status="+status, "", demo)
		var page struct{ Items []item }
		if err := json.Unmarshal(res.body, &page); err != nil || res.status != 200 {
			t.Fatalf("list status=%s: %d %s", status, res.status, res.body)
		}
		found := slices.Contains(page.Items, item{id, "failed"})
		if found != want {
			t.Errorf("list status=%q lists it failed: %v, want %v (%s)", status, found, want, res.body)
		}
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	id, _ := e.send(t)
	otherID := func() string {
		res := e.do(t, "POST", "/otp/send", sendBody("other", "+33612345678"), xAPI(otherKey, otherSecret))
		if res.status != http.StatusAccepted {
			t.Fatalf("other send: %d %s", res.status, res.body)
		}
		var v struct {
			ID string `json:"verification_id"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil {
			t.Fatal(err)
		}
		return v.ID
	}()
	e.svc.CallProgress(id, "phone", call.StateDialing, e.clock.Now())
	e.svc.CallProgress(id, "phone", call.StateRinging, e.clock.Now().Add(41*time.Millisecond))

	tests := []struct {
		name   string
		path   string
		auth   auth
		status int
		code   string
	}{
		{"own", "/otp/status?verification_id=" + id, demo, 200, ""},
		{"own with appid", "/otp/status?appid=demo&verification_id=" + id, demo, 200, ""},
		{"basic auth", "/otp/status?verification_id=" + id, basic(demoKey, demoSecret), 200, ""},
		{"another app's", "/otp/status?verification_id=" + otherID, demo, 404, "not_found"},
		{"seen by the other app", "/otp/status?verification_id=" + id, xAPI(otherKey, otherSecret), 404, "not_found"},
		{"appid of another app", "/otp/status?appid=other&verification_id=" + otherID, demo, 403, "forbidden"},
		{"unknown", "/otp/status?verification_id=otp_" + ulid.Make().String(), demo, 404, "not_found"},
		{"malformed id", "/otp/status?verification_id=otp_123", demo, 400, "invalid_request"},
		{"missing id", "/otp/status", demo, 400, "invalid_request"},
		{"no credentials", "/otp/status?verification_id=" + id, nil, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, "GET", tt.path, "", tt.auth)
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				return
			}
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
			var v struct {
				ID     string `json:"verification_id"`
				Status string `json:"status"`
				Call   struct {
					State           string `json:"state"`
					Trunk           string `json:"trunk"`
					PostDialDelayMS *int64 `json:"post_dial_delay_ms"`
					StartedAt       string `json:"started_at"`
				} `json:"call"`
			}
			if err := json.Unmarshal(res.body, &v); err != nil {
				t.Fatalf("body: %v: %s", err, res.body)
			}
			if v.ID != id || v.Status != "pending" || v.Call.State != "ringing" || v.Call.Trunk != "phone" ||
				v.Call.PostDialDelayMS == nil || *v.Call.PostDialDelayMS != 41 || v.Call.StartedAt == "" {
				t.Errorf("got %s", res.body)
			}
		})
	}
	if n := e.dial.Offered(); n != 2 {
		t.Errorf("dialer was offered %d calls, want only the two sends'", n)
	}
}

func TestOtherRoutes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path string
		auth               auth
		status             int
		code               string // "" for a non-error answer
	}{
		{"healthz", "GET", "/healthz", nil, 200, ""},
		{"readyz", "GET", "/readyz", nil, 200, ""},
		{"unknown route", "GET", "/nope", nil, 404, "not_found"},
		{"unknown route with credentials", "GET", "/nope", demo, 404, "not_found"},
		{"unknown otp route", "POST", "/otp/nope", demo, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.path, "", tt.auth)
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				return
			}
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
			var body struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil || body.Status != "ok" {
				t.Errorf("body %s, want {\"status\":\"ok\"}", res.body)
			}
		})
	}
	if n := e.dial.Offered(); n != 0 {
		t.Errorf("dialer was offered %d calls, want none", n)
	}
}

// Errors of the HTTP layer (requests fasthttp could not read) keep the error shape and never say internal.
func TestHTTPLayerErrors(t *testing.T) {
	s := httpapi.New(httpapi.Config{MaxBodyBytes: 1024}, nil, nil)
	for _, tc := range []struct {
		err    error
		status int
	}{
		{fiber.ErrRequestTimeout, 408},
		{fiber.ErrRequestHeaderFieldsTooLarge, 431},
		{fiber.ErrBadGateway, 400},
		{fiber.NewError(400, "malformed request line"), 400},
	} {
		app := fiber.New(fiber.Config{ErrorHandler: s.Handler().Config().ErrorHandler})
		app.Get("/", func(*fiber.Ctx) error { return tc.err })
		res, err := app.Test(httptest.NewRequest("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.status || body.Error.Code != "invalid_request" || body.Error.Message == "" {
			t.Errorf("%v: %d %+v", tc.err, res.StatusCode, body)
		}
	}
}

// A store that fails under every call (here closed, as bbolt is after it lost its map of the file on a
// failing disk): reads and writes answer 503 unavailable with Retry-After, never 500.
func TestStoreFailureIsUnavailable(t *testing.T) {
	e := newEnv(t)
	id, cli := e.send(t)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/otp/send", sendBody("demo", "+14155550123")},
		{"POST", "/otp/verify", verifyBody("demo", id, codeOf(cli))},
		{"GET", "/otp/status?verification_id=" + id, ""},
		{"GET", "/otp/list", ""},
		{"GET", "/otp/reports", ""},
	} {
		res := e.do(t, r.method, r.path, r.body, demo)
		wantError(t, res, http.StatusServiceUnavailable, "unavailable")
		if res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", r.method, r.path)
		}
	}
}

// A body field of the wrong JSON type is refused 400 invalid_request with a message naming the field and the
// type it wants in JSON's words, never a Go type.
func TestDecodeErrorsNameFieldAndType(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, body string
		auth                     auth
		want                     string // the message starts with this
	}{
		{"otp_code a number", "POST", "/otp/verify", `{"appid":"demo","verification_id":"otp_x","otp_code":5831}`, demo, "otp_code: want a string of digits, got number"},
		{"recipient a number", "POST", "/otp/send", `{"appid":"demo","recipient":14155552671,"channel":"flashcall"}`, demo, "recipient: want a string, got number"},
		{"code_length a string", "POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","code_length":"4"}`, demo, "code_length: want an integer, got string"},
		{"code_length a fraction", "POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","code_length":4.5}`, demo, "code_length: want an integer, got number"},
		{"body an array", "POST", "/otp/send", `["demo"]`, demo, "body: want a JSON object, got array"},
		{"body a string", "POST", "/otp/verify", `"demo"`, demo, "body: want a JSON object, got string"},
		{"entries an object", "POST", "/admin/pools", `{"name":"x","entries":{}}`, admin, "entries: want an array, got object"},
		{"enabled a string", "POST", "/admin/pools/demo/entries", `{"numbers":["+44207947XXXX"],"enabled":"yes"}`, admin, "enabled: want true or false, got string"},
		{"cooldown a number", "POST", "/admin/pools", `{"name":"x","entries":[{"numbers":["+44207947XXXX"]}],"cooldown":60}`, admin, `cooldown: want a duration like "30s" or "24h", got number`},
		{"cooldown not a duration", "POST", "/admin/pools", `{"name":"x","entries":[{"numbers":["+44207947XXXX"]}],"cooldown":"an hour"}`, admin, `cooldown: want a duration like "30s" or "24h", got "an hour"`},
		{"max_attempts a string", "POST", "/admin/apps", `{"id":"x","max_attempts":"3"}`, admin, "max_attempts: want an integer, got string"},
		{"rate limit a string", "POST", "/admin/apps", `{"id":"x","rate_limits":{"recipient":{"limit":"1","window":"1m"}}}`, admin, "rate_limits.limit: want an integer, got string"}, // encoding/json leaves map keys out of the path
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := wantError(t, e.do(t, tt.method, tt.path, tt.body, tt.auth), 400, "invalid_request")
			var msg string
			_ = json.Unmarshal(inner["message"], &msg)
			if !strings.HasPrefix(msg, tt.want) {
				t.Errorf("message %q, want it to start with %q", msg, tt.want)
			}
			for _, goish := range []string{"Go ", "json:", "struct", "map[", "of type", "float", "httpapi.", "numberpool.", "apps."} {
				if strings.Contains(msg, goish) && !strings.Contains(tt.want, goish) {
					t.Errorf("message %q names Go's %q", msg, goish)
				}
			}
		})
	}
}

// A route asked with a method it does not take answers 405 method_not_allowed with an Allow header listing
// the methods it does take (HEAD with GET: fiber serves HEAD for every GET route).
func TestWrongMethod(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		auth         auth
		allow        string
	}{
		{"GET", "/otp/send", demo, "POST"},
		{"PUT", "/otp/status", demo, "GET, HEAD"},
		{"DELETE", "/healthz", nil, "GET, HEAD"},
		{"POST", "/openapi.json", nil, "GET, HEAD"},
		{"POST", "/admin/apps/demo", admin, "GET, HEAD, DELETE, PATCH"},
		{"PATCH", "/admin/pools/demo", admin, "GET, HEAD, PUT, DELETE"},
		{"GET", "/admin/pools/demo/entries/e1", admin, "DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := e.do(t, tt.method, tt.path, "", tt.auth)
			wantError(t, res, http.StatusMethodNotAllowed, "method_not_allowed")
			if got := res.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
	// Without credentials, the /otp and /admin routes say 401 first: what they take is for clients only.
	wantError(t, e.do(t, "GET", "/otp/send", "", nil), http.StatusUnauthorized, "unauthorized")
	// A path no method takes is still 404.
	wantError(t, e.do(t, "GET", "/otp/nope", "", demo), http.StatusNotFound, "not_found")
}
