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
// validate again after a round trip. Seeds: testdata/fuzz/FuzzAppSettings.
func FuzzAppSettings(f *testing.F) {
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

// A bearer token of any shape is refused cleanly unless it is a JWT signed with the key's secret. Seeds:
// testdata/fuzz/FuzzAuthenticateJWT (their clock is this one: 2026-01-01), and good.
func FuzzAuthenticateJWT(f *testing.F) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// The one token that must be accepted is signed here, from the secret and the clock below and above: a
	// copy in testdata would stop being valid, unnoticed, if either changed.
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "demo", "iat": clock.Now().Unix(), "exp": clock.Now().Add(time.Minute).Unix()}).SignedString([]byte("demo-secret"))
	f.Add(good)
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
