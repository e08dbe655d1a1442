package totp_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/internal/peers"
	"flashotp/internal/testclock"
	"flashotp/limits"
	"flashotp/totp"
)

// memStore is a totp.Store in memory: the store package's bbolt one is tested in store.
type memStore struct {
	mu   sync.Mutex
	recs map[string][]byte
}

var _ totp.Store = (*memStore)(nil)

func (m *memStore) PutEnrollment(_ context.Context, appID, user string, rec []byte, replace bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[appID+"\x00"+user]; ok && !replace {
		return totp.ErrEnrolled
	}
	m.recs[appID+"\x00"+user] = bytes.Clone(rec)
	return nil
}

func (m *memStore) Enrollment(_ context.Context, appID, user string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.recs[appID+"\x00"+user]
	if !ok {
		return nil, totp.ErrNotEnrolled
	}
	return bytes.Clone(v), nil
}

func (m *memStore) UpdateEnrollment(_ context.Context, appID, user string, fn func([]byte) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.recs[appID+"\x00"+user]
	if !ok {
		return totp.ErrNotEnrolled
	}
	v, err := fn(bytes.Clone(old))
	if err != nil {
		return err
	}
	m.recs[appID+"\x00"+user] = v
	return nil
}

func (m *memStore) DeleteEnrollment(_ context.Context, appID, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[appID+"\x00"+user]; !ok {
		return totp.ErrNotEnrolled
	}
	delete(m.recs, appID+"\x00"+user)
	return nil
}

