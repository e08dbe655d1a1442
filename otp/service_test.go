package otp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/oklog/ulid/v2"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/internal/apptest"
	"flashotp/internal/fakes"
	"flashotp/internal/storetest"
	"flashotp/internal/testclock"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/store"
)

func newClock() *testclock.Clock {
	return testclock.New(time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC))
}

const (
	testTTL         = 5 * time.Minute
	testMaxAttempts = 5
	usRecipient     = "+14155552671"
	frRecipient     = "+33612345678"
	gbRecipient     = "+447400123456"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	svc   *otp.Service
	db    *store.DB
	pools *numberpool.Registry
	dial  *fakes.Dialer
	clock *testclock.Clock
}

// newRegistry returns a number pool registry over db's buckets with one pool per app, named like it.
func newRegistry(t testing.TB, db *store.DB, now func() time.Time, codeLength, minCodeSpace int, pools map[string]string) *numberpool.Registry {
	t.Helper()
	apps := map[string][]string{}
	var ps []numberpool.Pool
	for app, numbers := range pools {
		apps[app] = []string{app}
		ps = append(ps, numberpool.Pool{Name: app, Entries: []numberpool.Entry{{Numbers: []string{numbers}, Enabled: true}}}.WithDefaults())
	}
	r, err := numberpool.NewRegistry(t.Context(), numberpool.Config{Apps: apps, CodeLength: codeLength, MinCodeSpace: minCodeSpace, Key: db.Key(), Now: now, Log: quietLog()},
		db, ps)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() { r.Close() }) // before the store closes: cleanups run last first
	return r
}

// testApps returns apps ids on db, with codeLength-digit codes, testTTL and testMaxAttempts, and no rate
// limits.
func testApps(t *testing.T, db *store.DB, codeLength int, ids ...string) *apps.Registry {
	var list []apps.ConfigApp
	for _, id := range ids {
		list = append(list, apptest.App(id, id+"-key", id+"-secret"))
	}
	return apptest.Open(t, db, apps.Defaults{CodeLength: codeLength, TTL: testTTL, MaxAttempts: testMaxAttempts}, nil, list...)
}

// newEnv returns a service over a real store and number pool registry with apps "demo" (+44207946XXXX),
// "other" (+33612XXXXXX) and "short" (+683XXXX).
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: storetest.Open(t), dial: &fakes.Dialer{}, clock: newClock()}
	e.pools = newRegistry(t, e.db, e.clock.Now, 4, 10000, map[string]string{
		"demo":  "+44207946XXXX",
		"other": "+33612XXXXXX",
		// +683 (Niue) numbers are 7 digits long: fine for 4-digit codes, too short for 7-digit ones.
		"short": "+683XXXX",
	})
	e.svc = otp.New(otp.Config{Apps: testApps(t, e.db, 4, "demo", "other", "short"), Dialer: e.dial, Now: e.clock.Now, Key: e.db.Key()}, e.db.Verifications(), e.pools, quietLog())
	return e
}

// send sends a flash call to usRecipient for demo and returns the verification and the CLI the dialer got.
func (e *env) send(t *testing.T) (otp.Verification, string) {
	t.Helper()
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := e.dial.Last(t)
	if r.ID != v.ID {
		t.Fatalf("dialer got call for %s, want %s", r.ID, v.ID)
	}
	return v, r.CLI
}

