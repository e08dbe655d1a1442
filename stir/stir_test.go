package stir_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"flashotp/internal/stirtest"
	"flashotp/stir"
)

func TestVerify(t *testing.T) {
	p := stirtest.New(t)
	v, err := stir.New(stir.Config{TrustAnchors: []*x509.Certificate{p.Root}})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const caller, called = "14155552671", "442079461123"
	now := time.Now()
	tests := []struct {
		name, identity, caller string
		want                   error
		attest                 string
	}{
		{"attestation A", p.Passport(t, p.Key, p.X5U, "A", caller, called, now), "+" + caller, nil, "A"},
		{"attestation C", p.Passport(t, p.Key, p.X5U, "C", caller, called, now), caller, nil, "C"},
		{"bad signature", p.Passport(t, other, p.X5U, "A", caller, called, now), caller, stir.ErrSignature, ""},
		{"stale iat", p.Passport(t, p.Key, p.X5U, "A", caller, called, now.Add(-2*time.Minute)), caller, stir.ErrStale, ""},
		{"iat ahead", p.Passport(t, p.Key, p.X5U, "A", caller, called, now.Add(2*time.Minute)), caller, stir.ErrStale, ""},
		{"wrong orig", p.Passport(t, p.Key, p.X5U, "A", "14155550000", called, now), caller, stir.ErrWrongNumber, ""},
		{"wrong dest", p.Passport(t, p.Key, p.X5U, "A", caller, "442079469999", now), caller, stir.ErrWrongNumber, ""},
		{"x5u not https", p.Passport(t, p.Key, "http://127.0.0.1:9/c.pem", "A", caller, called, now), caller, stir.ErrMalformed, ""},
		{"unknown attestation", p.Passport(t, p.Key, p.X5U, "D", caller, called, now), caller, stir.ErrMalformed, ""},
		{"not a JWS", "garbage;info=<https://x>", caller, stir.ErrMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.Verify(t.Context(), tc.identity, tc.caller, called)
			if !errors.Is(err, tc.want) || r.Attest != tc.attest {
				t.Errorf("Verify = %+v, %v; want attest %q, %v", r, err, tc.attest, tc.want)
			}
		})
	}
	if n := p.Fetched.Load(); n != 1 {
		t.Errorf("the certificate was fetched %d times, want once (cached)", n)
	}

	// A certificate that chains to no trust anchor is refused.
	stranger := stirtest.New(t)
	if _, err := v.Verify(t.Context(), stranger.Passport(t, stranger.Key, stranger.X5U, "A", caller, called, now), caller, called); !errors.Is(err, stir.ErrSignature) {
		t.Errorf("a PASSporT of another root: %v, want ErrSignature", err)
	}
}