func (m *memStore) Enrollments(_ context.Context, fn func(appID, user string, rec []byte) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.recs {
		app, user, _ := strings.Cut(k, "\x00")
		if err := fn(app, user, bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

type appMap map[string]apps.App

func (a appMap) Get(id string) (apps.App, bool) { v, ok := a[id]; return v, ok }

// start is a moment well inside a time step (step 59000000 starts at 1770000000).
var start = time.Unix(1770000000+10, 0)

type fixture struct {
	svc   *totp.Service
	store *memStore
	clock *testclock.Clock
}

// newFixture returns a service over app "demo" (failed_verifications: limit per day, 0: off) and app "other".
func newFixture(t *testing.T, s totp.Settings, limit int) fixture {
	t.Helper()
	off := map[string]apps.Limit{apps.ScopeFailedVerifications: {}}
	lim := map[string]apps.Limit{apps.ScopeFailedVerifications: {Limit: limit, Window: apps.Duration(24 * time.Hour)}}
	f := fixture{store: &memStore{recs: map[string][]byte{}}, clock: testclock.New(start)}
	svc, err := totp.New(totp.Config{Settings: s, Store: f.store,
		Apps: appMap{"demo": {ID: "demo", RateLimits: lim}, "other": {ID: "other", RateLimits: off}},
		Key:  bytes.Repeat([]byte{1}, 32), Limiter: limits.New(f.clock.Now), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// codes asks the independent implementation (testdata/oath.py) for the codes of counters.
func codes(t *testing.T, secret string, digits int, counters ...uint64) []string {
	t.Helper()
	args := []string{"testdata/oath.py", secret, strconv.Itoa(digits)}
	for _, c := range counters {
		args = append(args, strconv.FormatUint(c, 10))
	}
	out, err := exec.Command("python3", args...).Output()
	if err != nil {
		t.Fatalf("oath.py: %v", err)
	}
	got := strings.Fields(string(out))
	if len(got) != len(counters) {
		t.Fatalf("oath.py gave %q for %d counters", got, len(counters))
	}
	return got
}

func step(at time.Time) uint64 { return uint64(at.Unix()) / 30 }

func (f fixture) enroll(t *testing.T, req totp.EnrollRequest) totp.Enrollment {
	t.Helper()
	e, err := f.svc.Enroll(t.Context(), req)
	if err != nil {
		t.Fatalf("Enroll(%+v): %v", req, err)
	}
	return e
}

func (f fixture) verify(user, code string) error {
	_, err := f.svc.Verify(context.Background(), totp.VerifyRequest{AppID: "demo", User: user, Code: code})
	return err
}

func wantCode(t *testing.T, what string, err error, want fault.Code) {
	t.Helper()
	if got := fault.CodeOf(err); got != want {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, want)
	}
}

func TestEnrollAnswer(t *testing.T) {
	f := newFixture(t, totp.Settings{Digits: 6, LookAhead: 10, Issuer: "Acme Bank"}, 0)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice@example.com"})
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(secret) != totp.SecretSize {
		t.Fatalf("secret %q: %d bytes, %v; want %d bytes of base32", e.Secret, len(secret), err, totp.SecretSize)
	}
	u, err := url.Parse(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Acme Bank:alice@example.com" || q.Get("secret") != e.Secret ||
		q.Get("issuer") != "Acme Bank" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Errorf("otpauth_uri %s", e.URI)
	}
	img, err := png.Decode(bytes.NewReader(e.QRPNG))
	if err != nil || img.Bounds().Dx() != totp.QRSize || img.Bounds().Dy() != totp.QRSize {
		t.Fatalf("qr_png: %v, %v", err, img)
	}
	if e.Type != totp.TypeTOTP || e.Digits != 6 || e.Period != 30 || e.Replaced {
		t.Errorf("enrollment %+v", e)
	}
	j, _ := json.Marshal(e)
	if !strings.Contains(string(j), `"qr_png":"iVBORw0KGgo`) { // base64 of the PNG signature
		t.Errorf("qr_png is not base64 PNG in JSON: %.200s", j)
	}
	// The stored record does not hold the secret, in any form.
	for k, v := range f.store.recs {
		for _, form := range [][]byte{secret, []byte(e.Secret)} {
			if bytes.Contains(v, form) {
				t.Errorf("record %q holds the secret", k)
			}
		}
	}
	// HOTP: its URI has the counter authenticators need; no issuer configured: the app's ID.
	f = newFixture(t, totp.Settings{Digits: 6, LookAhead: 10}, 0)
	h := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "bob", Type: "hotp", Digits: 8})
	u, _ = url.Parse(h.URI)
	if u.Host != "hotp" || u.Path != "/demo:bob" || u.Query().Get("counter") != "0" || u.Query().Get("digits") != "8" || h.Period != 0 {
		t.Errorf("hotp otpauth_uri %s, period %d", h.URI, h.Period)
	}
}

// The QR code holds the URI: read back by zbarimg (Debian zbar-tools), a decoder the engine did not write.
func TestQRCodeReads(t *testing.T) {
	zbar := peers.Require(t, "zbarimg", "zbar-tools")
	f := newFixture(t, totp.DefaultSettings, 0)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "Zoë Åström"})
	file := t.TempDir() + "/qr.png"
	if err := os.WriteFile(file, e.QRPNG, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "--quiet", "--raw", file).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != e.URI {
		t.Errorf("QR code holds %q, want %q", got, e.URI)
	}
}

func TestTOTPCodesOfAnIndependentImplementation(t *testing.T) {
	for _, digits := range []int{6, 8} {
		t.Run(strconv.Itoa(digits), func(t *testing.T) {
			f := newFixture(t, totp.Settings{Digits: digits, LookAhead: 10}, 0)
			e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
			now := step(start)
			c := codes(t, e.Secret, digits, now, now+1, now+2)
			v, err := f.svc.Verify(t.Context(), totp.VerifyRequest{AppID: "demo", User: "alice", Code: c[0]})
			if err != nil || v.Status != "approved" || v.User != "alice" || v.Type != "totp" {
				t.Fatalf("Verify = %+v, %v", v, err)
			}
			wantCode(t, "the same code again", f.verify("alice", c[0]), fault.AlreadyVerified)
			f.clock.Advance(30 * time.Second)
			wantCode(t, "the same code a step later (one step of drift)", f.verify("alice", c[0]), fault.AlreadyVerified)
			if err := f.verify("alice", c[1]); err != nil {
				t.Fatalf("next step's code: %v", err)
			}
			wantCode(t, "next step's code again", f.verify("alice", c[1]), fault.AlreadyVerified)
			f.clock.Advance(30 * time.Second)
			if err := f.verify("alice", c[2]); err != nil {
				t.Fatalf("the code of the step after: %v", err)
			}
		})
	}
}

func TestTOTPDrift(t *testing.T) {
	now := step(start)
	for _, tc := range []struct {
		name  string
		delta int64
		want  fault.Code
	}{
		{"two steps behind", -2, fault.InvalidCode},
		{"one step behind", -1, ""},
		{"this step", 0, ""},
		{"one step ahead", 1, ""},
		{"two steps ahead", 2, fault.InvalidCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, totp.DefaultSettings, 0)
			e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
			c := codes(t, e.Secret, 6, uint64(int64(now)+tc.delta))
			wantCode(t, tc.name, f.verify("alice", c[0]), tc.want)
		})
	}
	// A code of a step before one accepted is refused as replayed even within the window.
	f := newFixture(t, totp.DefaultSettings, 0)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
	c := codes(t, e.Secret, 6, now-1, now, now+1)
	if err := f.verify("alice", c[2]); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "this step after the next one", f.verify("alice", c[1]), fault.AlreadyVerified)
	wantCode(t, "previous step after the next one", f.verify("alice", c[0]), fault.AlreadyVerified)
}

