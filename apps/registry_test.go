package apps_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/internal/apptest"
	"flashotp/internal/testclock"
	"flashotp/store"
)

var defaults = apps.Defaults{CodeLength: 4, TTL: 5 * time.Minute, MaxAttempts: 5}

func open(t testing.TB, path string, clock *testclock.Clock, config ...apps.ConfigApp) *apps.Registry {
	t.Helper()
	db, err := store.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := apps.Open(t.Context(), db, db.Key(), defaults, config, apptest.AnyPools{}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeysAndSecrets(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "flashotp.db")
	cfgApp := apps.ConfigApp{App: apps.App{ID: "demo", Pools: []string{"demo"}}, APIKey: "demo", APISecret: "demo-secret-config"}
	r := open(t, path, clock, cfgApp)

	created, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"demo"}, AllowedCountries: []string{"GB"}})
	if err != nil {
		t.Fatal(err)
	}
	if app, err := r.Authenticate(created.Key.Key, created.Key.Secret); err != nil || app != "shop" {
		t.Fatalf("Authenticate = %q, %v", app, err)
	}
	if _, err := r.Authenticate(created.Key.Key, created.Key.Secret+"x"); !errors.Is(err, apps.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"demo"}}); !errors.Is(err, fault.Conflict) {
		t.Errorf("second create: %v", err)
	}
	if _, err := r.Create(t.Context(), apps.App{ID: "bad", Pools: []string{"demo"}, CodeLength: 9}); !errors.Is(err, fault.InvalidRequest) {
		t.Errorf("code_length 9: %v", err)
	}
	if _, err := r.Update(t.Context(), "demo", func(a *apps.App) error { a.MaxAttempts = 3; return nil }); !errors.Is(err, apps.ErrFromConfig) {
		t.Errorf("update a config app: %v", err)
	}
	token := func(iss, secret string, exp time.Duration, iat bool) string {
		claims := jwt.MapClaims{"iss": iss, "exp": clock.Now().Add(exp).Unix()}
		if iat {
			claims["iat"] = clock.Now().Unix()
		}
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		return s
	}
	if app, key, err := r.AuthenticateJWT(token(created.Key.Key, created.Key.Secret, time.Hour, true)); err != nil || app != "shop" || key != created.Key.Key {
		t.Fatalf("JWT: %q %q %v", app, key, err)
	}
	for name, tok := range map[string]string{
		"exp over 1h":  token(created.Key.Key, created.Key.Secret, 2*time.Hour, true),
		"no iat":       token(created.Key.Key, created.Key.Secret, time.Minute, false),
		"expired":      token(created.Key.Key, created.Key.Secret, -time.Minute, true),
		"wrong secret": token(created.Key.Key, "x", time.Minute, true),
		"unknown iss":  token("nobody", created.Key.Secret, time.Minute, true),
	} {
		if _, _, err := r.AuthenticateJWT(tok); !errors.Is(err, apps.ErrUnauthorized) {
			t.Errorf("%s: %v", name, err)
		}
	}

	rotated, err := r.RotateKey(t.Context(), "shop", created.Key.Key)
	if err != nil || rotated.Secret == created.Key.Secret {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	if _, err := r.Authenticate(created.Key.Key, created.Key.Secret); err == nil {
		t.Error("old secret works after rotate")
	}
	if _, err := r.RevokeKey(t.Context(), "demo", "demo"); !errors.Is(err, apps.ErrFromConfig) {
		t.Errorf("revoke a config key: %v", err)
	}

	// No secret is in the database file in plain text.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{rotated.Secret, created.Key.Secret, created.WebhookSecret, cfgApp.APISecret} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("secret %q stored in plain text", s)
		}
	}
}

