package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oathCode is the code of counter (a TOTP time step) of secret, from the independent HOTP of the totp
// package's tests (Python's hmac and hashlib).
func oathCode(t *testing.T, secret string, counter int64) string {
	t.Helper()
	out, err := exec.Command("python3", "../../totp/testdata/oath.py", secret, "6", strconv.FormatInt(counter, 10)).Output()
	if err != nil {
		t.Fatalf("oath.py: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Authenticator codes through the engine: enroll over HTTP, a code of an independent implementation
// approves once, its replay is refused, also after a restart; the database file never holds the secret.
func TestTOTPThroughTheEngine(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:9")
	cfg.TOTP.Issuer = "Flash Demo"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, quietLog())
	stop := runUntilStopped(t, m)
	c := client{t, "http://" + m.HTTPAddr}

	for _, bad := range []string{
		`{"appid":"demo","user":""}`,
		`{"appid":"demo","user":"a\u202eb"}`,
		`{"appid":"demo","user":"alice","digits":7}`,
		`{"appid":"demo","user":"alice","secret":"JBSWY3DPEHPK3PXP"}`,
	} {
		if a := c.do("POST", "/otp/totp/enroll", bad); a.status != 400 {
			t.Errorf("enroll %s: %d %s, want 400", bad, a.status, a.raw)
		}
	}
	if a := c.do("POST", "/otp/totp/verify", `{"appid":"demo","user":"alice","otp_code":"123456"}`); a.status != 404 {
		t.Errorf("verify before enrolling: %d %s, want 404", a.status, a.raw)
	}
	a := c.do("POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice@example.com"}`)
	if a.status != 201 {
		t.Fatalf("enroll: %d %s", a.status, a.raw)
	}
	secret, uri := a.body["secret"].(string), a.body["otpauth_uri"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Flash%20Demo:alice@example.com?") || !strings.Contains(uri, "issuer=Flash%20Demo") {
		t.Errorf("otpauth_uri %s", uri)
	}
	if a := c.do("POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice@example.com"}`); a.status != 409 {
		t.Errorf("enrolling again: %d %s, want 409", a.status, a.raw)
	}
	// A code of a step that is not about to end, so that the replay after the restart is still in the window.
	for time.Now().Unix()%30 > 20 {
		time.Sleep(time.Second)
	}
	step := time.Now().Unix() / 30
	code := oathCode(t, secret, step)
	verify := `{"appid":"demo","user":"alice@example.com","otp_code":"` + code + `"}`
	if a := c.do("POST", "/otp/totp/verify", verify); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}
	if a := c.do("POST", "/otp/totp/verify", verify); a.status != 409 || !strings.Contains(a.raw, "already_verified") {
		t.Errorf("replay: %d %s, want 409 already_verified", a.status, a.raw)
	}
	if a := c.do("POST", "/otp/totp/verify", `{"appid":"demo","user":"alice@example.com","otp_code":"`+oathCode(t, secret, step+2)+`"}`); a.status != 422 {
		t.Errorf("a code two steps ahead: %d %s, want 422", a.status, a.raw)
	}
	if err := stop(); err != nil {
		t.Errorf("engine stop: %v", err)
	}

	file, err := os.ReadFile(cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, []byte(secret)) {
		t.Error("the database file holds the secret")
	}

	// After a restart the accepted step is still refused, the next one approves.
	m = NewMain(cfg, quietLog())
	startRun(t, m)
	c = client{t, "http://" + m.HTTPAddr}
	if a := c.do("POST", "/otp/totp/verify", verify); a.status != 409 {
		t.Errorf("replay after a restart: %d %s, want 409", a.status, a.raw)
	}
	if a := c.do("POST", "/otp/totp/verify", `{"appid":"demo","user":"alice@example.com","otp_code":"`+oathCode(t, secret, step+1)+`"}`); a.status != 200 {
		t.Errorf("the next step's code after a restart: %d %s, want 200", a.status, a.raw)
	}
}
