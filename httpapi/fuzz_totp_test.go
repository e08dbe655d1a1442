package httpapi_test

import (
	"encoding/base32"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp/hotp"
)

// FuzzTOTPEnrollBody: a 201 enrolls a user whose name is 1 to 128 bytes of printable text, with a 160-bit
// secret, and is the only answer that changes the store.
func FuzzTOTPEnrollBody(f *testing.F) {
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, _ := e.checkBody(t, "POST", "/otp/totp/enroll", demo, body)
		if res.status >= 400 {
			return
		}
		var v struct {
			AppID  string `json:"appid"`
			User   string `json:"user"`
			Secret string `json:"secret"`
			Digits int    `json:"digits"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil || res.status != http.StatusCreated {
			t.Fatalf("%d with body %s: %v", res.status, res.body, err)
		}
		printable := utf8.ValidString(v.User) && !strings.ContainsFunc(v.User, func(r rune) bool { return !unicode.IsGraphic(r) })
		if v.AppID != "demo" || v.User == "" || len(v.User) > 128 || !printable || (v.Digits != 6 && v.Digits != 8) {
			t.Fatalf("201 for body %q: %s", body, res.body)
		}
		if key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(v.Secret); err != nil || len(key) != 20 {
			t.Fatalf("201 for body %q with secret %q (%v)", body, v.Secret, err)
		}
	})
}

// FuzzTOTPVerifyBody: "{code}" in a body becomes the current code of user alice (enrolled, TOTP, 6 digits);
// a 200 approves alice and is the only answer that changes the store. The clock moves a step each time.
func FuzzTOTPVerifyBody(f *testing.F) {
	e := newEnv(f)
	a := e.do(f, "POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice"}`, demo)
	if a.status != http.StatusCreated {
		f.Fatalf("enroll: %d %s", a.status, a.body)
	}
	var enrolled struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(a.body, &enrolled); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e.clock.Advance(30 * time.Second)
		code, err := hotp.GenerateCode(enrolled.Secret, uint64(e.clock.Now().Unix()/30))
		if err != nil {
			t.Fatal(err)
		}
		res, _ := e.checkBody(t, "POST", "/otp/totp/verify", demo, []byte(strings.ReplaceAll(string(body), "{code}", code)))
		if res.status >= 400 {
			return
		}
		var v struct {
			Status string `json:"status"`
			User   string `json:"user"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil || res.status != http.StatusOK || v.Status != "approved" || v.User != "alice" {
			t.Fatalf("verify answered %d %s for body %q (%v)", res.status, res.body, body, err)
		}
	})
}