func (e *env) status(t *testing.T, id string) otp.Verification {
	t.Helper()
	v, err := e.svc.Status(t.Context(), "demo", id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return v
}

// count returns how many records the store holds of verifications: the records, their index keys, events,
// attempts, report counters and webhooks.
func (e *env) count(t *testing.T) int {
	t.Helper()
	n, err := e.db.Count(store.VerificationBuckets...)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

// record returns the stored record of verification id, or nil.
func (e *env) record(t *testing.T, id string) []byte {
	t.Helper()
	var rec []byte
	if err := e.db.Verifications().View(t.Context(), func(tx otp.Tx) error { rec = tx.Verification(id); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return rec
}

// codeOf returns the code a CLI carries at the default code length.
func codeOf(cli string) string { return cli[len(cli)-4:] }

// wrongCode returns a code of the same length that differs from code in its last digit.
func wrongCode(code string) string {
	last := code[len(code)-1]
	return code[:len(code)-1] + string('0'+(last-'0'+1)%10)
}

// wantErr checks that err is a *fault.Error whose Code is want.
func wantErr(t *testing.T, err error, want fault.Code) *fault.Error {
	t.Helper()
	var oe *fault.Error
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v (%T), want *fault.Error with code %v", err, err, want)
	}
	if oe.Code != want || !errors.Is(err, want) {
		t.Fatalf("err code = %v, want %v (err: %v)", oe.Code, want, err)
	}
	if oe.Message == "" {
		t.Errorf("err %v has no message", err)
	}
	return oe
}

func TestSendPendingVerification(t *testing.T) {
	tests := []struct {
		name      string
		recipient string
		want      string
	}{
		{"us with plus", usRecipient, usRecipient},
		{"us without plus", strings.TrimPrefix(usRecipient, "+"), usRecipient},
		{"fr mobile", frRecipient, frRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			now := e.clock.Now()
			v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: tt.recipient, Channel: otp.ChannelFlashCall, Reference: "order-42"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !strings.HasPrefix(v.ID, "otp_") {
				t.Errorf("ID = %q, want otp_ prefix", v.ID)
			}
			if v.AppID != "demo" || v.Recipient != tt.want || v.Channel != otp.ChannelFlashCall || v.Status != otp.StatusPending {
				t.Errorf("got appid %q recipient %q channel %q status %q", v.AppID, v.Recipient, v.Channel, v.Status)
			}
			if v.CodeLength != 4 || v.CLIPrefix != "+44207946" || v.Reference != "order-42" {
				t.Errorf("got code_length %d cli_prefix %q reference %q", v.CodeLength, v.CLIPrefix, v.Reference)
			}
			if v.Attempts != 0 || v.AttemptsRemaining != testMaxAttempts {
				t.Errorf("attempts %d remaining %d, want 0 and %d", v.Attempts, v.AttemptsRemaining, testMaxAttempts)
			}
			if !v.CreatedAt.Equal(now) || !v.ExpiresAt.Equal(now.Add(testTTL)) || v.CreatedAt.Location() != time.UTC {
				t.Errorf("created_at %v expires_at %v, want %v and +%v in UTC", v.CreatedAt, v.ExpiresAt, now, testTTL)
			}
			if v.Call.State != call.StateQueued || v.Call.StartedAt != nil || v.Call.EndedAt != nil || v.Call.PostDialDelayMS != nil {
				t.Errorf("call = %+v, want queued with no times", v.Call)
			}

			reqs := e.dial.Requests()
			if len(reqs) != 1 {
				t.Fatalf("dialer got %d calls, want 1", len(reqs))
			}
			r := reqs[0]
			if r.ID != v.ID || r.To != tt.want {
				t.Errorf("dialer request = %+v, want id %s to %s", r, v.ID, tt.want)
			}
			if len(r.CLI) != len("+44207946XXXX") || !strings.HasPrefix(r.CLI, v.CLIPrefix) {
				t.Errorf("CLI %q does not fit pool +44207946XXXX / prefix %q", r.CLI, v.CLIPrefix)
			}
			if v.CLIPrefix != r.CLI[:len(r.CLI)-v.CodeLength] {
				t.Errorf("cli_prefix %q is not CLI %q minus its last %d digits", v.CLIPrefix, r.CLI, v.CodeLength)
			}

			// What Send returned is what Status reads back from the store.
			got := e.status(t, v.ID)
			if got.ID != v.ID || got.CLIPrefix != v.CLIPrefix || !got.CreatedAt.Equal(v.CreatedAt) || got.Status != otp.StatusPending {
				t.Errorf("Status = %+v, want %+v", got, v)
			}
		})
	}
}

func TestSendStoresNoCode(t *testing.T) {
	e := newEnv(t)
	v, cli := e.send(t)
	raw := e.record(t, v.ID)
	if raw == nil {
		t.Fatalf("no record of %s in the store", v.ID)
	}
	if strings.Contains(string(raw), cli) || strings.Contains(string(raw), strings.TrimPrefix(cli, "+")) {
		t.Errorf("stored record holds the whole CLI %s: %s", cli, raw)
	}
	var fields map[string]cbor.RawMessage
	if err := cbor.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("stored record is not a CBOR map: %v", err)
	}
	for k := range fields {
		if strings.Contains(k, "code") && k != "code_mac" && k != "code_length" {
			t.Errorf("stored record has field %q: %s", k, raw)
		}
		if strings.Contains(k, "cli") && k != "cli_prefix" && k != "cli_pattern" {
			t.Errorf("stored record has field %q: %s", k, raw)
		}
	}
	var mac []byte
	if err := cbor.Unmarshal(fields["code_mac"], &mac); err != nil || len(mac) != 32 {
		t.Errorf("code_mac = %s, want a 32-byte HMAC-SHA256 (err %v)", fields["code_mac"], err)
	}
	if string(mac) == codeOf(cli) {
		t.Errorf("code_mac is the code in clear")
	}
}

func TestSendRejects(t *testing.T) {
	tests := []struct {
		name string
		req  otp.SendRequest
		want fault.Code
	}{
		{"premium rate", otp.SendRequest{AppID: "demo", Recipient: "+19005550123", Channel: "flashcall"}, fault.DestinationBlocked},
		{"too short", otp.SendRequest{AppID: "demo", Recipient: "+1555", Channel: "flashcall"}, fault.InvalidRecipient},
		{"letters", otp.SendRequest{AppID: "demo", Recipient: "abc", Channel: "flashcall"}, fault.InvalidRecipient},
		{"header injection", otp.SendRequest{AppID: "demo", Recipient: "+14155552671\r\nX: y", Channel: "flashcall"}, fault.InvalidRecipient},
		{"sip uri", otp.SendRequest{AppID: "demo", Recipient: "sip:+14155552671@evil", Channel: "flashcall"}, fault.InvalidRecipient},
		{"empty recipient", otp.SendRequest{AppID: "demo", Recipient: "", Channel: "flashcall"}, fault.InvalidRecipient},
		{"leading zero", otp.SendRequest{AppID: "demo", Recipient: "+04155552671", Channel: "flashcall"}, fault.InvalidRecipient},
		{"sms channel", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "sms"}, fault.InvalidRequest},
		{"no channel", otp.SendRequest{AppID: "demo", Recipient: usRecipient}, fault.InvalidRequest},
		{"unknown app", otp.SendRequest{AppID: "nope", Recipient: usRecipient, Channel: "flashcall"}, fault.InvalidRequest},
		{"unknown pool", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", From: "nope"}, fault.InvalidRequest},
		{"pool name with CRLF", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", From: "main\r\nX: y"}, fault.InvalidRequest},
		{"reference with CRLF", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "a\r\nX: y"}, fault.InvalidRequest},
		{"reference too long", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: strings.Repeat("r", 129)}, fault.InvalidRequest},
		{"reference with a C1 control (NEL)", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "a\u0085b"}, fault.InvalidRequest},
		{"reference with a bidi override", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "a\u202eb"}, fault.InvalidRequest},
		{"reference with a line separator", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "a\u2028b"}, fault.InvalidRequest},
		{"reference not UTF-8", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "a\xffb"}, fault.InvalidRequest},
		{"pool name with a C1 control", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", From: "demo\u0085"}, fault.InvalidRequest},
		{"code_length 3", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", CodeLength: 3}, fault.InvalidRequest},
		{"code_length 9", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", CodeLength: 9}, fault.InvalidRequest},
		{"code_length negative", otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", CodeLength: -4}, fault.InvalidRequest},
		// A code as long as the pool's numbers leaves no prefix: the caller asked for too long a code.
		{"code_length longer than the pool's numbers", otp.SendRequest{AppID: "short", Recipient: usRecipient, Channel: "flashcall", CodeLength: 7}, fault.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.Send(t.Context(), tt.req)
			wantErr(t, err, tt.want)
			if n := len(e.dial.Requests()) + len(e.dial.Refused()); n != 0 {
				t.Errorf("dialer got %d calls, want none", n)
			}
			if n := e.count(t); n != 0 {
				t.Errorf("store holds %d records, want none", n)
			}
		})
	}
}

// A send naming a pool the app does not have is refused before it counts against the limits: a stranger's
// typo (or a hostile client's loop) never blocks the recipient.
func TestUnknownPoolNotCounted(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{apps.ScopeRecipient: {Limit: 5, Window: apps.Duration(10 * time.Minute)}}
	})
	for i := range 10 {
		_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", From: "nope"})
		if !errors.Is(err, fault.InvalidRequest) {
			t.Fatalf("send %d from an unknown pool: %v, want invalid_request", i+1, err)
		}
	}
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall", Reference: "café ünïcode ok"}); err != nil {
		t.Fatalf("send after the refused ones: %v", err)
	}
}

