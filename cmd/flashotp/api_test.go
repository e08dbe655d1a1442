package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nyaruka/phonenumbers"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/dialer"
	"flashotp/internal/fakes"
	"flashotp/internal/testwait"
	"flashotp/numberpool"
	"flashotp/sip"
)

// phoneLog keeps the lines the built-in phone prints.
type phoneLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *phoneLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	return len(b), nil
}

var missedLine = regexp.MustCompile(`missed call from (\+[0-9]+) to (\+[0-9]+)`)

// clis returns the CLIs of the missed calls to recipient, in order.
func (p *phoneLog) clis(recipient string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if m := missedLine.FindStringSubmatch(l); m != nil && m[2] == recipient {
			out = append(out, m[1])
		}
	}
	return out
}

// phoneConfig is testConfig with the built-in phone (ring mode) as the one trunk.
func phoneConfig(t *testing.T) configs.Config {
	cfg := testConfig(t, "127.0.0.1:0")
	cfg.Trunks = []dialer.Trunk{{Name: "phone", Address: "127.0.0.1:0", Transport: "udp"}}
	cfg.Phone = sip.PhoneSettings{Enabled: true, Listen: "127.0.0.1:0", Mode: sip.PhoneRing}
	return cfg
}

func startPhoneMain(t *testing.T, cfg configs.Config) (client, *phoneLog) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	phone := &phoneLog{}
	m := NewMain(cfg, quietLog())
	m.PhoneOut = phone
	startRun(t, m)
	return client{t, "http://" + m.HTTPAddr}, phone
}

// lastCLI waits for the call of verification id to end and returns the CLI the phone saw last for
// recipient.
func (c client) lastCLI(phone *phoneLog, id, recipient string) string {
	c.t.Helper()
	c.waitCall(id)
	clis := phone.clis(recipient)
	if len(clis) == 0 {
		c.t.Fatalf("the phone saw no call to %s", recipient)
	}
	return clis[len(clis)-1]
}

func retryAfter(t *testing.T, a answer) int {
	t.Helper()
	n, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q on %d %s", a.header.Get("Retry-After"), a.status, a.raw)
	}
	return n
}

// The sixth send to one recipient within 10 minutes is refused with Retry-After; a resend within the
// cooldown is too soon; after a resend, the old code is dead and the new one works.
func TestSendLimitAndResend(t *testing.T) {
	cfg := phoneConfig(t)
	cfg.Apps[0].ResendCooldown = apps.Duration(time.Second)
	c, phone := startPhoneMain(t, cfg)

	const limited = "+14155550123"
	for i := 1; i <= 5; i++ {
		if a := c.send(limited); a.status != 202 {
			t.Fatalf("send %d: %d %s", i, a.status, a.raw)
		}
	}
	a := c.send(limited)
	if a.status != 429 || errCode(a) != "rate_limited" {
		t.Fatalf("sixth send: %d %s", a.status, a.raw)
	}
	if s := retryAfter(t, a); s < 590 || s > 600 {
		t.Errorf("Retry-After %d s, want about 600 (the first send leaves the 10-minute window)", s)
	}
	limits := c.do("GET", "/otp/rate-limits?recipient="+limited, "")
	found := false
	for _, item := range limits.body["items"].([]any) {
		l := item.(map[string]any)
		if l["scope"] == "recipient" {
			found = l["used"] == 5.0 && l["limit"] == 5.0 && l["window"] == "10m0s" && l["key"] == limited
		}
	}
	if !found {
		t.Errorf("rate-limits does not show the recipient limit full: %s", limits.raw)
	}

	sent := c.send(recipient)
	id := sent.body["verification_id"].(string)
	oldCLI := c.lastCLI(phone, id, recipient)
	resend := func() answer {
		return c.do("POST", "/otp/resend", fmt.Sprintf(`{"appid":"demo","verification_id":%q}`, id))
	}
	if a := resend(); a.status != 429 || errCode(a) != "resend_too_soon" || retryAfter(t, a) != 1 {
		t.Fatalf("resend within the cooldown: %d %s (Retry-After %s)", a.status, a.raw, a.header.Get("Retry-After"))
	}
	time.Sleep(1100 * time.Millisecond) // resend_cooldown (1 s) runs on the engine's real clock: wait it out
	if a := resend(); a.status != 202 || a.body["verification_id"] != id || a.body["resends"] != 1.0 {
		t.Fatalf("resend: %d %s", a.status, a.raw)
	}
	newCLI := c.lastCLI(phone, id, recipient)
	if len(phone.clis(recipient)) != 2 {
		t.Fatalf("the phone saw %d calls, want 2", len(phone.clis(recipient)))
	}
	if oldCLI[len(oldCLI)-4:] != newCLI[len(newCLI)-4:] {
		if a := c.verify(id, oldCLI[len(oldCLI)-4:]); a.status != 422 || errCode(a) != "invalid_code" {
			t.Fatalf("old code after the resend: %d %s", a.status, a.raw)
		}
	}
	if a := c.verify(id, newCLI[len(newCLI)-4:]); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("new code: %d %s", a.status, a.raw)
	}
}