// Apps and keys survive a restart; a config app no longer in the file goes, with its key.
func TestReopen(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "flashotp.db")
	db, err := store.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	old := apps.ConfigApp{App: apps.App{ID: "old", Pools: []string{"p"}}, APIKey: "old", APISecret: "old-secret"}
	r, err := apps.Open(t.Context(), db, db.Key(), defaults, []apps.ConfigApp{old}, apptest.AnyPools{}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	created, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := apps.Open(t.Context(), db, db.Key(), defaults, nil, apptest.AnyPools{}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if app, err := r2.Authenticate(created.Key.Key, created.Key.Secret); err != nil || app != "shop" {
		t.Errorf("after reopen: %q %v", app, err)
	}
	if _, ok := r2.Get("old"); ok {
		t.Error("config app dropped from the file is still there")
	}
	if _, err := r2.Authenticate("old", "old-secret"); err == nil {
		t.Error("its key still works")
	}
	if s, err := r2.WebhookSecret("shop"); err != nil || string(s) != created.WebhookSecret {
		t.Errorf("webhook secret after reopen: %q %v", s, err)
	}
}

// A refused update leaves the app as it was; a revoked key stays revoked.
func TestRefusedChangesKeepState(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := open(t, filepath.Join(t.TempDir(), "flashotp.db"), clock)
	created, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"p"}, PreSendHook: &apps.Hook{URL: "http://127.0.0.1:9/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Update(t.Context(), "shop", func(a *apps.App) error { a.PreSendHook.URL = "ftp://bad"; return nil }); !errors.Is(err, fault.InvalidRequest) {
		t.Fatalf("bad hook URL: %v", err)
	}
	if a, _ := r.Get("shop"); a.PreSendHook.URL != "http://127.0.0.1:9/ok" || a.PreSendHook.Timeout != apps.Duration(2*time.Second) {
		t.Errorf("hook after a refused update: %+v", a.PreSendHook)
	}
	if _, err := r.RevokeKey(t.Context(), "shop", created.Key.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RotateKey(t.Context(), "shop", created.Key.Key); !errors.Is(err, apps.ErrRevoked) {
		t.Errorf("rotating a revoked key: %v", err)
	}
}

// allowed_countries takes the codes a pool entry's countries take (numberpool.CheckCountry), with the same
// hint for the codes people write by mistake.
func TestAllowedCountries(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "flashotp.db"), testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	tests := []struct {
		countries []string
		want      string // in the error; "": created
	}{
		{[]string{"GB", "GG", "US"}, ""},
		{[]string{"GB", "UK"}, `allowed_countries[1]: want an ISO 3166-1 alpha-2 country code such as GB or US, got "UK" (UK is not the code of any country's numbers; did you mean GB?)`},
		{[]string{"ZZ"}, `allowed_countries[0]: want an ISO 3166-1 alpha-2 country code such as GB or US, got "ZZ"`},
	}
	for i, tt := range tests {
		_, err := r.Create(t.Context(), apps.App{ID: "shop" + strconv.Itoa(i), Pools: []string{"demo"}, AllowedCountries: tt.countries})
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, fault.InvalidRequest) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("allowed_countries %v: %v, want %q", tt.countries, err, tt.want)
		}
	}
}