func TestSendCodeSpaceTooSmall(t *testing.T) {
	db := storetest.Open(t)
	pools := newRegistry(t, db, nil, 5, 100000, map[string]string{"wide": "+4420794XXXXX"})
	d := &fakes.Dialer{}
	svc := otp.New(otp.Config{Apps: testApps(t, db, 5, "wide"), Dialer: d, Key: db.Key()}, db.Verifications(), pools, quietLog())
	tests := []struct {
		name       string
		codeLength int
		want       fault.Code
	}{
		{"4 digits give 10^4 codes", 4, fault.InvalidRequest},
		{"default 5 digits", 0, ""},
		{"6 digits", 6, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(d.Requests())
			v, err := svc.Send(t.Context(), otp.SendRequest{AppID: "wide", Recipient: usRecipient, Channel: "flashcall", CodeLength: tt.codeLength})
			if tt.want != "" {
				wantErr(t, err, tt.want)
				if len(d.Requests()) != before {
					t.Errorf("dialer got a call")
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := tt.codeLength
			if want == 0 {
				want = 5
			}
			cli := d.Last(t).CLI
			if v.CodeLength != want || v.CLIPrefix != cli[:len(cli)-want] {
				t.Errorf("code_length %d cli_prefix %q for CLI %s, want %d digits", v.CodeLength, v.CLIPrefix, cli, want)
			}
		})
	}
}

func TestSendDialerRefuses(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"queue full", dialer.ErrQueueFull},
		{"stopped", dialer.ErrStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.dial.Refuse(fault.Errorf(fault.Unavailable, "no capacity for the call: %w", tt.err)) // as the dialer refuses
			_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall"})
			wantErr(t, err, fault.Unavailable)
			refused := e.dial.Refused()
			if len(refused) != 1 {
				t.Fatalf("dialer was offered %d calls, want 1", len(refused))
			}
			if rec := e.record(t, refused[0].ID); rec != nil {
				t.Errorf("store holds a record of %s: %s, want none", refused[0].ID, rec)
			}
			if n := e.count(t); n != 0 {
				t.Errorf("store holds %d records, want none", n)
			}
			_, err = e.svc.Status(t.Context(), "demo", refused[0].ID)
			wantErr(t, err, fault.NotFound)
		})
	}
}

// With every trunk down, send and resend are refused unavailable with the dialer's Retry-After before
// anything is stored or offered to the dialer.
func TestSendEveryTrunkDown(t *testing.T) {
	e := newEnv(t)
	v, _ := e.send(t)
	e.missed(v.ID)
	e.clock.Advance(31 * time.Second) // past the resend cooldown
	before := e.count(t)
	down := fault.Errorf(fault.Unavailable, "no trunk can take the call: %w: [phone]", dialer.ErrTrunksDown) // as the dialer refuses
	down.RetryAfter = 30 * time.Second
	e.dial.SetDown(down)

	for name, call := range map[string]func() error{
		"send": func() error {
			_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: "flashcall"})
			return err
		},
		"resend": func() error {
			_, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID})
			return err
		},
	} {
		err := call()
		wantErr(t, err, fault.Unavailable)
		var oerr *fault.Error
		if !errors.As(err, &oerr) || oerr.RetryAfter != 30*time.Second {
			t.Errorf("%s: %v, want RetryAfter 30s", name, err)
		}
	}
	if n := len(e.dial.Requests()) + len(e.dial.Refused()); n != 1 {
		t.Errorf("dialer was offered %d calls, want only the first send's", n)
	}
	if n := e.count(t); n != before {
		t.Errorf("store holds %d records after the refusals, %d before", n, before)
	}
}

func TestVerify(t *testing.T) {
	type step struct {
		code          func(cli string) string
		want          fault.Code // "": approved
		wantRemaining int        // for fault.InvalidCode
	}
	right := func(cli string) string { return codeOf(cli) }
	wrong := func(cli string) string { return wrongCode(codeOf(cli)) }
	tests := []struct {
		name         string
		steps        []step
		wantStatus   otp.Status
		wantAttempts int
	}{
		{
			name:       "right code",
			steps:      []step{{code: right}},
			wantStatus: otp.StatusApproved,
		},
		{
			name:       "right code twice",
			steps:      []step{{code: right}, {code: right, want: fault.AlreadyVerified}},
			wantStatus: otp.StatusApproved,
		},
		{
			name:         "wrong then right",
			steps:        []step{{code: wrong, want: fault.InvalidCode, wantRemaining: 4}, {code: right}},
			wantStatus:   otp.StatusApproved,
			wantAttempts: 1,
		},
		{
			name:       "whole CLI with plus",
			steps:      []step{{code: func(cli string) string { return cli }}},
			wantStatus: otp.StatusApproved,
		},
		{
			name:       "whole CLI without plus",
			steps:      []step{{code: func(cli string) string { return strings.TrimPrefix(cli, "+") }}},
			wantStatus: otp.StatusApproved,
		},
		{
			name:       "code with plus",
			steps:      []step{{code: func(cli string) string { return "+" + codeOf(cli) }}},
			wantStatus: otp.StatusApproved,
		},
		{
			// A UK call log shows +44207946NNNN as 0207946NNNN.
			name:       "whole CLI in national form",
			steps:      []step{{code: func(cli string) string { return "0" + strings.TrimPrefix(cli, "+44") }}},
			wantStatus: otp.StatusApproved,
		},
		{
			name:       "whole CLI in 00 international form",
			steps:      []step{{code: func(cli string) string { return "00" + strings.TrimPrefix(cli, "+") }}},
			wantStatus: otp.StatusApproved,
		},
		{
			name: "whole CLI ending in a wrong code",
			steps: []step{
				{code: func(cli string) string { return cli[:len(cli)-4] + wrongCode(codeOf(cli)) }, want: fault.InvalidCode, wantRemaining: 4},
			},
			wantStatus:   otp.StatusPending,
			wantAttempts: 1,
		},
		{
			name: "attempts used up",
			steps: []step{
				{code: wrong, want: fault.InvalidCode, wantRemaining: 4},
				{code: wrong, want: fault.InvalidCode, wantRemaining: 3},
				{code: wrong, want: fault.InvalidCode, wantRemaining: 2},
				{code: wrong, want: fault.InvalidCode, wantRemaining: 1},
				{code: wrong, want: fault.MaxAttempts},
				{code: wrong, want: fault.MaxAttempts},
				{code: right, want: fault.MaxAttempts},
			},
			wantStatus:   otp.StatusFailed,
			wantAttempts: testMaxAttempts,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v, cli := e.send(t)
			for i, s := range tt.steps {
				got, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: s.code(cli)})
				if s.want == "" {
					if err != nil {
						t.Fatalf("step %d: Verify: %v", i, err)
					}
					if got.Status != otp.StatusApproved || got.ID != v.ID {
						t.Fatalf("step %d: got %s status %s, want %s approved", i, got.ID, got.Status, v.ID)
					}
					continue
				}
				oe := wantErr(t, err, s.want)
				if s.want == fault.InvalidCode {
					if oe.AttemptsRemaining == nil || *oe.AttemptsRemaining != s.wantRemaining {
						t.Errorf("step %d: attempts_remaining = %v, want %d", i, oe.AttemptsRemaining, s.wantRemaining)
					}
				} else if oe.AttemptsRemaining != nil {
					t.Errorf("step %d: %v carries attempts_remaining %d", i, s.want, *oe.AttemptsRemaining)
				}
			}
			st := e.status(t, v.ID)
			if st.Status != tt.wantStatus || st.Attempts != tt.wantAttempts || st.AttemptsRemaining != testMaxAttempts-tt.wantAttempts {
				t.Errorf("status %s attempts %d remaining %d, want %s %d %d",
					st.Status, st.Attempts, st.AttemptsRemaining, tt.wantStatus, tt.wantAttempts, testMaxAttempts-tt.wantAttempts)
			}
		})
	}
}

