package totp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
	"flashotp/seal"
)

// The kinds of code an enrollment checks.
const (
	// TypeTOTP codes are of the 30-second time step (RFC 6238).
	TypeTOTP = "totp"
	// TypeHOTP codes are of a counter the authenticator moves at each press (RFC 4226).
	TypeHOTP = "hotp"
)

const (
	// Period is a TOTP time step. Authenticators that ignore the URI's period (several do) assume 30 s.
	Period = 30 * time.Second
	// SecretSize is the length of a secret: 160 bits, as RFC 4226 section 4 recommends for HMAC-SHA1.
	SecretSize = 20
	// QRSize is the width and height in pixels of the QR code's PNG.
	QRSize = 256
	// StatusApproved is a verified code's status, as POST /otp/verify's.
	StatusApproved = "approved"
	// maxUser bounds a user's name in bytes.
	maxUser = 128
)

// Apps is what the Service needs of the apps; *apps.Registry is one.
type Apps interface {
	Get(id string) (apps.App, bool)
}

// Config configures a Service.
type Config struct {
	Settings
	Store Store
	Apps  Apps
	// Key is the server key the secrets are sealed under.
	Key []byte
	// Limiter counts failed verifies (the app's failed_verifications limit); nil: a new one on Now. Share the
	// otp Service's so that GET /otp/rate-limits and its sweeper see the same counts.
	Limiter *limits.Limiter
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log gets a line per enrollment and verify (never a secret or a code); nil: slog.Default.
	Log *slog.Logger
}

// Service enrolls users and verifies their authenticators' codes. It is safe for concurrent use.
type Service struct {
	cfg Config
	box *seal.Box
}

