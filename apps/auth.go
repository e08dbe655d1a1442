package apps

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenAhead is how far ahead a JWT's exp may be.
const MaxTokenAhead = time.Hour

// tokenLeeway is the clock skew allowed on a JWT's exp and iat.
const tokenLeeway = 30 * time.Second

// AuthError is a refused credential, for the log and the metrics (the client is told only
// "unauthorized"). It matches ErrUnauthorized and its Reason. It never holds a secret, a token or a
// signature.
type AuthError struct {
	// Reason is why: ErrNoCredentials, ErrMalformed, ErrUnknownKey, ErrRevokedKey, ErrWrongSecret,
	// ErrTokenExpired, ErrMissingClaim, ErrInvalidClaim or ErrBadSignature.
	Reason error
	// Key and AppID are set when the credential named a key that exists: an unknown key is not repeated,
	// it may be a secret pasted in the wrong place.
	Key, AppID string
	// Claim names the JWT claim of ErrMissingClaim and ErrInvalidClaim.
	Claim string
	// Err is the detail (the JWT library's), if any.
	Err error
}

func (e *AuthError) Error() string {
	msg := ErrUnauthorized.Error() + ": " + e.Reason.Error()
	if e.Claim != "" {
		msg += " " + e.Claim
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match ErrUnauthorized and the Reason.
func (e *AuthError) Unwrap() []error { return []error{ErrUnauthorized, e.Reason} }

// Authenticate returns the app of key if secret is its secret.
func (r *Registry) Authenticate(key, secret string) (string, error) {
	r.mu.RLock()
	k, ok := r.keys[key]
	r.mu.RUnlock()
	// The MAC is computed either way, so the time taken does not tell a known key from an unknown one.
	got := r.secretMAC(secret)
	switch {
	case key == "" || secret == "":
		e := &AuthError{Reason: ErrNoCredentials}
		if ok {
			e.Key, e.AppID = key, k.AppID
		}
		return "", e
	case !ok:
		return "", &AuthError{Reason: ErrUnknownKey}
	case !hmac.Equal(got, k.SecretMAC):
		return "", &AuthError{Reason: ErrWrongSecret, Key: key, AppID: k.AppID}
	case k.RevokedAt != nil:
		return "", &AuthError{Reason: ErrRevokedKey, Key: key, AppID: k.AppID}
	}
	return k.AppID, nil
}

// AuthenticateJWT checks a JWT signed (HS256) with a key's secret, its iss the key, with exp at most
// MaxTokenAhead ahead and iat set, and returns the key's app and the key.
func (r *Registry) AuthenticateJWT(token string) (appID, key string, err error) {
	claims := tokenClaims{}
	refused := &AuthError{}
	_, err = jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		if iss == "" {
			refused.Reason, refused.Claim = ErrMissingClaim, "iss"
			return nil, refused
		}
		r.mu.RLock()
		k, ok := r.keys[iss]
		r.mu.RUnlock()
		if !ok {
			refused.Reason = ErrUnknownKey
			return nil, refused
		}
		// Known from here on: every later refusal names the key.
		refused.Key, refused.AppID = iss, k.AppID
		if k.RevokedAt != nil {
			refused.Reason = ErrRevokedKey
			return nil, refused
		}
		return r.unseal(k.Sealed)
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(tokenLeeway), jwt.WithTimeFunc(r.now))
	switch {
	case refused.Reason != nil:
	case err != nil:
		refused.Reason, refused.Claim, refused.Err = jwtReason(err), jwtClaim(err), err
	case claims.notNumeric != "":
		refused.Reason, refused.Claim = ErrInvalidClaim, claims.notNumeric
		refused.Err = errors.New("not a number (RFC 7519 NumericDate)")
	case claims.IssuedAt == nil:
		refused.Reason, refused.Claim = ErrMissingClaim, "iat"
	case claims.ExpiresAt.Time.After(r.now().Add(MaxTokenAhead + tokenLeeway)):
		refused.Reason, refused.Claim = ErrInvalidClaim, "exp"
		refused.Err = fmt.Errorf("more than %s ahead", MaxTokenAhead)
	default:
		return refused.AppID, refused.Key, nil
	}
	return "", "", refused
}

// tokenClaims are a JWT's registered claims read strictly: exp, iat and nbf are NumericDates, JSON numbers
// (RFC 7519 section 2), but jwt.NumericDate also takes a number written as a string ("exp": "1700000000"),
// which a token from a careless or hostile issuer should not get away with.
type tokenClaims struct {
	jwt.RegisteredClaims
	notNumeric string // the first of exp, iat and nbf given as something other than a number
}

// UnmarshalJSON notes a date claim that is not a JSON number, then reads the claims as jwt does.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		v, ok := raw[name]
		if v = bytes.TrimSpace(v); ok && c.notNumeric == "" && (len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9'))) {
			c.notNumeric = name
		}
	}
	return json.Unmarshal(b, &c.RegisteredClaims)
}

// jwtReason is the reason of a refusal by the JWT library.
func jwtReason(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingClaim
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrInvalidClaim
	}
	// Malformed, an unknown alg, claims of the wrong type.
	return ErrMalformed
}

// jwtClaim names the claim of a missing or invalid claim refused by the JWT library.
func jwtClaim(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return ""
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "exp" // the only claim the library is asked to require
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "iat"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "nbf"
	}
	return ""
}