// A verification whose attempts are used up is failed from that attempt on: listed as failed, not pending,
// found by recipient (410, as before), never expired by the sweeper, and not resendable.
func TestVerifyAttemptsUsedUpFails(t *testing.T) {
	e := newEnv(t)
	v, cli := e.send(t)
	e.send(t) // a second verification, which stays pending and so expires
	for i := 1; i <= testMaxAttempts; i++ {
		_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: wrongCode(codeOf(cli))})
		if i < testMaxAttempts {
			wantErr(t, err, fault.InvalidCode)
			if st := e.status(t, v.ID); st.Status != otp.StatusPending {
				t.Fatalf("after %d wrong codes: %s, want pending", i, st.Status)
			}
			continue
		}
		wantErr(t, err, fault.MaxAttempts)
	}
	if st := e.status(t, v.ID); st.Status != otp.StatusFailed || st.AttemptsRemaining != 0 {
		t.Errorf("status %s, %d attempts left; want failed, 0", st.Status, st.AttemptsRemaining)
	}
	listed := func(status otp.Status) bool {
		t.Helper()
		page, err := e.svc.List(t.Context(), otp.Query{AppID: "demo", Status: string(status), Limit: 10})
		if err != nil {
			t.Fatalf("List(%s): %v", status, err)
		}
		return slices.ContainsFunc(page.Items, func(x otp.Verification) bool { return x.ID == v.ID })
	}
	if !listed(otp.StatusFailed) || listed(otp.StatusPending) {
		t.Errorf("listed under failed %v, under pending %v; want failed only", listed(otp.StatusFailed), listed(otp.StatusPending))
	}
	_, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID})
	wantErr(t, err, fault.MaxAttempts)

	e.clock.Advance(testTTL + time.Second)
	if n, err := e.svc.SweepExpired(t.Context()); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1 (only the pending one)", n, err)
	}
	if st := e.status(t, v.ID); st.Status != otp.StatusFailed {
		t.Errorf("after its TTL: %s, want still failed", st.Status)
	}
	_, err = e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)})
	wantErr(t, err, fault.MaxAttempts)
	if n, err := e.db.Count(store.ExpiryIndex...); err != nil || n != 0 {
		t.Errorf("expiry index holds %d keys (%v), want none", n, err)
	}
}

// Verify by recipient finds a verification whose attempts are used up, within its TTL, and answers for it.
func TestVerifyByRecipientAttemptsUsedUp(t *testing.T) {
	e := newEnv(t)
	v, cli := e.send(t)
	for range testMaxAttempts {
		e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: wrongCode(codeOf(cli))})
	}
	_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", Recipient: usRecipient, Code: codeOf(cli)})
	wantErr(t, err, fault.MaxAttempts)
}

func TestVerifyExpiry(t *testing.T) {
	tests := []struct {
		name       string
		advance    time.Duration
		want       fault.Code
		wantStatus otp.Status
	}{
		{"just before expires_at", testTTL - time.Nanosecond, "", otp.StatusApproved},
		{"at expires_at", testTTL, fault.Expired, otp.StatusExpired},
		{"long after", 24 * time.Hour, fault.Expired, otp.StatusExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v, cli := e.send(t)
			e.clock.Advance(tt.advance)
			if tt.want != "" {
				// Status says expired before any verify wrote it.
				if st := e.status(t, v.ID); st.Status != otp.StatusExpired {
					t.Errorf("Status before verify = %s, want expired", st.Status)
				}
			}
			_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			} else {
				wantErr(t, err, tt.want)
				// And stays so, for right and wrong codes alike.
				_, err = e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: wrongCode(codeOf(cli))})
				wantErr(t, err, tt.want)
			}
			if st := e.status(t, v.ID); st.Status != tt.wantStatus {
				t.Errorf("Status = %s, want %s", st.Status, tt.wantStatus)
			}
		})
	}
}

func TestVerifyOtherApp(t *testing.T) {
	e := newEnv(t)
	v, cli := e.send(t)
	for _, code := range []string{codeOf(cli), wrongCode(codeOf(cli))} {
		_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "other", VerificationID: v.ID, Code: code})
		wantErr(t, err, fault.NotFound)
	}
	_, err := e.svc.Status(t.Context(), "other", v.ID)
	wantErr(t, err, fault.NotFound)
	// Another app's tries cost the owner nothing.
	if st := e.status(t, v.ID); st.Status != otp.StatusPending || st.Attempts != 0 {
		t.Errorf("status %s attempts %d after another app's verify, want pending 0", st.Status, st.Attempts)
	}
	if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)}); err != nil {
		t.Errorf("owner's Verify: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	unknown := "otp_" + ulid.Make().String()
	tests := []struct {
		name string
		id   func(real string) string
		code func(cli string) string
		want fault.Code
	}{
		{"code letters", nil, func(string) string { return "abcd" }, fault.InvalidRequest},
		{"code with CRLF", nil, func(cli string) string { return codeOf(cli)[:2] + "\r\n" + codeOf(cli)[2:] }, fault.InvalidRequest},
		{"code then CRLF", nil, func(cli string) string { return codeOf(cli) + "\r\nX: y" }, fault.InvalidRequest},
		{"code too short", nil, func(cli string) string { return codeOf(cli)[:3] }, fault.InvalidRequest},
		{"code empty", nil, func(string) string { return "" }, fault.InvalidRequest},
		{"code only plus", nil, func(string) string { return "+" }, fault.InvalidRequest},
		{"code too long", nil, func(string) string { return "1234567890123456" }, fault.InvalidRequest},
		{"code with space", nil, func(cli string) string { return codeOf(cli)[:2] + " " + codeOf(cli)[2:] }, fault.InvalidRequest},
		{"code in other digits", nil, func(string) string { return "١٢٣٤" }, fault.InvalidRequest},
		{"id empty", func(string) string { return "" }, nil, fault.InvalidRequest},
		{"id letters", func(string) string { return "abc" }, nil, fault.InvalidRequest},
		{"id without prefix", func(id string) string { return strings.TrimPrefix(id, "otp_") }, nil, fault.InvalidRequest},
		{"id too short", func(id string) string { return id[:len(id)-1] }, nil, fault.InvalidRequest},
		{"id with CRLF", func(id string) string { return id + "\r\n" }, nil, fault.InvalidRequest},
		{"id with bad character", func(id string) string { return id[:len(id)-1] + "U" }, nil, fault.InvalidRequest},
		{"id unknown", func(string) string { return unknown }, nil, fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v, cli := e.send(t)
			id, code := v.ID, codeOf(cli)
			if tt.id != nil {
				id = tt.id(v.ID)
			}
			if tt.code != nil {
				code = tt.code(cli)
			}
			_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: id, Code: code})
			wantErr(t, err, tt.want)
			if tt.id != nil {
				_, err := e.svc.Status(t.Context(), "demo", id)
				wantErr(t, err, tt.want)
			}
			if st := e.status(t, v.ID); st.Attempts != 0 || st.Status != otp.StatusPending {
				t.Errorf("status %s attempts %d after malformed verify, want pending 0", st.Status, st.Attempts)
			}
		})
	}
}