// A premium-rate number and a number outside allowed_countries are blocked before any call; so is a send the
// app's pre-send hook denies.
func TestFraudGuards(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		fmt.Fprintf(w, `{"allow": %v}`, body["recipient"] != "+14155550199")
	}))
	t.Cleanup(hook.Close)
	cfg := phoneConfig(t)
	cfg.Apps[0].AllowedCountries = []string{"GB", "US"}
	cfg.Apps[0].PreSendHook = &apps.Hook{URL: hook.URL, Timeout: apps.Duration(time.Second)}
	c, phone := startPhoneMain(t, cfg)

	premium := phonenumbers.Format(phonenumbers.GetExampleNumberForType("GB", phonenumbers.PREMIUM_RATE), phonenumbers.E164)
	for _, tc := range []struct{ recipient, message string }{
		{premium, "premium-rate"},
		{"+33612345678", "country FR is not in this app's allowed_countries"},
		{"+14155550199", "pre-send hook denied"},
	} {
		a := c.send(tc.recipient)
		if a.status != 403 || errCode(a) != "destination_blocked" || !strings.Contains(a.raw, tc.message) {
			t.Errorf("send to %s: %d %s, want 403 destination_blocked naming %q", tc.recipient, a.status, a.raw, tc.message)
		}
	}
	if a := c.send(recipient); a.status != 202 {
		t.Fatalf("allowed send: %d %s", a.status, a.raw)
	} else {
		c.waitCall(a.body["verification_id"].(string))
	}
	phone.mu.Lock()
	defer phone.mu.Unlock()
	if len(phone.lines) != 1 || !strings.Contains(phone.lines[0], recipient) {
		t.Errorf("phone saw %q, want only the allowed call", phone.lines)
	}
}

// Each auth method of SPEC section 4 reaches the routes; bad credentials get 401, and an address that keeps
// failing gets 429 before its credentials are looked at.
func TestAuthMethods(t *testing.T) {
	cfg := phoneConfig(t)
	cfg.HTTP.AdminToken = "t0k"
	c, _ := startPhoneMain(t, cfg)
	sign := func(claims jwt.MapClaims, secret string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	good := jwt.MapClaims{"iss": "demo", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	b64 := base64.StdEncoding.EncodeToString([]byte("demo:demo-secret"))
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"basic", "Basic " + b64, 200},
		{"bearer key:secret", "Bearer " + b64, 200},
		{"bearer jwt", "Bearer " + sign(good, "demo-secret"), 200},
		{"jwt wrong secret", "Bearer " + sign(good, "not-the-secret"), 401},
		{"jwt exp over 1h ahead", "Bearer " + sign(jwt.MapClaims{"iss": "demo", "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()}, "demo-secret"), 401},
		{"jwt expired", "Bearer " + sign(jwt.MapClaims{"iss": "demo", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}, "demo-secret"), 401},
		{"jwt without iat", "Bearer " + sign(jwt.MapClaims{"iss": "demo", "exp": now.Add(time.Minute).Unix()}, "demo-secret"), 401},
		{"jwt none alg", "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"demo","exp":9999999999}`)) + ".", 401},
		{"basic wrong secret", "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:nope")), 401},
	} {
		// X-API-Key empty: the Authorization header decides.
		a := c.do("GET", "/otp/list?limit=1", "", "X-API-Key", "", "X-API-Secret", "", "Authorization", tc.header)
		if a.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, a.status, a.raw, tc.want)
		}
	}
	if a := c.send(recipient); a.status != 202 {
		t.Fatalf("X-API-Key send: %d %s", a.status, a.raw)
	}
	var last answer
	for range 20 {
		last = c.do("GET", "/otp/list", "", "X-API-Secret", "wrong")
	}
	if last.status != 429 || errCode(last) != "rate_limited" {
		t.Fatalf("after 25 failures: %d %s, want 429", last.status, last.raw)
	}
	if a := c.do("GET", "/otp/list", ""); a.status != 429 {
		t.Fatalf("right credentials from a throttled address: %d, want 429", a.status)
	}
	if a := c.do("GET", "/admin/apps", "", "Authorization", "Bearer t0k"); a.status != 429 {
		t.Fatalf("the admin API from a throttled address: %d, want 429", a.status)
	}
}

