package stir_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"flashotp/stir"
)

// pki is a test's own STIR/SHAKEN world: a root CA (the trust anchor), a signing carrier's certificate
// under it served over HTTPS (the x5u), and its key.
type pki struct {
	root    *x509.Certificate
	key     *ecdsa.PrivateKey
	x5u     string
	fetched atomic.Int32
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test STI-PA root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{}
	p.root, _ = x509.ParseCertificate(rootDER)
	issue := func(serial int64, tmpl *x509.Certificate, pub *ecdsa.PublicKey) []byte {
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, pub, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	p.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	carrier := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "SHAKEN carrier"}, KeyUsage: x509.KeyUsageDigitalSignature}, &p.key.PublicKey)
	// The certificate repository, over HTTPS under a certificate of the same root.
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &srvKey.PublicKey)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetched.Add(1)
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: carrier})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.x5u = srv.URL + "/carrier.pem"
	return p
}

// passport signs a shaken PASSporT with key, and returns the Identity header's value.
func (p *pki) passport(t *testing.T, key *ecdsa.PrivateKey, x5u, attest, orig, dest string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"attest": attest, "dest": map[string]any{"tn": []string{dest}}, "iat": iat.Unix(),
		"orig": map[string]any{"tn": orig}, "origid": "123e4567-e89b-12d3-a456-426655440000",
	})
	tok.Header["ppt"], tok.Header["typ"], tok.Header["x5u"] = "shaken", "passport", x5u
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s + ";info=<" + x5u + ">;alg=ES256;ppt=shaken"
}

func TestVerify(t *testing.T) {
	p := newPKI(t)
	v, err := stir.New(stir.Config{TrustAnchors: []*x509.Certificate{p.root}})
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
		{"attestation A", p.passport(t, p.key, p.x5u, "A", caller, called, now), "+" + caller, nil, "A"},
		{"attestation C", p.passport(t, p.key, p.x5u, "C", caller, called, now), caller, nil, "C"},
		{"bad signature", p.passport(t, other, p.x5u, "A", caller, called, now), caller, stir.ErrSignature, ""},
		{"stale iat", p.passport(t, p.key, p.x5u, "A", caller, called, now.Add(-2*time.Minute)), caller, stir.ErrStale, ""},
		{"iat ahead", p.passport(t, p.key, p.x5u, "A", caller, called, now.Add(2*time.Minute)), caller, stir.ErrStale, ""},
		{"wrong orig", p.passport(t, p.key, p.x5u, "A", "14155550000", called, now), caller, stir.ErrWrongNumber, ""},
		{"wrong dest", p.passport(t, p.key, p.x5u, "A", caller, "442079469999", now), caller, stir.ErrWrongNumber, ""},
		{"x5u not https", p.passport(t, p.key, "http://127.0.0.1:9/c.pem", "A", caller, called, now), caller, stir.ErrMalformed, ""},
		{"unknown attestation", p.passport(t, p.key, p.x5u, "D", caller, called, now), caller, stir.ErrMalformed, ""},
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
	if n := p.fetched.Load(); n != 1 {
		t.Errorf("the certificate was fetched %d times, want once (cached)", n)
	}

	// A certificate that chains to no trust anchor is refused.
	stranger := newPKI(t)
	if _, err := v.Verify(t.Context(), stranger.passport(t, stranger.key, stranger.x5u, "A", caller, called, now), caller, called); !errors.Is(err, stir.ErrSignature) {
		t.Errorf("a PASSporT of another root: %v, want ErrSignature", err)
	}
}
