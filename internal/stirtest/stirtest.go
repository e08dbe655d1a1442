// Package stirtest makes a STIR/SHAKEN world for tests: a root CA, a carrier's certificate under it served
// over HTTPS on loopback, and PASSporTs signed with its key.
package stirtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// PKI is a test's own STIR/SHAKEN world: a root CA (the trust anchor), a signing carrier's certificate
// under it served over HTTPS (the x5u), and its key.
type PKI struct {
	Root    *x509.Certificate
	Key     *ecdsa.PrivateKey
	X5U     string
	Fetched atomic.Int32
}

func New(t testing.TB) *PKI {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test STI-PA root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{}
	p.Root, _ = x509.ParseCertificate(rootDER)
	issue := func(serial int64, tmpl *x509.Certificate, pub *ecdsa.PublicKey) []byte {
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Root, pub, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	p.Key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	carrier := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "SHAKEN carrier"}, KeyUsage: x509.KeyUsageDigitalSignature}, &p.Key.PublicKey)
	// The certificate repository, over HTTPS under a certificate of the same root.
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &srvKey.PublicKey)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Fetched.Add(1)
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: carrier})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.X5U = srv.URL + "/carrier.pem"
	return p
}

// Passport signs a shaken PASSporT with key, and returns the Identity header's value.
func (p *PKI) Passport(t testing.TB, key *ecdsa.PrivateKey, x5u, attest, orig, dest string, iat time.Time) string {
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

// RootPEM is the root certificate as PEM: the trust anchors file of an engine.
func (p *PKI) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw})
}