// Each refused credential says why, for the log and the metrics, naming the key when it exists and the
// claim when one is at fault; no refusal holds the secret, the token or its signature.
func TestAuthReasons(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := open(t, filepath.Join(t.TempDir(), "flashotp.db"), clock)
	shop, err := r.Create(t.Context(), apps.App{ID: "shop", Pools: []string{"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := r.CreateKey(t.Context(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RevokeKey(t.Context(), "shop", revoked.Key); err != nil {
		t.Fatal(err)
	}
	key, secret := shop.Key.Key, shop.Key.Secret
	now := clock.Now()
	sign := func(claims jwt.MapClaims, secret string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(iss string, iat, exp time.Duration, more ...any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "iat": now.Add(iat).Unix(), "exp": now.Add(exp).Unix()}
		for i := 0; i+1 < len(more); i += 2 {
			if more[i+1] == nil {
				delete(c, more[i].(string))
			} else {
				c[more[i].(string)] = more[i+1]
			}
		}
		return c
	}
	good := claims(key, 0, time.Minute)
	tests := []struct {
		name         string
		key, secret  string // Authenticate, when token is empty
		token        string // AuthenticateJWT
		reason       error
		claim, named string // named: the key the refusal names
	}{
		{name: "no key", secret: secret, reason: apps.ErrNoCredentials},
		{name: "no secret", key: key, reason: apps.ErrNoCredentials, named: key},
		{name: "unknown key", key: "nobody", secret: secret, reason: apps.ErrUnknownKey},
		{name: "wrong secret", key: key, secret: secret + "x", reason: apps.ErrWrongSecret, named: key},
		{name: "revoked key", key: revoked.Key, secret: revoked.Secret, reason: apps.ErrRevokedKey, named: revoked.Key},
		{name: "jwt garbage", token: "%%%%.Y2xhaW1zcGFydA.c2lnbmF0dXJlcGFydA", reason: apps.ErrMalformed},
		{name: "jwt unknown iss", token: sign(claims("nobody", 0, time.Minute), secret), reason: apps.ErrUnknownKey},
		{name: "jwt revoked iss", token: sign(claims(revoked.Key, 0, time.Minute), revoked.Secret), reason: apps.ErrRevokedKey, named: revoked.Key},
		{name: "jwt wrong secret", token: sign(good, "not-the-secret"), reason: apps.ErrBadSignature, named: key},
		{name: "jwt alg none", token: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(sign(good, secret), ".")[1] + ".", reason: apps.ErrBadSignature},
		{name: "jwt expired", token: sign(claims(key, -time.Hour, -time.Minute), secret), reason: apps.ErrTokenExpired, named: key},
		{name: "jwt without iss", token: sign(claims(key, 0, time.Minute, "iss", nil), secret), reason: apps.ErrMissingClaim, claim: "iss"},
		{name: "jwt without iat", token: sign(claims(key, 0, time.Minute, "iat", nil), secret), reason: apps.ErrMissingClaim, claim: "iat", named: key},
		{name: "jwt without exp", token: sign(claims(key, 0, 0, "exp", nil), secret), reason: apps.ErrMissingClaim, claim: "exp", named: key},
		{name: "jwt exp over 1h ahead", token: sign(claims(key, 0, 2*time.Hour), secret), reason: apps.ErrInvalidClaim, claim: "exp", named: key},
		{name: "jwt iat ahead", token: sign(claims(key, 10*time.Minute, 20*time.Minute), secret), reason: apps.ErrInvalidClaim, claim: "iat", named: key},
		{name: "jwt nbf ahead", token: sign(claims(key, 0, 20*time.Minute, "nbf", now.Add(10*time.Minute).Unix()), secret), reason: apps.ErrInvalidClaim, claim: "nbf", named: key},
		{name: "jwt exp not a number", token: sign(claims(key, 0, 0, "exp", "soon"), secret), reason: apps.ErrMalformed},
		{name: "jwt exp a numeric string", token: sign(claims(key, 0, 0, "exp", strconv.FormatInt(now.Add(time.Minute).Unix(), 10)), secret), reason: apps.ErrInvalidClaim, claim: "exp", named: key},
		{name: "jwt iat a numeric string", token: sign(claims(key, 0, time.Minute, "iat", strconv.FormatInt(now.Unix(), 10)), secret), reason: apps.ErrInvalidClaim, claim: "iat", named: key},
		{name: "jwt nbf a numeric string", token: sign(claims(key, 0, time.Minute, "nbf", strconv.FormatInt(now.Unix(), 10)), secret), reason: apps.ErrInvalidClaim, claim: "nbf", named: key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.token != "" {
				_, _, err = r.AuthenticateJWT(tt.token)
			} else {
				_, err = r.Authenticate(tt.key, tt.secret)
			}
			var ae *apps.AuthError
			if !errors.As(err, &ae) || !errors.Is(err, apps.ErrUnauthorized) || !errors.Is(err, tt.reason) {
				t.Fatalf("err = %v, want an AuthError of %v", err, tt.reason)
			}
			if ae.Claim != tt.claim || ae.Key != tt.named {
				t.Errorf("claim %q key %q, want %q %q", ae.Claim, ae.Key, tt.claim, tt.named)
			}
			if tt.named != "" && ae.AppID != "shop" {
				t.Errorf("appid %q, want shop", ae.AppID)
			}
			for _, s := range append([]string{secret, revoked.Secret}, strings.Split(tt.token, ".")[1:]...) {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("%q holds %q", err, s)
				}
			}
		})
	}
	if app, k, err := r.AuthenticateJWT(sign(good, secret)); err != nil || app != "shop" || k != key {
		t.Fatalf("good JWT: %q %q %v", app, k, err)
	}
}