// webhookReceiver records the webhooks it gets while up, checking each signature.
type webhookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	up     bool
	events map[string][]string // verification → events, in the order received
	seen   map[string]bool     // delivery IDs
	tries  int
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if !r.up {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	ts, sig, _ := strings.Cut(strings.TrimPrefix(req.Header.Get("X-Flashotp-Signature"), "t="), ",v1=")
	m := hmac.New(sha256.New, []byte(r.secret))
	m.Write([]byte(ts + "." + string(body)))
	if want := hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(sig), []byte(want)) {
		r.t.Errorf("bad signature %q on %s", req.Header.Get("X-Flashotp-Signature"), body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if sent, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sent, 0)) > time.Minute {
		r.t.Errorf("signature timestamp %q is not now", ts)
	}
	id := req.Header.Get("X-Flashotp-Delivery")
	if !r.seen[id] {
		r.seen[id] = true
		var hook struct {
			Event        string `json:"event"`
			Verification struct {
				ID string `json:"verification_id"`
			} `json:"verification"`
		}
		if err := json.Unmarshal(body, &hook); err != nil {
			r.t.Errorf("webhook body: %v: %s", err, body)
		}
		r.events[hook.Verification.ID] = append(r.events[hook.Verification.ID], hook.Event)
	}
}

func (r *webhookReceiver) setUp(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up = up
}

// A webhook receiver that is down still gets every event, signed, in order per verification, once it is
// back. The outage lasts FLASHOTP_WEBHOOK_OUTAGE (default 2s; docs/benchmarks.md records a one-minute run).
func TestWebhooksSurviveOutage(t *testing.T) {
	outage := 2 * time.Second
	if d, err := time.ParseDuration(os.Getenv("FLASHOTP_WEBHOOK_OUTAGE")); err == nil {
		outage = d
	}
	recv := &webhookReceiver{t: t, secret: "whsec-test-0123456789", events: map[string][]string{}, seen: map[string]bool{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	cfg := phoneConfig(t)
	cfg.Apps[0].WebhookURL = srv.URL + "/hooks"
	cfg.Apps[0].WebhookSecret = recv.secret
	cfg.Apps[0].MaxAttempts = 2
	cfg.Webhooks.RetryMin, cfg.Webhooks.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	c, phone := startPhoneMain(t, cfg)

	start := time.Now()
	approved := c.send(recipient).body["verification_id"].(string)
	locked := c.send("+447400123456").body["verification_id"].(string)
	cli := c.lastCLI(phone, approved, recipient)
	c.lastCLI(phone, locked, "+447400123456")
	if a := c.verify(approved, cli); a.status != 200 {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}
	for range 2 {
		c.verify(locked, "00000000")
	}
	time.Sleep(time.Until(start.Add(outage))) // the outage itself: the receiver stays down that long
	recv.setUp(true)

	want := map[string][]string{approved: {"call_missed", "approved"}, locked: {"call_missed", "max_attempts_reached"}}
	var got string
	var tries int
	delivered := testwait.Until(20*time.Second, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		got, tries = fmt.Sprint(recv.events), recv.tries
		return got == fmt.Sprint(want)
	})
	if !delivered {
		t.Fatalf("webhooks got %s, want %s", got, fmt.Sprint(want))
	}
	if tries <= 4 {
		t.Errorf("%d tries: the receiver was never tried while down", tries)
	}
}

// GET /otp/reports counts what the phone actually saw.
func TestReportsAgreeWithCalls(t *testing.T) {
	c, phone := startPhoneMain(t, phoneConfig(t))
	recipients := []string{"+14155552671", "+447400123456", "+33612345678"}
	var ids []string
	for _, r := range recipients {
		ids = append(ids, c.send(r).body["verification_id"].(string))
	}
	for i, r := range recipients[:2] {
		cli := c.lastCLI(phone, ids[i], r)
		if a := c.verify(ids[i], cli); a.status != 200 {
			t.Fatalf("verify: %d %s", a.status, a.raw)
		}
	}
	c.waitCall(ids[2])
	phone.mu.Lock()
	calls := len(phone.lines)
	phone.mu.Unlock()
	if calls != 3 {
		t.Fatalf("phone saw %d calls, want 3", calls)
	}
	rows := func(groupBy string) map[string]map[string]any {
		a := c.do("GET", "/otp/reports?group_by="+groupBy, "")
		if a.status != 200 || a.body["group_by"] != groupBy {
			t.Fatalf("reports by %s: %d %s", groupBy, a.status, a.raw)
		}
		out := map[string]map[string]any{}
		for _, r := range a.body["rows"].([]any) {
			row := r.(map[string]any)
			out[row["key"].(string)] = row
		}
		return out
	}
	day := rows("day")[time.Now().UTC().Format(time.DateOnly)]
	if day["sent"] != 3.0 || day["missed"] != 3.0 || day["answered"] != 0.0 || day["failed"] != 0.0 || day["approved"] != 2.0 ||
		day["conversion_rate"] != 0.6667 || day["p50_post_dial_delay_ms"] == nil {
		t.Errorf("today's row: %v", day)
	}
	byCountry := rows("country")
	for country, approved := range map[string]float64{"US": 1, "GB": 1, "FR": 0} {
		if r := byCountry[country]; r["sent"] != 1.0 || r["missed"] != 1.0 || r["approved"] != approved {
			t.Errorf("country %s: %v", country, r)
		}
	}
	if r := rows("trunk")["phone"]; r["sent"] != 3.0 || r["missed"] != 3.0 || r["approved"] != 2.0 {
		t.Errorf("trunk phone: %v", r)
	}
	if r := rows("channel")["flashcall"]; r["sent"] != 3.0 {
		t.Errorf("channel flashcall: %v", r)
	}
}

// With http.tls_cert and http.tls_key the API serves HTTPS, and only HTTPS.
func TestAPIOverTLS(t *testing.T) {
	ca, cert, key := writeTestPKI(t, t.TempDir(), "api.test")
	cfg := phoneConfig(t)
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = cert, key
	c, _ := startPhoneMain(t, cfg)
	addr := strings.TrimPrefix(c.base, "http://")
	pemCA, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "api.test"}}}
	req, _ := http.NewRequest("POST", "https://"+addr+"/otp/send", strings.NewReader(`{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`))
	req.Header.Set("X-API-Key", "demo")
	req.Header.Set("X-API-Secret", "demo-secret")
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTPS send: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 202 || res.TLS == nil {
		t.Fatalf("HTTPS send: %d", res.StatusCode)
	}
	// Plain HTTP to the same port gets no API answer.
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatalf("plain HTTP answered on the TLS port: %s", body)
		}
	}
}

