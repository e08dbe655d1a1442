package httpapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"flashotp/httpapi"
	"flashotp/internal/fakes"
	"flashotp/internal/metricstest"
	"flashotp/internal/testwait"
	"flashotp/limits"
	"flashotp/metrics"
)

// observed is newEnv's engine behind a server with metrics and a log to read, and authFailures as the
// failed-auth limit.
func observed(t *testing.T, authFailures int) (*env, *metrics.Metrics, *fakes.Buffer) {
	e := newEnv(t)
	m, logs := metrics.New(), &fakes.Buffer{}
	e.srv = httpapi.New(httpapi.Config{
		MaxBodyBytes: maxBodyBytes, Apps: e.apps, AdminToken: adminToken, Pools: e.pools, Metrics: m,
		AuthFailures: limits.Rule{Scope: "auth_failures", Limit: authFailures, Window: time.Minute},
	}, e.svc, slog.New(slog.NewTextHandler(logs, nil)))
	return e, m, logs
}

func authLines(logs string) []string {
	var out []string
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `msg="auth failed"`) {
			out = append(out, line)
		}
	}
	return out
}

// Every refused credential gets the same 401 unauthorized; the log line (one) and
// flashotp_auth_failures_total say why, naming the key when it exists and the claim at fault, and never
// hold the secret, the token or its signature. The throttle's refusal is counted and logged as throttled.
func TestAuthFailureReasons(t *testing.T) {
	e, m, logs := observed(t, 1_000_000)
	revoked, err := e.apps.CreateKey(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.apps.RevokeKey(t.Context(), "demo", revoked.Key); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(claims jwt.MapClaims, secret string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const wrongSecret = "wrong-secret-0123"
	noIat := sign(jwt.MapClaims{"iss": demoKey, "exp": now.Add(time.Minute).Unix()}, demoSecret)
	expired := sign(jwt.MapClaims{"iss": demoKey, "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}, demoSecret)
	ahead := sign(jwt.MapClaims{"iss": demoKey, "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()}, demoSecret)
	forged := sign(jwt.MapClaims{"iss": demoKey, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, wrongSecret)
	digest := b64(demoKey + ":" + demoSecret)
	tests := []struct {
		name, path string
		auth       auth
		reason     string
		logged     []string // besides the reason
		secret     []string // never logged
	}{
		{"no credentials", "/otp/list", nil, "missing", nil, nil},
		{"secret only", "/otp/list", func(r *http.Request) { r.Header.Set("X-API-Secret", demoSecret) }, "missing", nil, []string{demoSecret}},
		{"basic not base64", "/otp/list", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!"+wrongSecret) }, "malformed", nil, []string{wrongSecret}},
		{"unknown scheme", "/otp/list", func(r *http.Request) { r.Header.Set("Authorization", "Digest "+digest) }, "malformed", nil, []string{digest, "Digest"}},
		{"unknown key", "/otp/list", xAPI(wrongSecret, demoSecret), "unknown_key", nil, []string{wrongSecret, demoSecret}},
		{"wrong secret", "/otp/list", xAPI(demoKey, wrongSecret), "wrong_secret", []string{"key=demo", "appid=demo"}, []string{wrongSecret}},
		{"wrong secret basic", "/otp/list", basic(demoKey, wrongSecret), "wrong_secret", []string{"key=demo"}, []string{wrongSecret, b64(demoKey + ":" + wrongSecret)}},
		{"revoked key", "/otp/list", xAPI(revoked.Key, revoked.Secret), "revoked_key", []string{"key=" + revoked.Key}, []string{revoked.Secret}},
		{"jwt expired", "/otp/list", bearer(expired), "expired", []string{"key=demo"}, strings.Split(expired, ".")},
		{"jwt without iat", "/otp/list", bearer(noIat), "missing_claim", []string{"claim=iat", "key=demo"}, strings.Split(noIat, ".")},
		{"jwt exp too far", "/otp/list", bearer(ahead), "invalid_claim", []string{"claim=exp"}, strings.Split(ahead, ".")},
		{"jwt bad signature", "/otp/list", bearer(forged), "bad_signature", []string{"key=demo"}, append(strings.Split(forged, "."), wrongSecret)},
		{"admin without token", "/admin/pools", nil, "missing", nil, nil},
		{"admin basic", "/admin/pools", basic("admin", adminToken), "malformed", nil, []string{adminToken}},
		{"admin wrong token", "/admin/pools", bearer(wrongSecret), "wrong_admin_token", []string{`route="GET /admin/pools"`}, []string{wrongSecret}},
	}
	first := map[string][]byte{} // by route family: /otp and /admin each have one 401
	count := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(authLines(logs.String()))
			res := e.do(t, "GET", tt.path, "", tt.auth)
			wantError(t, res, http.StatusUnauthorized, "unauthorized")
			family := tt.path[:strings.LastIndexByte(tt.path, '/')]
			if first[family] == nil {
				first[family] = res.body
			} else if !bytes.Equal(res.body, first[family]) {
				t.Errorf("body %s, want the same as every 401 of %s: %s", res.body, family, first[family])
			}
			count[tt.reason]++
			scrape := metricstest.Scrape(t, m)
			for reason, want := range count {
				if got := metricstest.Value(t, scrape, `flashotp_auth_failures_total{reason="`+reason+`"}`); got != want {
					t.Errorf("auth failures %s = %v, want %v", reason, got, want)
				}
			}
			lines := authLines(logs.String())[before:]
			if len(lines) != 1 {
				t.Fatalf("%d auth lines, want 1: %q", len(lines), lines)
			}
			for _, want := range append([]string{"level=WARN", "reason=" + tt.reason, "remote=", `route="GET ` + tt.path + `"`}, tt.logged...) {
				if !strings.Contains(lines[0], want) {
					t.Errorf("log line lacks %q: %s", want, lines[0])
				}
			}
			for _, s := range append(tt.secret, demoSecret, adminToken) {
				if strings.Contains(lines[0], s) {
					t.Errorf("log line holds %q: %s", s, lines[0])
				}
			}
		})
	}

	// The throttle: once an address has failed, it is refused before its credentials are read.
	e, m, logs = observed(t, 1)
	wantError(t, e.do(t, "GET", "/otp/list", "", xAPI(demoKey, wrongSecret)), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do(t, "GET", "/otp/list", "", demo), http.StatusTooManyRequests, "rate_limited")
	wantError(t, e.do(t, "GET", "/admin/pools", "", bearer(adminToken)), http.StatusTooManyRequests, "rate_limited")
	scrape := metricstest.Scrape(t, m)
	for series, want := range map[string]float64{
		`flashotp_auth_failures_total{reason="wrong_secret"}`: 1,
		`flashotp_auth_failures_total{reason="throttled"}`:    2,
		`flashotp_rate_limited_total{scope="auth_failures"}`:  2,
	} {
		if got := metricstest.Value(t, scrape, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if lines := authLines(logs.String()); len(lines) != 3 || !strings.Contains(lines[2], "reason=throttled") {
		t.Errorf("auth lines %q, want wrong_secret then throttled twice", lines)
	}
}

// A flood of bad credentials writes a bounded number of log lines; the metric counts every failure, and
// the lines written say how many were left out, so that lines plus the left out add up to the count.
func TestAuthFailureLogBounded(t *testing.T) {
	e, m, logs := observed(t, 1_000_000)
	suppressed := regexp.MustCompile(`suppressed=([0-9]+)`)
	start := time.Now()
	n := 0
	for ; n < 100_000; n++ {
		if n > 200 && suppressed.MatchString(logs.String()) {
			break
		}
		e.do(t, "GET", "/otp/list", "", xAPI(demoKey, "wrong"))
	}
	elapsed := time.Since(start)
	lines := authLines(logs.String())
	if max := 20 + 10*elapsed.Seconds() + 1; float64(len(lines)) > max {
		t.Errorf("%d lines for %d failures in %s, want at most %.0f", len(lines), n, elapsed, max)
	}
	left := 0
	for _, l := range lines {
		if sm := suppressed.FindStringSubmatch(l); sm != nil {
			k, _ := strconv.Atoi(sm[1])
			left += k
		}
	}
	if left == 0 {
		t.Fatalf("no line says how many were left out after %d failures: %q", n, lines)
	}
	got := metricstest.Value(t, metricstest.Scrape(t, m), `flashotp_auth_failures_total{reason="wrong_secret"}`)
	if got != float64(n) {
		t.Errorf("counted %v failures, want %d", got, n)
	}
	// Failures after the last line written are left out and not yet reported: at most the ones since.
	if logged := len(lines) + left; logged > n || n-logged > n/2 {
		t.Errorf("%d lines + %d left out, for %d failures", len(lines), left, n)
	}
	t.Logf("%d failures in %s: %d lines, %d left out", n, elapsed, len(lines), left)
}

// flashotp_http_requests_total counts each answer by its route pattern and status: a request refused on
// the way (authentication, body limit) under the route its path names, a path with no route as "other".
func TestHTTPRequestsCounted(t *testing.T) {
	e, m, _ := observed(t, 1_000_000)
	e.do(t, "POST", "/otp/send", sendBody("demo", recipient), demo)
	e.do(t, "POST", "/otp/send", sendBody("demo", recipient), nil)
	e.do(t, "POST", "/otp/send", `{"appid":"`+strings.Repeat("x", maxBodyBytes)+`"}`, demo)
	e.do(t, "GET", "/healthz", "", nil)
	e.do(t, "GET", "/nope/"+strings.Repeat("x", 20), "", nil)
	e.do(t, "GET", "/otp/nope", "", demo)
	e.do(t, "GET", "/otp/send", "", demo)
	e.do(t, "GET", "/admin/pools/demo/entries", "", bearer(adminToken))
	e.do(t, "GET", "/admin/pools/demo/entries", "", nil)
	scrape := metricstest.Scrape(t, m)
	for series, want := range map[string]float64{
		`flashotp_http_requests_total{route="/otp/send",status="202"}`:                  1,
		`flashotp_http_requests_total{route="/otp/send",status="401"}`:                  1,
		`flashotp_http_requests_total{route="/otp/send",status="413"}`:                  1,
		`flashotp_http_requests_total{route="/healthz",status="200"}`:                   1,
		`flashotp_http_requests_total{route="other",status="404"}`:                      2,
		`flashotp_http_requests_total{route="/admin/pools/:name/entries",status="200"}`: 1,
		`flashotp_http_requests_total{route="other",status="401"}`:                      1,
	} {
		if got := metricstest.Value(t, scrape, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(scrape, "nope") {
		t.Error("a path with no route is a label")
	}
}

// Requests the server cannot read (here: headers over fasthttp's buffer, 431) are logged at most logRate
// lines a second: a stranger decides how many it sends.
func TestUnreadRequestLogBounded(t *testing.T) {
	e, _, logs := observed(t, 1_000_000)
	addr := strings.TrimPrefix(e.listen(t), "http://")
	big := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	const requests = 200
	unreadable := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(big))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c) // the answer, then the close
		c.Close()
	}
	start := time.Now()
	for range requests {
		unreadable()
	}
	elapsed := time.Since(start)
	lines := strings.Count(logs.String(), `msg="request not read"`)
	if lines == 0 {
		t.Fatal("no line about the requests not read")
	}
	if max := 20 + 10*elapsed.Seconds() + 1; float64(lines) > max {
		t.Errorf("%d lines for %d unreadable requests in %s, want at most %.0f", lines, requests, elapsed, max)
	}
	// How many were left out rides on the next line the limiter allows; a fast machine sends all the requests
	// before it allows one (20 at once, then 10 a second), so send more until it does.
	testwait.For(t, 5*time.Second, "a line saying how many were left out", func() bool {
		if strings.Contains(logs.String(), "suppressed=") {
			return true
		}
		unreadable()
		return false
	})
	t.Logf("%d unreadable requests in %s: %d lines", requests, elapsed, lines)
}