func TestCallOutcome(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 9, 27, 0, 0, time.UTC)
	type ended struct {
		trunk string
		res   call.Result
	}
	tests := []struct {
		name       string
		ends       []ended
		wantStatus otp.Status
		wantState  call.State
		wantCode   int
		wantReason call.Reason
		wantVerify fault.Code // with the right code; "": approved
	}{
		{
			name:       "busy before ring",
			ends:       []ended{{"phone", call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486, StartedAt: t0, EndedAt: t0.Add(time.Second)}}},
			wantStatus: otp.StatusFailed, wantState: call.StateFailed, wantCode: 486, wantReason: call.ReasonBusy,
			wantVerify: fault.Undeliverable,
		},
		{
			name:       "declined after ring",
			ends:       []ended{{"phone", call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486, Rang: true, Responded: true, StartedAt: t0, RingingAt: t0, EndedAt: t0.Add(time.Second)}}},
			wantStatus: otp.StatusPending, wantState: call.StateFailed, wantCode: 486, wantReason: call.ReasonBusy,
		},
		{
			name:       "missed",
			ends:       []ended{{"phone", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, StartedAt: t0, RingingAt: t0, EndedAt: t0.Add(time.Second)}}},
			wantStatus: otp.StatusPending, wantState: call.StateMissed, wantCode: 487,
		},
		{
			name:       "answered",
			ends:       []ended{{"phone", call.Result{State: call.StateAnswered, SIPCode: 200, Rang: true, Responded: true, StartedAt: t0, EndedAt: t0.Add(time.Second)}}},
			wantStatus: otp.StatusPending, wantState: call.StateAnswered, wantCode: 200,
		},
		{
			name: "second outcome ignored",
			ends: []ended{
				{"phone", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, StartedAt: t0, EndedAt: t0.Add(time.Second)}},
				{"backup", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, SIPCode: 503, StartedAt: t0, EndedAt: t0.Add(2 * time.Second)}},
			},
			wantStatus: otp.StatusPending, wantState: call.StateMissed, wantCode: 487,
		},
		{
			name: "failure then late missed ignored",
			ends: []ended{
				{"phone", call.Result{State: call.StateFailed, Reason: call.ReasonNotFound, SIPCode: 404, Responded: true, StartedAt: t0, EndedAt: t0.Add(time.Second)}},
				{"phone", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, StartedAt: t0, EndedAt: t0.Add(2 * time.Second)}},
			},
			wantStatus: otp.StatusFailed, wantState: call.StateFailed, wantCode: 404, wantReason: call.ReasonNotFound,
			wantVerify: fault.Undeliverable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v, cli := e.send(t)
			for _, end := range tt.ends {
				e.svc.CallEnded(v.ID, end.trunk, cli, end.res)
			}
			first := tt.ends[0]
			st := e.status(t, v.ID)
			if st.Status != tt.wantStatus || st.Call.State != tt.wantState || st.Call.SIPCode != tt.wantCode || st.Call.Reason != string(tt.wantReason) {
				t.Errorf("status %s call %s %d %q, want %s call %s %d %q",
					st.Status, st.Call.State, st.Call.SIPCode, st.Call.Reason, tt.wantStatus, tt.wantState, tt.wantCode, tt.wantReason)
			}
			if st.Call.Trunk != first.trunk {
				t.Errorf("call.trunk = %q, want %q", st.Call.Trunk, first.trunk)
			}
			if st.Call.EndedAt == nil || !st.Call.EndedAt.Equal(first.res.EndedAt) {
				t.Errorf("call.ended_at = %v, want %v", st.Call.EndedAt, first.res.EndedAt)
			}
			if st.Call.StartedAt == nil || !st.Call.StartedAt.Equal(first.res.StartedAt) {
				t.Errorf("call.started_at = %v, want %v", st.Call.StartedAt, first.res.StartedAt)
			}
			_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)})
			if tt.wantVerify == "" {
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, tt.wantVerify)
			if st := e.status(t, v.ID); st.Attempts != 0 {
				t.Errorf("attempts = %d after verifying an undeliverable code, want 0", st.Attempts)
			}
		})
	}
}

func TestCallProgress(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	e := newEnv(t)
	v, cli := e.send(t)

	e.svc.CallProgress(v.ID, "phone", call.StateDialing, t0)
	st := e.status(t, v.ID)
	if st.Call.State != call.StateDialing || st.Call.Trunk != "phone" || st.Call.StartedAt == nil || !st.Call.StartedAt.Equal(t0) {
		t.Fatalf("after dialing call = %+v, want dialing on phone started %v", st.Call, t0)
	}
	if st.Call.StartedAt.Location() != time.UTC {
		t.Errorf("started_at %v is not UTC", st.Call.StartedAt)
	}
	if st.Call.PostDialDelayMS != nil {
		t.Errorf("post_dial_delay_ms = %d before ringing, want null", *st.Call.PostDialDelayMS)
	}

	e.svc.CallProgress(v.ID, "phone", call.StateRinging, t0.Add(41*time.Millisecond))
	st = e.status(t, v.ID)
	if st.Call.State != call.StateRinging || st.Call.PostDialDelayMS == nil || *st.Call.PostDialDelayMS != 41 {
		t.Fatalf("after ringing call = %+v, want ringing with post_dial_delay_ms 41", st.Call)
	}
	if !st.Call.StartedAt.Equal(t0) {
		t.Errorf("ringing moved started_at to %v", st.Call.StartedAt)
	}

	e.svc.CallEnded(v.ID, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true,
		StartedAt: t0, RingingAt: t0.Add(41 * time.Millisecond), EndedAt: t0.Add(60 * time.Millisecond)})
	// Progress after the outcome changes nothing.
	e.svc.CallProgress(v.ID, "backup", call.StateDialing, t0.Add(time.Second))
	st = e.status(t, v.ID)
	if st.Call.State != call.StateMissed || st.Call.Trunk != "phone" || !st.Call.StartedAt.Equal(t0) || *st.Call.PostDialDelayMS != 41 {
		t.Errorf("after the outcome call = %+v, want missed on phone as before", st.Call)
	}
	if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestCallReportsForUnknownIDs(t *testing.T) {
	e := newEnv(t)
	id := "otp_" + ulid.Make().String()
	// Reports for a verification that is gone (a refused send) are logged, not stored.
	e.svc.CallProgress(id, "phone", call.StateDialing, time.Now())
	e.svc.CallEnded(id, "phone", "+442079460000", call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted})
	if n := e.count(t); n != 0 {
		t.Errorf("store holds %d records, want none", n)
	}
}