func TestHOTPLookAheadAndResync(t *testing.T) {
	f := newFixture(t, totp.Settings{Digits: 6, LookAhead: 10}, 0)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "bob", Type: "hotp"})
	c := codes(t, e.Secret, 6, 0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 27)
	code := func(n int) string {
		for i, k := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 27} {
			if k == n {
				return c[i]
			}
		}
		t.Fatalf("no code of counter %d", n)
		return ""
	}
	if err := f.verify("bob", code(0)); err != nil {
		t.Fatalf("counter 0: %v", err)
	}
	wantCode(t, "counter 0 again", f.verify("bob", code(0)), fault.AlreadyVerified)
	// The authenticator was pressed 5 times without use: counter 6 is within the look-ahead (1..11).
	if err := f.verify("bob", code(6)); err != nil {
		t.Fatalf("counter 6 (look-ahead): %v", err)
	}
	wantCode(t, "counter 6 again", f.verify("bob", code(6)), fault.AlreadyVerified)
	wantCode(t, "counter 3, skipped over by the resync", f.verify("bob", code(3)), fault.InvalidCode)
	// Resynchronised at 7: 17 is 10 ahead (the last of the window), 27 beyond it.
	wantCode(t, "counter 27, beyond the look-ahead", f.verify("bob", code(27)), fault.InvalidCode)
	if err := f.verify("bob", code(17)); err != nil {
		t.Fatalf("counter 17 (the window's last): %v", err)
	}
	wantCode(t, "counter 16, behind the counter", f.verify("bob", code(16)), fault.InvalidCode)
	// 8 digits: a 6-digit code is refused as malformed, before any attempt is counted.
	h := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "carol", Type: "hotp", Digits: 8})
	wantCode(t, "6 digits for an 8-digit enrollment", f.verify("carol", "123456"), fault.InvalidRequest)
	if err := f.verify("carol", codes(t, h.Secret, 8, 0)[0]); err != nil {
		t.Fatalf("8-digit hotp: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, totp.DefaultSettings, 0)
	for _, req := range []totp.EnrollRequest{
		{AppID: "nope", User: "alice"},
		{AppID: "demo", User: ""},
		{AppID: "demo", User: strings.Repeat("a", 129)},
		{AppID: "demo", User: "alice\nbob"},
		{AppID: "demo", User: "alice\u202ebob"}, // a bidi override: a format character
		{AppID: "demo", User: "alice\x00"},
		{AppID: "demo", User: "\xff"},
		{AppID: "demo", User: "alice", Type: "sms"},
		{AppID: "demo", User: "alice", Digits: 7},
	} {
		_, err := f.svc.Enroll(t.Context(), req)
		wantCode(t, strconv.Quote(req.AppID+"/"+req.User+"/"+req.Type+"/"+strconv.Itoa(req.Digits)), err, fault.InvalidRequest)
	}
	if n := f.store.len(); n != 0 {
		t.Errorf("%d enrollments stored after bad requests", n)
	}
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
	for _, code := range []string{"", "12345", "1234567", "123456789", "12345a", "+123456", " 123456", "１２３４５６"} {
		wantCode(t, "code "+strconv.Quote(code), f.verify("alice", code), fault.InvalidRequest)
	}
	_, err := f.svc.Verify(t.Context(), totp.VerifyRequest{AppID: "nope", User: "alice", Code: "123456"})
	wantCode(t, "unknown app", err, fault.InvalidRequest)
	wantCode(t, "a user not enrolled", f.verify("bob", "123456"), fault.NotFound)
	_, err = f.svc.Verify(t.Context(), totp.VerifyRequest{AppID: "other", User: "alice", Code: codes(t, e.Secret, 6, step(start))[0]})
	wantCode(t, "another app's user", err, fault.NotFound)
}

func TestReenrollAndDelete(t *testing.T) {
	f := newFixture(t, totp.DefaultSettings, 0)
	first := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
	_, err := f.svc.Enroll(t.Context(), totp.EnrollRequest{AppID: "demo", User: "alice"})
	wantCode(t, "enrolling again", err, fault.Conflict)
	c := codes(t, first.Secret, 6, step(start))[0]
	second := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice", Replace: true})
	if !second.Replaced || second.Secret == first.Secret {
		t.Fatalf("replaced enrollment %+v", second)
	}
	wantCode(t, "the replaced secret's code", f.verify("alice", c), fault.InvalidCode)
	if err := f.verify("alice", codes(t, second.Secret, 6, step(start))[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(t.Context(), "demo", "alice"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "after delete", f.verify("alice", "123456"), fault.NotFound)
	wantCode(t, "deleting again", f.svc.Delete(t.Context(), "demo", "alice"), fault.NotFound)
}

func TestFailedVerifiesLimit(t *testing.T) {
	f := newFixture(t, totp.DefaultSettings, 3)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
	c := codes(t, e.Secret, 6, step(start))[0]
	wrong := "000000"
	if wrong == c {
		wrong = "111111"
	}
	for left := 2; left >= 0; left-- {
		err := f.verify("alice", wrong)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Code != fault.InvalidCode || fe.AttemptsRemaining == nil || *fe.AttemptsRemaining != left {
			t.Fatalf("wrong code: %v, want invalid_code with %d attempts remaining", err, left)
		}
	}
	// Full: even the right code is refused until the window moves on.
	err := f.verify("alice", c)
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.RateLimited || fe.Scope != apps.ScopeFailedVerifications || fe.RetryAfter <= 0 {
		t.Fatalf("right code with the limit full: %v", err)
	}
	// Another user of the app is not locked out by alice's failures; a not-enrolled user counts nothing.
	for range 5 {
		wantCode(t, "not enrolled", f.verify("bob", "123456"), fault.NotFound)
	}
	b := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "bob"})
	if err := f.verify("bob", codes(t, b.Secret, 6, step(start))[0]); err != nil {
		t.Fatalf("bob: %v", err)
	}
	f.clock.Advance(24*time.Hour + time.Second)
	if err := f.verify("alice", codes(t, e.Secret, 6, step(f.clock.Now()))[0]); err != nil {
		t.Fatalf("a day later: %v", err)
	}
}

// Concurrent verifies of one code: exactly one passes.
func TestConcurrentReplay(t *testing.T) {
	f := newFixture(t, totp.DefaultSettings, 0)
	e := f.enroll(t, totp.EnrollRequest{AppID: "demo", User: "alice"})
	c := codes(t, e.Secret, 6, step(start))[0]
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for range 20 {
		wg.Go(func() { results <- f.verify("alice", c) })
	}
	wg.Wait()
	close(results)
	passed := 0
	for err := range results {
		if err == nil {
			passed++
		} else {
			wantCode(t, "concurrent replay", err, fault.AlreadyVerified)
		}
	}
	if passed != 1 {
		t.Errorf("%d of 20 concurrent verifies of one code passed, want 1", passed)
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := totp.DefaultSettings.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []totp.Settings{
		{Digits: 7, LookAhead: 10},
		{Digits: 6, LookAhead: -1},
		{Digits: 6, LookAhead: 101},
		{Digits: 6, Issuer: "a:b"},
		{Digits: 6, Issuer: "a\nb"},
		{Digits: 6, Issuer: strings.Repeat("x", 65)},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: valid", s)
		}
	}
}
