package apps_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"flashotp/apps"
	"flashotp/internal/testclock"
)

// App settings from the admin API: any JSON either fails to decode, fails validation, or gives settings that
// validate again after a round trip.
func FuzzAppSettings(f *testing.F) {
	f.Add(`{"id":"shop","pools":["demo"],"ttl":"10m","rate_limits":{"recipient":{"limit":3,"window":"1m"}}}`)
	f.Add(`{"id":"x","pools":["p"],"allowed_countries":["GB"],"blocked_number_types":["voip"],"pre_send_hook":{"url":"http://h/x"}}`)
	f.Add(`{"ttl":"-5m","code_length":99}`)
	f.Fuzz(func(t *testing.T, body string) {
		var a apps.App
		if json.Unmarshal([]byte(body), &a) != nil {
			return
		}
		full := a.WithDefaults(defaults)
		if full.Validate() != nil {
			return
		}
		raw, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		var back apps.App
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("round trip of %s: %v", raw, err)
		}
		if err := back.WithDefaults(defaults).Validate(); err != nil {
			t.Fatalf("valid settings %s invalid after a round trip: %v", raw, err)
		}
	})
}

// A bearer token of any shape is refused cleanly unless it is a JWT signed with the key's secret.
func FuzzAuthenticateJWT(f *testing.F) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "demo", "iat": clock.Now().Unix(), "exp": clock.Now().Add(time.Minute).Unix()}).SignedString([]byte("demo-secret"))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJkZW1vIn0.")
	f.Add("a.b.c")
	r := open(f, filepath.Join(f.TempDir(), "flashotp.db"), clock, apps.ConfigApp{App: apps.App{ID: "demo", Pools: []string{"demo"}}, APIKey: "demo", APISecret: "demo-secret"})
	f.Fuzz(func(t *testing.T, token string) {
		app, key, err := r.AuthenticateJWT(token)
		if err == nil && (app != "demo" || key != "demo") {
			t.Fatalf("token %q accepted for %q/%q", token, app, key)
		}
		if err == nil && token != good {
			// Only the seed is signed with the secret; any other accepted token would be a forgery, unless it
			// re-encodes the same claims (base64 padding variants are refused by jwt's strict decoding).
			t.Fatalf("token %q accepted", token)
		}
	})
}