func TestRecover(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 9, 27, 0, 0, time.UTC)
	tests := []struct {
		name       string
		setup      func(s *otp.Service, id, cli string)
		wantStatus otp.Status
		wantState  call.State
		wantReason string
		wantCode   int
		wantEnded  bool // counted by Recover
		wantVerify fault.Code
	}{
		{
			// Call states are recorded after the SIP event: even a queued call may have gone out.
			name:       "queued",
			setup:      func(*otp.Service, string, string) {},
			wantStatus: otp.StatusPending, wantState: call.StateFailed, wantReason: "interrupted", wantEnded: true,
		},
		{
			name: "dialing",
			setup: func(s *otp.Service, id, cli string) {
				s.CallProgress(id, "phone", call.StateDialing, t0)
			},
			wantStatus: otp.StatusPending, wantState: call.StateFailed, wantReason: "interrupted", wantEnded: true,
		},
		{
			name: "ringing",
			setup: func(s *otp.Service, id, cli string) {
				s.CallProgress(id, "phone", call.StateDialing, t0)
				s.CallProgress(id, "phone", call.StateRinging, t0.Add(time.Second))
			},
			wantStatus: otp.StatusPending, wantState: call.StateFailed, wantReason: "interrupted", wantEnded: true,
		},
		{
			name: "missed",
			setup: func(s *otp.Service, id, cli string) {
				s.CallEnded(id, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, StartedAt: t0, EndedAt: t0})
			},
			wantStatus: otp.StatusPending, wantState: call.StateMissed, wantCode: 487,
		},
		{
			name: "failed",
			setup: func(s *otp.Service, id, cli string) {
				s.CallEnded(id, "phone", cli, call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486, StartedAt: t0, EndedAt: t0})
			},
			wantStatus: otp.StatusFailed, wantState: call.StateFailed, wantReason: "busy", wantCode: 486,
			wantVerify: fault.Undeliverable,
		},
	}

	// All the cases share one store, as after a crash: one Recover must end exactly the unfinished calls.
	e := newEnv(t)
	ids := make([]string, len(tests))
	clis := make([]string, len(tests))
	wantN := 0
	for i, tt := range tests {
		v, cli := e.send(t)
		tt.setup(e.svc, v.ID, cli)
		ids[i], clis[i] = v.ID, cli
		if tt.wantEnded {
			wantN++
		}
	}
	e.clock.Advance(time.Minute)
	n, err := e.svc.Recover(t.Context())
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if n != wantN {
		t.Errorf("Recover ended %d calls, want %d", n, wantN)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := e.status(t, ids[i])
			if st.Status != tt.wantStatus || st.Call.State != tt.wantState || st.Call.Reason != tt.wantReason || st.Call.SIPCode != tt.wantCode {
				t.Errorf("status %s call %s %q %d, want %s call %s %q %d",
					st.Status, st.Call.State, st.Call.Reason, st.Call.SIPCode, tt.wantStatus, tt.wantState, tt.wantReason, tt.wantCode)
			}
			if tt.wantEnded && (st.Call.EndedAt == nil || !st.Call.EndedAt.Equal(e.clock.Now())) {
				t.Errorf("call.ended_at = %v, want the recovery time %v", st.Call.EndedAt, e.clock.Now())
			}
			_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: ids[i], Code: codeOf(clis[i])})
			if tt.wantVerify == "" {
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, tt.wantVerify)
		})
	}

	// A second Recover finds nothing left to end.
	if n, err := e.svc.Recover(t.Context()); err != nil || n != 0 {
		t.Errorf("second Recover = %d, %v, want 0, nil", n, err)
	}
}

// fakeNumbers draws the CLI it is given, or fails with err, and records what it is asked.
type fakeNumbers struct {
	mu      sync.Mutex
	picked  numberpool.Picked
	err     error
	picks   []numberpool.PickRequest
	rejects []rejection
}

type rejection struct {
	cli     string
	sipCode int
	reason  string
	rang    bool
}

var _ otp.Numbers = (*fakeNumbers)(nil)

func (n *fakeNumbers) Pick(_ context.Context, req numberpool.PickRequest) (numberpool.Picked, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.picks = append(n.picks, req)
	return n.picked, n.err
}

func (n *fakeNumbers) Reject(_ context.Context, cli string, sipCode int, reason string, rang bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rejects = append(n.rejects, rejection{cli, sipCode, reason, rang})
}

func (n *fakeNumbers) DialNumber(string, string) (string, error) {
	return "", errors.New("no inbound numbers")
}
func (n *fakeNumbers) HasNumber(string, string) bool { return false }

func (n *fakeNumbers) rejected() []rejection {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]rejection(nil), n.rejects...)
}

// newFakeEnv returns a service over a real store whose CLIs come from n.
func newFakeEnv(t *testing.T, n *fakeNumbers) *env {
	t.Helper()
	e := &env{db: storetest.Open(t), dial: &fakes.Dialer{}, clock: newClock()}
	e.svc = otp.New(otp.Config{Apps: testApps(t, e.db, 4, "demo"), Dialer: e.dial, Now: e.clock.Now, Key: e.db.Key()}, e.db.Verifications(), n, quietLog())
	return e
}

var fakePicked = numberpool.Picked{
	CLI: "+442079461234", Prefix: "+44207946", Code: "1234", Trunks: []string{"carrier-gb"},
	Pattern: `^\+?(?:44207946[0-9]{4})$`, Pool: "demo", Entry: "e1",
}

