// Package stir verifies the caller ID of an inbound call signed with STIR/SHAKEN: the SIP Identity header
// (RFC 8224) carrying a PASSporT (RFC 8225) of the shaken extension (RFC 8588). A PASSporT is accepted only
// if it is an ES256 JWS whose certificate, fetched from its x5u over HTTPS (cached), chains to the
// operator's trust anchors; its iat is fresh; its orig is the caller and its dest holds the number called.
// Its attestation (A, B or C) says how far the signing carrier vouches for the caller.
package stir

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of Verify, wrapped with the detail.
var (
	ErrMalformed   = errors.New("malformed Identity")
	ErrSignature   = errors.New("PASSporT signature or certificate not valid")
	ErrStale       = errors.New("PASSporT iat not fresh")
	ErrWrongNumber = errors.New("PASSporT orig or dest is not the call's")
)

// Defaults of a Verifier.
const (
	DefaultMaxAge       = time.Minute     // RFC 8224 section 6.2.1's recommended freshness
	DefaultFetchTimeout = 2 * time.Second // an x5u fetch, while the caller waits for the rejection
	DefaultCacheFor     = time.Hour
	maxCertBytes        = 64 << 10
)

// Verifier verifies PASSporTs. Its zero value is not usable: use New.
type Verifier struct {
	roots    *x509.CertPool
	client   *http.Client
	maxAge   time.Duration
	cacheFor time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cached // x5u → its certificates
}

type cached struct {
	certs []*x509.Certificate
	until time.Time
}

// Config configures a Verifier.
type Config struct {
	// TrustAnchors are the root certificates a PASSporT's certificate must chain to (the STI-PA's list).
	TrustAnchors []*x509.Certificate
	// HTTPS is the client x5u URLs are fetched with; nil: one with FetchTimeout, trusting the system's roots
	// and TrustAnchors.
	HTTPS        *http.Client
	FetchTimeout time.Duration
	MaxAge       time.Duration // how old a PASSporT's iat may be (and how far ahead)
	CacheFor     time.Duration // how long a fetched certificate is kept
	Now          func() time.Time
}

// New returns a Verifier.
func New(c Config) (*Verifier, error) {
	if len(c.TrustAnchors) == 0 {
		return nil, errors.New("stir: no trust anchors")
	}
	roots := x509.NewCertPool()
	for _, cert := range c.TrustAnchors {
		roots.AddCert(cert)
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.CacheFor <= 0 {
		c.CacheFor = DefaultCacheFor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPS == nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, cert := range c.TrustAnchors {
			pool.AddCert(cert)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig.RootCAs = pool
		c.HTTPS = &http.Client{Timeout: c.FetchTimeout, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Verifier{roots: roots, client: c.HTTPS, maxAge: c.MaxAge, cacheFor: c.CacheFor, now: c.Now, cache: map[string]cached{}}, nil
}

// ParsePEM reads the certificates of a PEM bundle (trust anchors).
func ParsePEM(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// Result is what a verified PASSporT says.
type Result struct {
	Attest string // A, B or C
	OrigID string
}

// passport are the claims of a shaken PASSporT.
type passport struct {
	Attest string `json:"attest"`
	Dest   struct {
		TN []string `json:"tn"`
	} `json:"dest"`
	Orig struct {
		TN string `json:"tn"`
	} `json:"orig"`
	OrigID string `json:"origid"`
	jwt.RegisteredClaims
}

// Verify checks the Identity header value identity of a call from caller to called (E.164, '+' optional).
func (v *Verifier) Verify(ctx context.Context, identity, caller, called string) (Result, error) {
	token, params, _ := strings.Cut(strings.TrimSpace(identity), ";")
	if strings.Count(token, ".") != 2 {
		return Result{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	for _, p := range strings.Split(params, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "ppt":
			if strings.Trim(val, `"`) != "shaken" {
				return Result{}, fmt.Errorf("%w: ppt %s, want shaken", ErrMalformed, val)
			}
		case "alg":
			if val != "ES256" {
				return Result{}, fmt.Errorf("%w: alg %s, want ES256", ErrMalformed, val)
			}
		}
	}
	var claims passport
	parsed, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if t.Header["ppt"] != "shaken" {
			return nil, fmt.Errorf("%w: ppt %v, want shaken", ErrMalformed, t.Header["ppt"])
		}
		x5u, _ := t.Header["x5u"].(string)
		return v.key(ctx, x5u)
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrSignature):
		return Result{}, err
	case err != nil || !parsed.Valid:
		return Result{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if claims.IssuedAt == nil {
		return Result{}, fmt.Errorf("%w: no iat", ErrMalformed)
	}
	if age := v.now().Sub(claims.IssuedAt.Time); age > v.maxAge || age < -v.maxAge {
		return Result{}, fmt.Errorf("%w: iat %s is %s from now", ErrStale, claims.IssuedAt.UTC().Format(time.RFC3339), age.Round(time.Second))
	}
	switch claims.Attest {
	case "A", "B", "C":
	default:
		return Result{}, fmt.Errorf("%w: attest %q", ErrMalformed, claims.Attest)
	}
	if digits(claims.Orig.TN) != digits(caller) {
		return Result{}, fmt.Errorf("%w: orig %s, the caller is %s", ErrWrongNumber, claims.Orig.TN, caller)
	}
	found := false
	for _, tn := range claims.Dest.TN {
		found = found || digits(tn) == digits(called)
	}
	if !found {
		return Result{}, fmt.Errorf("%w: dest %v, the number called is %s", ErrWrongNumber, claims.Dest.TN, called)
	}
	return Result{Attest: claims.Attest, OrigID: claims.OrigID}, nil
}

// digits is a telephone number without its '+'.
func digits(tn string) string { return strings.TrimPrefix(strings.TrimSpace(tn), "+") }

// key returns the public key of the certificate at x5u, once it chains to the trust anchors.
func (v *Verifier) key(ctx context.Context, x5u string) (*ecdsa.PublicKey, error) {
	certs, err := v.certs(ctx, x5u)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, CurrentTime: v.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: certificate of %s: %v", ErrSignature, x5u, err)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: certificate of %s holds no ECDSA key", ErrSignature, x5u)
	}
	return pub, nil
}

// certs fetches the certificates at x5u (HTTPS only: the leaf first), or takes them from the cache.
func (v *Verifier) certs(ctx context.Context, x5u string) ([]*x509.Certificate, error) {
	u, err := url.Parse(x5u)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: x5u %q is no https URL", ErrMalformed, x5u)
	}
	v.mu.Lock()
	c, ok := v.cache[x5u]
	v.mu.Unlock()
	if ok && v.now().Before(c.until) {
		return c.certs, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x5u, nil)
	if err != nil {
		return nil, err
	}
	res, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s: %v", ErrSignature, x5u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: fetch %s: %s", ErrSignature, x5u, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxCertBytes+1))
	if err != nil || len(body) > maxCertBytes {
		return nil, fmt.Errorf("%w: fetch %s: unreadable or over %d bytes", ErrSignature, x5u, maxCertBytes)
	}
	certs, _ := ParsePEM(body)
	if len(certs) == 0 {
		if cert, err := x509.ParseCertificate(body); err == nil { // DER
			certs = append(certs, cert)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no certificate", ErrSignature, x5u)
	}
	v.mu.Lock()
	v.cache[x5u] = cached{certs: certs, until: v.now().Add(v.cacheFor)}
	v.mu.Unlock()
	return certs, nil
}
