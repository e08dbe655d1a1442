package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"flashotp/httpapi"
	"flashotp/limits"
)

// serveWithProxies serves e's API on a socket of its own with the trusted proxies given and a failed-auth
// limit of 3, and returns its base URL.
func (e *env) serveWithProxies(t *testing.T, trusted ...string) string {
	t.Helper()
	var prefixes []netip.Prefix
	for _, p := range trusted {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	e.srv = httpapi.New(httpapi.Config{
		MaxBodyBytes: maxBodyBytes, Apps: e.apps, Pools: e.pools, AdminToken: adminToken,
		AuthFailures:   limits.Rule{Scope: "auth_failures", Limit: 3, Window: time.Minute},
		TrustedProxies: prefixes,
	}, e.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return e.listen(t)
}

// withXFF is demo's credentials with X-Forwarded-For lines.
func withXFF(a auth, xff ...string) auth {
	return func(r *http.Request) {
		if a != nil {
			a(r)
		}
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
	}
}

// clientSeen makes a wrong verify and returns the remote_ip of its attempt (GET /otp/attempts) and the key
// of the client rate limit (GET /otp/rate-limits), both asked with the same X-Forwarded-For.
func (e *env) clientSeen(t *testing.T, base string, a auth) (remoteIP, limitKey string) {
	t.Helper()
	id, cli := e.send(t)
	if res := e.doHTTP(t, base, "POST", "/otp/verify", verifyBody("demo", id, wrongCode(codeOf(cli))), a); res.status != 422 {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	res := e.doHTTP(t, base, "GET", "/otp/attempts?appid=demo&verification_id="+id, "", a)
	var attempts struct {
		Items []struct {
			RemoteIP string `json:"remote_ip"`
		} `json:"items"`
	}
	if err := json.Unmarshal(res.body, &attempts); err != nil || len(attempts.Items) != 1 {
		t.Fatalf("attempts: %d %s", res.status, res.body)
	}
	res = e.doHTTP(t, base, "GET", "/otp/rate-limits?appid=demo", "", a)
	var limits struct {
		Items []struct{ Scope, Key string } `json:"items"`
	}
	if err := json.Unmarshal(res.body, &limits); err != nil {
		t.Fatalf("rate-limits: %d %s", res.status, res.body)
	}
	for _, l := range limits.Items {
		if l.Scope == "client" {
			limitKey = l.Key
		}
	}
	return attempts.Items[0].RemoteIP, limitKey
}

// X-Forwarded-For decides the client's address only when the TCP peer is a trusted proxy, and then it is
// the right-most address that is not a trusted proxy; from anyone else the header is ignored.
func TestClientIPBehindProxy(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		xff     []string
		want    string
	}{
		{"no proxies trusted: header ignored", nil, []string{"203.0.113.7"}, "127.0.0.1"},
		{"peer not trusted: header ignored", []string{"10.0.0.0/8"}, []string{"203.0.113.7"}, "127.0.0.1"},
		{"trusted peer: its client", []string{"127.0.0.1/32"}, []string{"203.0.113.7"}, "203.0.113.7"},
		{"trusted peer, no header: the peer", []string{"127.0.0.0/8"}, nil, "127.0.0.1"},
		{"the client's own entries are skipped", []string{"127.0.0.1/32"}, []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},
		{"a chain of trusted proxies", []string{"127.0.0.1/32", "10.0.0.0/8"}, []string{"198.51.100.1, 203.0.113.7, 10.1.2.3", "10.9.9.9"}, "203.0.113.7"},
		{"an address with a port", []string{"127.0.0.1/32"}, []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"garbage from the proxy: the proxy", []string{"127.0.0.1/32"}, []string{"203.0.113.7, unknown"}, "127.0.0.1"},
		{"all trusted: the left-most", []string{"127.0.0.1/32", "10.0.0.0/8"}, []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			base := e.serveWithProxies(t, tt.trusted...)
			ip, key := e.clientSeen(t, base, withXFF(demo, tt.xff...))
			if ip != tt.want {
				t.Errorf("attempt remote_ip = %q, want %q", ip, tt.want)
			}
			if key != demoKey+"/"+tt.want {
				t.Errorf("client rate limit key = %q, want %q", key, demoKey+"/"+tt.want)
			}
		})
	}
}

// The failed-authentication throttle counts per client address: a spoofed X-Forwarded-For from an untrusted
// peer does not get a client out of it, while clients behind a trusted proxy are counted apart.
func TestAuthThrottleBehindProxy(t *testing.T) {
	wrong := xAPI(demoKey, "wrong-secret")
	fail := func(e *env, base, xff string) int {
		return e.doHTTP(t, base, "POST", "/otp/send", sendBody("demo", recipient), withXFF(wrong, xff)).status
	}
	t.Run("untrusted peer", func(t *testing.T) {
		e := newEnv(t)
		base := e.serveWithProxies(t, "10.0.0.0/8")
		for i := range 3 {
			if s := fail(e, base, netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}).String()); s != 401 {
				t.Fatalf("failure %d: %d, want 401", i+1, s)
			}
		}
		if s := fail(e, base, "203.0.113.99"); s != 429 {
			t.Errorf("fourth failure with a new X-Forwarded-For: %d, want 429", s)
		}
		if res := e.doHTTP(t, base, "POST", "/otp/send", sendBody("demo", recipient), withXFF(demo, "198.51.100.1")); res.status != 429 {
			t.Errorf("right credentials from the throttled address: %d, want 429", res.status)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		e := newEnv(t)
		base := e.serveWithProxies(t, "127.0.0.1/32")
		for i := range 3 {
			if s := fail(e, base, "203.0.113.1"); s != 401 {
				t.Fatalf("failure %d: %d, want 401", i+1, s)
			}
		}
		if s := fail(e, base, "203.0.113.1"); s != 429 {
			t.Errorf("fourth failure of one client: %d, want 429", s)
		}
		if res := e.doHTTP(t, base, "POST", "/otp/send", sendBody("demo", recipient), withXFF(demo, "203.0.113.2")); res.status != 202 {
			t.Errorf("another client behind the proxy: %d %s, want 202", res.status, res.body)
		}
	})
}