// Send asks the pool for the app, the pool named by from, the normalized recipient, its country and the code
// length, and passes the CLI and its trunks to the dialer.
func TestSendPickRequest(t *testing.T) {
	tests := []struct {
		name string
		req  otp.SendRequest
		want numberpool.PickRequest
	}{
		{"defaults", otp.SendRequest{AppID: "demo", Recipient: "14155552671", Channel: "flashcall"},
			numberpool.PickRequest{App: "demo", Recipient: "+14155552671", Country: "US", CodeLength: 4}},
		{"pool and code length", otp.SendRequest{AppID: "demo", Recipient: "+33612345678", Channel: "flashcall", From: "demo", CodeLength: 6},
			numberpool.PickRequest{App: "demo", Pool: "demo", Recipient: "+33612345678", Country: "FR", CodeLength: 6}},
		{"GB recipient", otp.SendRequest{AppID: "demo", Recipient: "+447400123456", Channel: "flashcall"},
			numberpool.PickRequest{App: "demo", Recipient: "+447400123456", Country: "GB", CodeLength: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &fakeNumbers{picked: fakePicked}
			e := newFakeEnv(t, n)
			v, err := e.svc.Send(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(n.picks) != 1 || n.picks[0] != tt.want {
				t.Errorf("Pick requests = %+v, want %+v", n.picks, tt.want)
			}
			r := e.dial.Last(t)
			if r.CLI != fakePicked.CLI || !slices.Equal(r.Trunks, fakePicked.Trunks) || r.To != tt.want.Recipient {
				t.Errorf("dialer request = %+v, want CLI %s on trunks %v", r, fakePicked.CLI, fakePicked.Trunks)
			}
			if v.CLIPrefix != fakePicked.Prefix || v.CLIPattern != fakePicked.Pattern {
				t.Errorf("cli_prefix %q cli_pattern %q, want %q %q", v.CLIPrefix, v.CLIPattern, fakePicked.Prefix, fakePicked.Pattern)
			}
			if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: fakePicked.Code}); err != nil {
				t.Errorf("Verify with the picked code: %v", err)
			}
		})
	}
}

// What the pool refuses is the API's error as the pool says it, and nothing is stored or dialed.
func TestSendPickErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want fault.Code // "": not a *fault.Error (internal)
	}{
		{"unknown pool", fault.Errorf(fault.InvalidRequest, "from: not found: app demo has no pool \"x\""), fault.InvalidRequest},
		{"code space", fault.Errorf(fault.InvalidRequest, "code_length: %w: 4-digit codes give app demo only 10 codes", numberpool.ErrCodeSpace), fault.InvalidRequest},
		{"no numbers for the destination", fault.Errorf(fault.DestinationBlocked, "%w: app demo has no caller ID for US", numberpool.ErrNoNumbers), fault.DestinationBlocked},
		{"exhausted", fault.Errorf(fault.Unavailable, "%w: all in cooldown", numberpool.ErrExhausted), fault.Unavailable},
		{"store failure", errors.New("disk on fire"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, &fakeNumbers{err: tt.err})
			_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall"})
			var oe *fault.Error
			if tt.want != "" {
				wantErr(t, err, tt.want)
			} else if !errors.Is(err, tt.err) || errors.As(err, &oe) {
				t.Errorf("Send error = %v, want the pool's own error", err)
			}
			if n := len(e.dial.Requests()) + len(e.dial.Refused()); n != 0 {
				t.Errorf("dialer got %d calls, want none", n)
			}
			if n := e.count(t); n != 0 {
				t.Errorf("store holds %d records, want none", n)
			}
		})
	}
}

// A call that failed with a final answer goes to the pool with its CLI, code, phrase and whether it rang;
// the pool decides about quarantine. Calls that got no final failure do not.
func TestCallEndedRejects(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 9, 27, 0, 0, time.UTC)
	tests := []struct {
		name string
		res  call.Result
		want []rejection
	}{
		{"403 before ringing", call.Result{State: call.StateFailed, Reason: call.ReasonRejected, SIPCode: 403, Phrase: "Forbidden", Responded: true, StartedAt: t0, EndedAt: t0},
			[]rejection{{fakePicked.CLI, 403, "Forbidden", false}}},
		{"603 after ringing", call.Result{State: call.StateFailed, Reason: call.ReasonRejected, SIPCode: 603, Phrase: "Decline", Rang: true, Responded: true, StartedAt: t0, RingingAt: t0, EndedAt: t0},
			[]rejection{{fakePicked.CLI, 603, "Decline", true}}},
		{"503", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, SIPCode: 503, Phrase: "Service Unavailable", Responded: true, StartedAt: t0, EndedAt: t0},
			[]rejection{{fakePicked.CLI, 503, "Service Unavailable", false}}},
		{"timeout, no answer", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, StartedAt: t0, EndedAt: t0}, nil},
		{"missed", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, StartedAt: t0, RingingAt: t0, EndedAt: t0}, nil},
		{"answered", call.Result{State: call.StateAnswered, SIPCode: 200, Rang: true, Responded: true, StartedAt: t0, RingingAt: t0, EndedAt: t0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &fakeNumbers{picked: fakePicked}
			e := newFakeEnv(t, n)
			v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: "flashcall"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			e.svc.CallEnded(v.ID, "carrier-gb", fakePicked.CLI, tt.res)
			if got := n.rejected(); !slices.Equal(got, tt.want) {
				t.Errorf("Reject calls = %+v, want %+v", got, tt.want)
			}
			if st := e.status(t, v.ID); st.Call.State != tt.res.State || st.Call.SIPCode != tt.res.SIPCode {
				t.Errorf("call = %s %d, want %s %d", st.Call.State, st.Call.SIPCode, tt.res.State, tt.res.SIPCode)
			}
		})
	}
}

// End to end with the real registry: a trunk's 403 before ringing quarantines the CLI; a busy phone does not.
func TestCallEndedQuarantinesCLI(t *testing.T) {
	tests := []struct {
		name       string
		res        call.Result
		quarantine bool
	}{
		{"403 before ringing", call.Result{State: call.StateFailed, Reason: call.ReasonRejected, SIPCode: 403, Phrase: "Forbidden", Responded: true}, true},
		{"403 after ringing naming the caller", call.Result{State: call.StateFailed, Reason: call.ReasonRejected, SIPCode: 403, Phrase: "Caller ID not allowed", Rang: true, Responded: true}, true},
		{"486 busy", call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486, Phrase: "Busy Here", Responded: true}, false},
		{"missed", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v, cli := e.send(t)
			e.svc.CallEnded(v.ID, "phone", cli, tt.res)
			reports, _ := e.pools.Pools()
			var q map[string]numberpool.Quarantine
			for _, r := range reports {
				if r.Name == "demo" {
					q = r.Quarantine
				}
			}
			if _, ok := q["cli:"+cli[:len(cli)-4]+"****"]; ok != tt.quarantine {
				t.Errorf("quarantine of demo = %v, want cli:%s quarantined: %v", q, cli, tt.quarantine)
			}
		})
	}
}