// The engine's logs, at every level it has, never hold a code, a secret or a whole caller ID: a send, wrong
// and right codes, a resend, an app made and its key rotated, signed webhooks, all logged, then grepped.
func TestLogsHoldNoSecrets(t *testing.T) {
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(hooks.Close)
	cfg := phoneConfig(t)
	cfg.HTTP.AdminToken = "admin-token-0123456789"
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+4420XXXXXXXX"}}}
	cfg.Apps[0].CodeLength = 8 // eight digits: nothing else in a log line looks like one
	cfg.Apps[0].ResendCooldown = apps.Duration(500 * time.Millisecond)
	cfg.Apps[0].WebhookURL, cfg.Apps[0].WebhookSecret = hooks.URL, "webhook-secret-0123456789"
	cfg.Webhooks.RetryMin, cfg.Webhooks.RetryMax = 20*time.Millisecond, 50*time.Millisecond
	logs := &fakes.Buffer{}
	phone := &phoneLog{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	m.PhoneOut = phone
	startRun(t, m)
	c := client{t, "http://" + m.HTTPAddr}

	id := c.send(recipient).body["verification_id"].(string)
	first := c.lastCLI(phone, id, recipient)
	c.verify(id, "00000000")
	time.Sleep(600 * time.Millisecond) // resend_cooldown (500 ms) runs on the engine's real clock: wait it out
	if a := c.do("POST", "/otp/resend", fmt.Sprintf(`{"appid":"demo","verification_id":%q}`, id)); a.status != 202 {
		t.Fatalf("resend: %d %s", a.status, a.raw)
	}
	second := c.lastCLI(phone, id, recipient)
	if a := c.verify(id, second[len(second)-8:]); a.status != 200 {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}
	admin := []string{"Authorization", "Bearer " + cfg.HTTP.AdminToken}
	created := c.do("POST", "/admin/apps", `{"id":"shop","pools":["demo"],"code_length":8}`, admin...)
	key := created.body["key"].(map[string]any)
	rotated := c.do("POST", "/admin/apps/shop/keys/"+key["key"].(string)+"/rotate", "", admin...)
	testwait.For(t, 10*time.Second, "a webhook tried and retried", func() bool {
		return regexp.MustCompile(`msg="webhook not delivered" .* tries=2 `).MatchString(logs.String())
	})

	out := logs.String()
	if !strings.Contains(out, "webhook not delivered") || !strings.Contains(out, "verify") {
		t.Fatalf("the flow did not log what it should have:\n%s", out)
	}
	secrets := map[string]string{
		"first CLI": first, "second CLI": second, "first code": first[len(first)-8:], "second code": second[len(second)-8:],
		"API secret": "demo-secret", "admin token": cfg.HTTP.AdminToken, "webhook secret": cfg.Apps[0].WebhookSecret,
		"created secret": key["secret"].(string), "created webhook secret": created.body["webhook_secret"].(string),
		"rotated secret": rotated.body["secret"].(string),
	}
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the logs hold the %s %q", what, s)
		}
	}
}