// New returns a Service; cfg.Settings must have passed Validate.
func New(cfg Config) (*Service, error) {
	if err := cfg.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	if cfg.Store == nil || cfg.Apps == nil || len(cfg.Key) == 0 {
		return nil, errors.New("totp: Store, Apps and Key are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = limits.New(cfg.Now)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	box, err := seal.New(cfg.Key, "flashotp totp seal v1")
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, box: box}, nil
}

// EnrollRequest is the body of POST /otp/totp/enroll.
type EnrollRequest struct {
	AppID string `json:"appid"`
	// User is the app's name for the user (1 to 128 printable characters): the authenticator shows it.
	User string `json:"user"`
	// Type is totp (the default) or hotp.
	Type string `json:"type,omitempty"`
	// Digits is 6 or 8; 0: the configured totp.digits.
	Digits int `json:"digits,omitempty"`
	// Replace allows enrolling a user who has an enrollment: the old secret stops working at once.
	Replace bool `json:"replace,omitempty"`
}

// Enrollment is the answer to Enroll: the only time the secret is shown.
type Enrollment struct {
	AppID  string `json:"appid"`
	User   string `json:"user"`
	Type   string `json:"type"`
	Digits int    `json:"digits"`
	// Period is the TOTP time step in seconds (0 for HOTP).
	Period int `json:"period,omitempty"`
	// Secret is the key in base32 without padding, for typing into an authenticator.
	Secret string `json:"secret"`
	// URI is the otpauth:// key URI the QR code holds.
	URI string `json:"otpauth_uri"`
	// QRPNG is a QRSize×QRSize PNG of a QR code of URI (base64 in JSON).
	QRPNG     []byte    `json:"qr_png"`
	CreatedAt time.Time `json:"created_at"`
	Replaced  bool      `json:"replaced"`
}

// VerifyRequest is the body of POST /otp/totp/verify.
type VerifyRequest struct {
	AppID string `json:"appid"`
	User  string `json:"user"`
	Code  string `json:"otp_code"`
}

// Verified is the answer to a code that passed.
type Verified struct {
	Status     string    `json:"status"`
	AppID      string    `json:"appid"`
	User       string    `json:"user"`
	Type       string    `json:"type"`
	VerifiedAt time.Time `json:"verified_at"`
}

// record is an enrollment as the store keeps it.
type record struct {
	Type   string `json:"type"`
	Digits int    `json:"digits"`
	Sealed []byte `json:"sealed_secret"`
	// Step is, for TOTP, the last time step a code was accepted of (0: none yet); for HOTP, the counter of
	// the next code expected.
	Step       uint64     `json:"step"`
	CreatedAt  time.Time  `json:"created_at"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Enroll makes a new secret for the user of app req.AppID and stores it sealed. Errors: invalid_request for
// an unknown app or a bad field, conflict when the user has an enrollment and req.Replace is false.
func (s *Service) Enroll(ctx context.Context, req EnrollRequest) (Enrollment, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Enrollment{}, err
	}
	if err := checkUser(req.User); err != nil {
		return Enrollment{}, err
	}
	typ := req.Type
	if typ == "" {
		typ = TypeTOTP
	}
	if typ != TypeTOTP && typ != TypeHOTP {
		return Enrollment{}, fault.Errorf(fault.InvalidRequest, "type: want totp or hotp, got %q", typ)
	}
	digits := req.Digits
	if digits == 0 {
		digits = s.cfg.Digits
	}
	if digits != 6 && digits != 8 {
		return Enrollment{}, fault.Errorf(fault.InvalidRequest, "digits: want 6 or 8, got %d", digits)
	}
	secret := make([]byte, SecretSize)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (it crashes the program instead)
	key, err := keyURI(typ, s.issuer(app), req.User, secret, digits)
	if err != nil {
		return Enrollment{}, fault.Errorf(fault.InvalidRequest, "user: %v", err)
	}
	img, err := key.Image(QRSize, QRSize)
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return Enrollment{}, fmt.Errorf("totp: QR code: %w", err)
	}
	now := s.cfg.Now().UTC()
	rec := record{Type: typ, Digits: digits, Sealed: s.box.Seal(secret, ad(app.ID, req.User)), CreatedAt: now}
	v, err := json.Marshal(rec)
	if err != nil {
		return Enrollment{}, err
	}
	if err := s.cfg.Store.PutEnrollment(ctx, app.ID, req.User, v, req.Replace); errors.Is(err, ErrEnrolled) {
		return Enrollment{}, fault.Errorf(fault.Conflict, "user %q is enrolled already; give replace: true to enroll again", req.User)
	} else if err != nil {
		return Enrollment{}, err
	}
	s.cfg.Log.Info("totp enrolled", "appid", app.ID, "type", typ, "digits", digits, "replace", req.Replace)
	out := Enrollment{AppID: app.ID, User: req.User, Type: typ, Digits: digits, Secret: b32.EncodeToString(secret),
		URI: key.String(), QRPNG: qr.Bytes(), CreatedAt: now, Replaced: req.Replace}
	if typ == TypeTOTP {
		out.Period = int(Period / time.Second)
	}
	return out, nil
}

// keyURI is the otpauth:// key of secret, through the library's Generate so that the URI is the form
// authenticators read (Key URI Format: label "issuer:account", issuer, algorithm, digits, period or counter).
func keyURI(typ, issuer, user string, secret []byte, digits int) (*otp.Key, error) {
	if typ == TypeTOTP {
		return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: user, Period: uint(Period / time.Second),
			Secret: secret, Digits: otp.Digits(digits), Algorithm: otp.AlgorithmSHA1})
	}
	key, err := hotp.Generate(hotp.GenerateOpts{Issuer: issuer, AccountName: user, Secret: secret,
		Digits: otp.Digits(digits), Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	// Google Authenticator needs an HOTP key's counter; the library leaves it out.
	u, err := url.Parse(key.URL())
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("counter", "0")
	u.RawQuery = q.Encode()
	return otp.NewKeyFromURL(u.String())
}

// Errors of a code, decided inside the store's transaction (nothing is written).
var (
	errWrongCode = errors.New("wrong code")
	errReplayed  = errors.New("code already used")
)

// Verify checks code against the user's enrollment with app and, when it passes, records its time step (or
// moves the HOTP counter past it) so that it never passes again. Errors: invalid_request for an unknown app,
// a bad user or a code that is not the enrollment's digits; not_found for a user with no enrollment;
// invalid_code (422, attempts_remaining when the app's failed_verifications limit is on) for a wrong code;
// already_verified (409) for a code of a step or counter already accepted; rate_limited (429) when the
// user's failed verifies filled that limit.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (Verified, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Verified{}, err
	}
	if err := checkUser(req.User); err != nil {
		return Verified{}, err
	}
	code := req.Code
	if (len(code) != 6 && len(code) != 8) || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return Verified{}, fault.Errorf(fault.InvalidRequest, "otp_code: want the 6 or 8 digits the authenticator shows")
	}
	// The attempt takes its slot in the failed_verifications limit before the code is compared, and gives it
	// back unless it failed: counting afterwards would let concurrent guesses through the last slot.
	c := s.check(app, req.User)
	slot, ok, retry := s.cfg.Limiter.Reserve(c)
	if !ok {
		e := fault.Errorf(fault.RateLimited, "%s limit reached: %d per %s", c.Scope, c.Limit, c.Window)
		e.RetryAfter, e.Scope = retry, c.Scope
		return Verified{}, e
	}
	var (
		typ string
		now time.Time
	)
	// A code is first checked on a read of the enrollment: a wrong one (a guess) costs no write transaction.
	// One that passes is checked again in the transaction that records it, where a concurrent verify of the
	// same code may have come first.
	check := func(v []byte) ([]byte, error) {
		var rec record
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("totp: enrollment of %s: %w", app.ID, err)
		}
		typ, now = rec.Type, s.cfg.Now().UTC()
		if len(code) != rec.Digits {
			return nil, fault.Errorf(fault.InvalidRequest, "otp_code: want %d digits", rec.Digits)
		}
		secret, err := s.box.Open(rec.Sealed, ad(app.ID, req.User))
		if err != nil {
			return nil, fmt.Errorf("totp: secret of an enrollment of %s: %w", app.ID, err)
		}
		step, err := s.match(&rec, secret, code, now)
		if err != nil {
			return nil, err
		}
		rec.Step, rec.VerifiedAt = step, &now
		return json.Marshal(rec)
	}
	v, err := s.cfg.Store.Enrollment(ctx, app.ID, req.User)
	if err == nil {
		_, err = check(v)
	}
	if err == nil {
		err = s.cfg.Store.UpdateEnrollment(ctx, app.ID, req.User, check)
	}
	result := "approved"
	switch {
	case err == nil:
		slot.Release()
	case errors.Is(err, errWrongCode):
		result = "invalid_code"
		e := fault.Errorf(fault.InvalidCode, "wrong code")
		if !c.Off() {
			left := max(0, c.Limit-s.cfg.Limiter.Status(c).Used)
			e.AttemptsRemaining = &left
		}
		err = e
	case errors.Is(err, errReplayed):
		// Counted as a failure: whoever replays a code is not the user logging in.
		result = "replayed"
		err = fault.Errorf(fault.AlreadyVerified, "this code was used already; wait for the next one")
	case errors.Is(err, ErrNotEnrolled):
		slot.Release()
		return Verified{}, fault.Errorf(fault.NotFound, "user %q is not enrolled", req.User)
	default:
		slot.Release()
		if fault.CodeOf(err) == fault.InvalidRequest {
			return Verified{}, err
		}
		s.cfg.Log.Error("totp verify", "appid", app.ID, "err", err)
		return Verified{}, err
	}
	s.cfg.Log.Info("totp verify", "appid", app.ID, "type", typ, "result", result)
	if err != nil {
		return Verified{}, err
	}
	return Verified{Status: StatusApproved, AppID: app.ID, User: req.User, Type: typ, VerifiedAt: now}, nil
}

// match returns the step or counter rec records when code passes at now: for TOTP the time step it is of,
// for HOTP the counter after its own. It fails with errWrongCode or errReplayed. Every candidate is computed
// and compared in constant time whatever matched.
func (s *Service) match(rec *record, secret []byte, code string, now time.Time) (uint64, error) {
	key := b32.EncodeToString(secret)
	opts := hotp.ValidateOpts{Digits: otp.Digits(rec.Digits), Algorithm: otp.AlgorithmSHA1}
	var candidates []uint64 // counters a code may be of, oldest first
	var replay uint64       // with ok: a counter whose code was accepted already and may be replayed
	var replayOK bool
	if rec.Type == TypeTOTP {
		t := uint64(now.Unix()) / uint64(Period/time.Second)
		candidates = []uint64{t - 1, t, t + 1}
	} else {
		for i := 0; i <= s.cfg.LookAhead; i++ {
			candidates = append(candidates, rec.Step+uint64(i))
		}
		if rec.Step > 0 {
			replay, replayOK = rec.Step-1, true
		}
	}
	var accepted, replayed bool
	var at uint64
	for _, n := range candidates {
		if !codeOf(key, n, opts, code) {
			continue
		}
		if rec.Type == TypeTOTP && n <= rec.Step {
			replayed = true
		} else if !accepted {
			accepted, at = true, n
		}
	}
	if replayOK && codeOf(key, replay, opts, code) {
		replayed = true
	}
	switch {
	case accepted && rec.Type == TypeTOTP:
		return at, nil
	case accepted:
		return at + 1, nil
	case replayed:
		return 0, errReplayed
	}
	return 0, errWrongCode
}

// codeOf reports whether code is the code of counter n of key.
func codeOf(key string, n uint64, opts hotp.ValidateOpts, code string) bool {
	want, err := hotp.GenerateCodeCustom(key, n, opts)
	return err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
}

// Delete removes the user's enrollment with app: its secret stops working at once. Errors: invalid_request
// for an unknown app or a bad user, not_found for a user with none.
func (s *Service) Delete(ctx context.Context, appID, user string) error {
	app, err := s.app(appID)
	if err != nil {
		return err
	}
	if err := checkUser(user); err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteEnrollment(ctx, app.ID, user); errors.Is(err, ErrNotEnrolled) {
		return fault.Errorf(fault.NotFound, "user %q is not enrolled", user)
	} else if err != nil {
		return err
	}
	s.cfg.Log.Info("totp enrollment deleted", "appid", app.ID)
	return nil
}

// check is the app's failed_verifications rule applied to user; the key cannot be a recipient's (no number
// or email address begins "totp:").
func (s *Service) check(app apps.App, user string) limits.Check {
	l := app.RateLimits[apps.ScopeFailedVerifications]
	return limits.Check{Rule: limits.Rule{Scope: apps.ScopeFailedVerifications, Limit: l.Limit, Window: time.Duration(l.Window)},
		Key: app.ID + "/totp:" + user}
}

func (s *Service) app(id string) (apps.App, error) {
	a, ok := s.cfg.Apps.Get(id)
	if !ok {
		return apps.App{}, fault.Errorf(fault.InvalidRequest, "appid: unknown app %q", id)
	}
	return a, nil
}

func (s *Service) issuer(app apps.App) string {
	if s.cfg.Issuer != "" {
		return s.cfg.Issuer
	}
	return app.ID
}

// ad is the associated data a secret is sealed with: its record's place. Neither part holds NUL.
func ad(appID, user string) []byte { return []byte(appID + "\x00" + user) }

// checkUser refuses a user name that is empty, too long, or not printable text.
func checkUser(user string) error {
	if user == "" || len(user) > maxUser || !printable(user) {
		return fault.Errorf(fault.InvalidRequest, "user: want 1 to %d bytes of printable text", maxUser)
	}
	return nil
}

// printable reports whether s is UTF-8 text of graphic characters and spaces only: no C0 or C1 controls, no
// format characters (bidi overrides, zero-width joiners), no invalid bytes.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}