// A recipient whose country has local numbers gets one; cli_pattern matches the CLI, with any code.
func TestSendLocalNumbersAndPattern(t *testing.T) {
	db := storetest.Open(t)
	c := newClock()
	pools, err := numberpool.NewRegistry(t.Context(), numberpool.Config{Apps: map[string][]string{"demo": {"demo"}}, CodeLength: 4, MinCodeSpace: 10000, Key: db.Key(), Now: c.Now, Log: quietLog()},
		db,
		[]numberpool.Pool{numberpool.Pool{Name: "demo", Entries: []numberpool.Entry{
			{Numbers: []string{"+44207946XXXX"}, Enabled: true},
			{Numbers: []string{"+33198765XXXX"}, Countries: []string{"FR"}, Trunks: []string{"carrier-fr"}, Enabled: true},
		}}.WithDefaults()})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() { pools.Close() })
	d := &fakes.Dialer{}
	svc := otp.New(otp.Config{Apps: testApps(t, db, 4, "demo"), Dialer: d, Now: c.Now, Key: db.Key()}, db.Verifications(), pools, quietLog())
	national := func(cli string) string { return "0" + strings.TrimPrefix(cli, "+44") } // a GB phone's call log
	tests := []struct {
		recipient string
		prefix    string
		trunks    []string
		national  bool // whether a phone of the recipient shows the CLI as national (0207946…)
	}{
		{frRecipient, "+33198765", []string{"carrier-fr"}, false},
		{usRecipient, "+44207946", nil, false},
		{gbRecipient, "+44207946", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.recipient, func(t *testing.T) {
			v, err := svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: tt.recipient, Channel: "flashcall"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := d.Last(t)
			if v.CLIPrefix != tt.prefix || !strings.HasPrefix(r.CLI, tt.prefix) || !slices.Equal(r.Trunks, tt.trunks) {
				t.Errorf("cli_prefix %q, CLI %s on trunks %v; want %s… on %v", v.CLIPrefix, r.CLI, r.Trunks, tt.prefix, tt.trunks)
			}
			re, err := regexp.Compile(v.CLIPattern)
			if err != nil {
				t.Fatalf("cli_pattern %q: %v", v.CLIPattern, err)
			}
			for _, s := range []string{r.CLI, strings.TrimPrefix(r.CLI, "+"), v.CLIPrefix + wrongCode(codeOf(r.CLI))} {
				if !re.MatchString(s) {
					t.Errorf("cli_pattern %q does not match %s", v.CLIPattern, s)
				}
			}
			if got := re.MatchString(national(r.CLI)); got != tt.national && strings.HasPrefix(r.CLI, "+44") {
				t.Errorf("cli_pattern %q matches the national form %s: %v, want %v", v.CLIPattern, national(r.CLI), got, tt.national)
			}
			if tt.national { // and verify takes what the pattern matched
				if _, err := svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: national(r.CLI)}); err != nil {
					t.Errorf("Verify(%s): %v", national(r.CLI), err)
				}
			}
		})
	}
}

// An engine before issue 18 listed the calls without an outcome in an index; Recover still ends those it
// lists, however old, and empties it.
func TestRecoverListedOpenCalls(t *testing.T) {
	e := newEnv(t)
	v, _ := e.send(t) // its call queued: in flight
	if err := e.db.Batch(func(tx *store.Tx) error { return tx.Put("v_open_calls", v.ID, nil) }); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(48 * time.Hour) // older than any record Recover reads for calls in flight
	if n, err := e.svc.Recover(t.Context()); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v, want 1", n, err)
	}
	if st := e.status(t, v.ID); st.Call.State != call.StateFailed || st.Call.Reason != "interrupted" {
		t.Errorf("call %s %q, want failed interrupted", st.Call.State, st.Call.Reason)
	}
	if n, err := e.db.Count("v_open_calls"); err != nil || n != 0 {
		t.Errorf("the open-call list holds %d keys (%v), want none", n, err)
	}
}

// flakyStore is a Store whose writes fail, as a store out of reach, while down is set.
type flakyStore struct {
	otp.Store
	down atomic.Bool
}

func (f *flakyStore) Update(ctx context.Context, fn func(tx otp.Tx) error) error {
	if f.down.Load() {
		return fault.Errorf(fault.Unavailable, "the store is out of reach")
	}
	return f.Store.Update(ctx, fn)
}

// An outcome the store failed to take is written again (RecordUnrecorded, every second in Run) once the
// store is back: the call does not stay in flight while its engine lives on.
func TestOutcomeWrittenAgain(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.db.Verifications()}
	e.svc = otp.New(otp.Config{Apps: testApps(t, e.db, 4, "demo"), Dialer: e.dial, Now: e.clock.Now, Key: e.db.Key()}, flaky, e.pools, quietLog())
	v, cli := e.send(t)
	flaky.down.Store(true)
	e.svc.CallEnded(v.ID, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, StartedAt: e.clock.Now(), EndedAt: e.clock.Now()})
	if n, err := e.svc.RecordUnrecorded(t.Context()); n != 1 || err == nil {
		t.Fatalf("RecordUnrecorded with the store down = %d, %v; want the outcome still waiting", n, err)
	}
	flaky.down.Store(false)
	if st := e.status(t, v.ID); st.Call.State != call.StateQueued {
		t.Fatalf("call %s before the outcome is written again, want queued", st.Call.State)
	}
	if n, err := e.svc.RecordUnrecorded(t.Context()); n != 0 || err != nil {
		t.Fatalf("RecordUnrecorded with the store back = %d, %v", n, err)
	}
	if st := e.status(t, v.ID); st.Call.State != call.StateMissed || st.Call.SIPCode != 487 {
		t.Errorf("call %s %d after the outcome was written again, want missed 487", st.Call.State, st.Call.SIPCode)
	}
}

// A stop with an outcome the store never took is not a clean stop: the next start finds the call in flight
// and ends it as interrupted.
func TestUnrecordedOutcomeLeavesStopUnclean(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.db.Verifications()}
	cfg := otp.Config{Apps: testApps(t, e.db, 4, "demo"), Dialer: e.dial, Now: e.clock.Now, Key: e.db.Key()}
	e.svc = otp.New(cfg, flaky, e.pools, quietLog())
	if _, err := e.svc.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	v, cli := e.send(t)
	flaky.down.Store(true)
	e.svc.CallEnded(v.ID, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, StartedAt: e.clock.Now(), EndedAt: e.clock.Now()})
	flaky.down.Store(false)
	if err := e.svc.FlushReports(t.Context(), true); err != nil { // the stop, its outcome not retried
		t.Fatal(err)
	}
	next := otp.New(cfg, e.db.Verifications(), e.pools, quietLog())
	if n, err := next.Recover(t.Context()); err != nil || n != 1 {
		t.Fatalf("the next start's Recover = %d, %v; want the call ended", n, err)
	}
	if st, _ := next.Status(t.Context(), "demo", v.ID); st.Call.State != call.StateFailed || st.Call.Reason != "interrupted" {
		t.Errorf("call %s/%s after the next start, want failed/interrupted", st.Call.State, st.Call.Reason)
	}
}
