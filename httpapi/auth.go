package httpapi

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
)

// The API's own reasons for refusing credentials (apps has the others: apps.ErrNoCredentials, …).
var (
	// errThrottled: the failed-auth throttle refused the client address before its credentials were read.
	errThrottled = errors.New("too many failed authentications")
	// errWrongAdminToken: a Bearer token on /admin that is not http.admin_token.
	errWrongAdminToken = errors.New("wrong admin token")
)

// authReasons is the one table from why credentials were refused to the reason the log and
// flashotp_auth_failures_total give.
var authReasons = map[error]string{
	apps.ErrNoCredentials: "missing",
	apps.ErrMalformed:     "malformed",
	apps.ErrUnknownKey:    "unknown_key",
	apps.ErrRevokedKey:    "revoked_key",
	apps.ErrWrongSecret:   "wrong_secret",
	apps.ErrTokenExpired:  "expired",
	apps.ErrMissingClaim:  "missing_claim",
	apps.ErrInvalidClaim:  "invalid_claim",
	apps.ErrBadSignature:  "bad_signature",
	errThrottled:          "throttled",
	errWrongAdminToken:    "wrong_admin_token",
}

// authenticate accepts X-API-Key and X-API-Secret, Authorization Basic base64(key:secret), or
// Authorization Bearer with base64(key:secret) or a JWT, and stores the app and key in the request's
// locals. A client address with too many failed authentications is refused before any check; an
// authenticated client is held to its app's client rate limit.
func (s *Server) authenticate(c *fiber.Ctx) error {
	ip := s.clientIP(c)
	failures := limits.Check{Rule: s.cfg.AuthFailures, Key: ip}
	if full, retry := s.cfg.Limiter.Full(failures); full {
		return s.throttled(c, ip, retry)
	}
	appID, key, err := s.credentials(c)
	if err != nil {
		s.cfg.Limiter.Add(failures)
		s.authFailed(c, ip, err)
		return fault.Errorf(fault.Unauthorized, "missing or wrong API key or secret, or a bad token")
	}
	if err := s.svc.AllowRequest(appID, key, ip); err != nil {
		return err
	}
	c.Locals("appid", appID)
	c.Locals("key", key)
	return c.Next()
}

// throttled refuses a client address the failed-auth throttle holds back, for retry.
func (s *Server) throttled(c *fiber.Ctx, ip string, retry time.Duration) error {
	s.authFailed(c, ip, errThrottled)
	return &fault.Error{Code: fault.RateLimited, Message: "too many failed authentications from this address", RetryAfter: retry, Scope: s.cfg.AuthFailures.Scope}
}

// authFailed counts refused credentials by their reason and logs why, with the key and app when the key
// exists, never a secret, a token or a signature: the client is told only "unauthorized". Past
// logRate lines a second the lines are left out, and the next line written says how many were.
func (s *Server) authFailed(c *fiber.Ctx, ip string, err error) {
	var (
		reason = err
		ae     *apps.AuthError
		detail []any
	)
	if errors.As(err, &ae) {
		reason = ae.Reason
		if ae.Claim != "" {
			detail = append(detail, "claim", ae.Claim)
		}
		if ae.Key != "" {
			detail = append(detail, "key", ae.Key, "appid", ae.AppID)
		}
		if ae.Err != nil {
			detail = append(detail, "err", ae.Err.Error())
		}
	}
	label, ok := authReasons[reason]
	if !ok {
		label = "other"
	}
	s.cfg.Metrics.AuthFailed(label)
	s.authLog.warn(s.log, "auth failed", append([]any{"reason", label, "remote", ip, "route", c.Method() + " " + s.route(c)}, detail...)...)
}

// credentials authenticates the request's credentials; a refusal is an *apps.AuthError saying why.
func (s *Server) credentials(c *fiber.Ctx) (appID, key string, err error) {
	key, secret := c.Get("X-API-Key"), c.Get("X-API-Secret")
	if header := c.Get(fiber.HeaderAuthorization); key == "" && header != "" {
		scheme, token, _ := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		switch {
		case strings.EqualFold(scheme, "Bearer") && strings.Count(token, ".") == 2:
			return s.cfg.Apps.AuthenticateJWT(token)
		case strings.EqualFold(scheme, "Basic"), strings.EqualFold(scheme, "Bearer"):
			raw, err := base64.StdEncoding.DecodeString(token)
			ok := err == nil
			if ok {
				key, secret, ok = strings.Cut(string(raw), ":")
			}
			if !ok {
				return "", "", &apps.AuthError{Reason: apps.ErrMalformed, Err: errors.New("authorization header: not base64(key:secret), nor a JWT")}
			}
		default:
			// The scheme is not repeated: it may be a secret without one.
			return "", "", &apps.AuthError{Reason: apps.ErrMalformed, Err: errors.New("authorization header: the scheme is neither Basic nor Bearer")}
		}
	}
	appID, err = s.cfg.Apps.Authenticate(key, secret)
	return appID, strings.Clone(key), err
}

func appID(c *fiber.Ctx) string { return c.Locals("appid").(string) }

// checkApp enforces that a request's appid, when given, is the authenticated app.
func checkApp(c *fiber.Ctx, given string) error {
	if given != appID(c) {
		return fault.Errorf(fault.Forbidden, "appid %q is not the app of this API key", given)
	}
	return nil
}
