package otp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/fault"
	"flashotp/internal/apptest"
	"flashotp/internal/fakes"
	"flashotp/internal/storetest"
	"flashotp/limits"
	"flashotp/otp"
)

// fakeNotifier records the webhooks queued, and answers pre-send hooks with allow.
type fakeNotifier struct {
	mu    sync.Mutex
	hooks []otp.WebhookBody
	allow bool
}

var _ otp.Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) Enqueue(_ otp.Outbox, _, _ string, body []byte) error {
	var b otp.WebhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hooks = append(n.hooks, b)
	return nil
}

func (n *fakeNotifier) PreSend(context.Context, apps.App, []byte) (bool, error) { return n.allow, nil }

func (n *fakeNotifier) events() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, h := range n.hooks {
		out = append(out, h.Event)
	}
	return out
}

// newAppEnv is newEnv with app demo's settings changed by tune, webhooks to n, and retention.
func newAppEnv(t *testing.T, n *fakeNotifier, retention time.Duration, tune func(a *apps.App)) *env {
	t.Helper()
	e := &env{db: storetest.Open(t), dial: &fakes.Dialer{}, clock: newClock()}
	e.pools = newRegistry(t, e.db, e.clock.Now, 4, 10000, map[string]string{"demo": "+44207946XXXX"})
	demo := apptest.App("demo", "demo-key", "demo-secret")
	demo.WebhookURL = "http://127.0.0.1:9/hooks"
	if tune != nil {
		tune(&demo.App)
	}
	reg := apptest.Open(t, e.db, apps.Defaults{CodeLength: 4, TTL: testTTL, MaxAttempts: testMaxAttempts}, nil, demo)
	e.svc = otp.New(otp.Config{Apps: reg, Dialer: e.dial, Notifier: n, Retention: retention, Now: e.clock.Now, Key: e.db.Key()}, e.db.Verifications(), e.pools, quietLog())
	return e
}

// ref returns the ID the dialer got with verification id's newest call, as it passes it back.
func (e *env) ref(id string) string {
	rs := e.dial.Requests()
	for i := len(rs) - 1; i >= 0; i-- {
		if strings.HasPrefix(rs[i].ID, id) {
			return rs[i].ID
		}
	}
	return id
}

// missed ends verification id's newest call as missed.
func (e *env) missed(id string) {
	now := e.clock.Now()
	e.svc.CallEnded(e.ref(id), "phone", "", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true,
		StartedAt: now.Add(-40 * time.Millisecond), RingingAt: now.Add(-10 * time.Millisecond), EndedAt: now})
}

func wantCode(t *testing.T, err error, code fault.Code) *fault.Error {
	t.Helper()
	var e *fault.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	return e
}

func TestResend(t *testing.T) {
	n := &fakeNotifier{}
	e := newAppEnv(t, n, 0, nil)
	v, cli := e.send(t)
	resend := func() (otp.Verification, error) {
		return e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID})
	}
	if _, err := resend(); wantCode(t, err, fault.ResendTooSoon).RetryAfter != 30*time.Second {
		t.Errorf("resend at once: retry after %s, want the 30s cooldown", err.(*fault.Error).RetryAfter)
	}
	e.clock.Advance(31 * time.Second)
	if _, err := resend(); !strings.Contains(err.Error(), "still queued") {
		t.Errorf("resend while the call is in flight: %v", err)
	}
	e.missed(v.ID)
	if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: wrongCode(codeOf(cli))}); !errors.Is(err, fault.InvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	r, err := resend()
	if err != nil || r.Resends != 1 || r.Attempts != 1 || r.Call.State != call.StateQueued || !r.ExpiresAt.Equal(e.clock.Now().UTC().Add(testTTL)) {
		t.Fatalf("resend: %+v %v; want resends 1, attempts kept, a queued call, a fresh TTL", r, err)
	}
	newCLI := e.dial.Last(t).CLI
	if codeOf(newCLI) != codeOf(cli) {
		if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli)}); !errors.Is(err, fault.InvalidCode) {
			t.Fatalf("old code after resend: %v", err)
		}
	}
	// Two more resends are allowed (max_resends 3), the fourth is refused.
	for i := 2; i <= 4; i++ {
		e.missed(v.ID)
		e.clock.Advance(31 * time.Second)
		_, err := resend()
		if i <= 3 && err != nil {
			t.Fatalf("resend %d: %v", i, err)
		}
		if i == 4 {
			wantCode(t, err, fault.RateLimited)
		}
	}
	if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(e.dial.Last(t).CLI)}); err != nil {
		t.Fatalf("latest code: %v", err)
	}
	if _, err := resend(); !errors.Is(err, fault.AlreadyVerified) {
		t.Errorf("resend after approval: %v", err)
	}
	if got := n.events(); strings.Join(got, ",") != "call_missed,call_missed,call_missed,call_missed,approved" {
		t.Errorf("webhooks %v", got)
	}
}

// A call that failed before it rang delivered nothing: its verification may be resent at once, without
// waiting out resend_cooldown, up to max_resends. A call that rang and then failed still waits.
func TestResendUndeliverable(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, nil)
	v, _ := e.send(t)
	resend := func() error {
		_, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID})
		return err
	}
	busy := func() { // 486 without a ring
		now := e.clock.Now()
		e.svc.CallEnded(e.ref(v.ID), "phone", "", call.Result{State: call.StateFailed, SIPCode: 486, Reason: call.ReasonBusy, Responded: true,
			StartedAt: now.Add(-20 * time.Millisecond), EndedAt: now})
	}
	for i := 1; i <= 3; i++ { // max_resends 3
		busy()
		if st := e.status(t, v.ID); st.Status != otp.StatusFailed {
			t.Fatalf("after a busy call: %s, want failed", st.Status)
		}
		if err := resend(); err != nil {
			t.Fatalf("resend %d at once after a call that never rang: %v", i, err)
		}
		if st := e.status(t, v.ID); st.Status != otp.StatusPending || st.Resends != i {
			t.Fatalf("after resend %d: %s with %d resends", i, st.Status, st.Resends)
		}
	}
	busy()
	wantCode(t, resend(), fault.RateLimited)

	w, _ := e.send(t)
	now := e.clock.Now()
	e.svc.CallEnded(w.ID, "phone", "", call.Result{State: call.StateFailed, SIPCode: 486, Reason: call.ReasonBusy, Responded: true, Rang: true,
		StartedAt: now.Add(-20 * time.Millisecond), RingingAt: now.Add(-10 * time.Millisecond), EndedAt: now})
	_, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: w.ID})
	wantCode(t, err, fault.ResendTooSoon)
}

func TestVerifyByRecipient(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, nil)
	first, firstCLI := e.send(t)
	second, secondCLI := e.send(t)
	// The second call may draw the first's code (1 in 10,000): approve it out of the way and draw again,
	// rather than skip (under CI=true nothing may skip).
	for codeOf(secondCLI) == codeOf(firstCLI) {
		if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: second.ID, Code: codeOf(secondCLI)}); err != nil {
			t.Fatalf("approving the call that drew the first's code: %v", err)
		}
		second, secondCLI = e.send(t)
	}
	byRecipient := func(code string) (otp.Verification, error) {
		return e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", Recipient: strings.TrimPrefix(usRecipient, "+"), Code: code})
	}
	if _, err := byRecipient(codeOf(firstCLI)); !errors.Is(err, fault.InvalidCode) {
		t.Fatalf("the older verification's code: %v; want invalid_code (the newest pending one is checked)", err)
	}
	v, err := byRecipient(codeOf(secondCLI))
	if err != nil || v.ID != second.ID {
		t.Fatalf("newest code: %v %v", v.ID, err)
	}
	// Now the newest pending one is the first.
	if v, err := byRecipient(codeOf(firstCLI)); err != nil || v.ID != first.ID {
		t.Fatalf("first code after the second was approved: %v %v", v.ID, err)
	}
	if _, err := byRecipient(codeOf(firstCLI)); !errors.Is(err, fault.NotFound) {
		t.Fatalf("no pending verification left: %v", err)
	}
}

// Pages stay stable while new verifications arrive: a cursor never shows one twice or skips one.
func TestListPagination(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, nil)
	var ids []string
	sendN := func(n int) {
		for range n {
			v, _ := e.send(t)
			ids = append(ids, v.ID)
			e.clock.Advance(time.Millisecond)
		}
	}
	sendN(5)
	page, err := e.svc.List(t.Context(), otp.Query{AppID: "demo", Limit: 2})
	if err != nil || len(page.Items) != 2 || page.Items[0].ID != ids[4] || page.Items[1].ID != ids[3] || page.NextCursor != ids[3] {
		t.Fatalf("first page: %+v %v", page, err)
	}
	sendN(3)
	var rest []string
	for cursor := page.NextCursor; cursor != ""; {
		p, err := e.svc.List(t.Context(), otp.Query{AppID: "demo", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Items {
			rest = append(rest, v.ID)
		}
		cursor = p.NextCursor
	}
	if strings.Join(rest, ",") != strings.Join([]string{ids[2], ids[1], ids[0]}, ",") {
		t.Fatalf("later pages %v, want the three oldest", rest)
	}
	e.missed(ids[0])
	failed, _ := e.svc.List(t.Context(), otp.Query{AppID: "demo", Status: "pending", Recipient: usRecipient, Since: e.clock.Now().Add(-time.Hour), Until: e.clock.Now().Add(time.Hour)})
	if len(failed.Items) != 8 {
		t.Errorf("pending of the recipient: %d, want 8", len(failed.Items))
	}
	for _, q := range []otp.Query{{Status: "nope"}, {Limit: 501}, {Cursor: "otp_x"}, {Channel: "fax"}, {Channel: "auto"}, {Recipient: "+1"}} {
		q.AppID = "demo"
		if _, err := e.svc.List(t.Context(), q); err == nil {
			t.Errorf("List(%+v) accepted", q)
		}
	}
}

func TestLogsAndAttempts(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, nil)
	v, cli := e.send(t)
	e.missed(v.ID)
	_, _ = e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: wrongCode(codeOf(cli)), RemoteIP: "192.0.2.7"})
	_, _ = e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v.ID, Code: codeOf(cli), RemoteIP: "192.0.2.7"})
	logs, err := e.svc.Logs(t.Context(), otp.Query{AppID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range logs.Items {
		types = append(types, ev.Type)
		raw, _ := json.Marshal(ev)
		if strings.Contains(string(raw), cli) || strings.Contains(string(raw), `"`+codeOf(cli)+`"`) {
			t.Errorf("event shows the CLI or the code: %s", raw)
		}
	}
	want := "verify_approved,verify_failed,call_missed,call_ringing,call_dialing,send_requested"
	if strings.Join(types, ",") != want {
		t.Errorf("logs %v, want %s", types, want)
	}
	only, _ := e.svc.Logs(t.Context(), otp.Query{AppID: "demo", Type: "verify_failed"})
	if len(only.Items) != 1 || only.Items[0].RemoteIP != "192.0.2.7" || only.Items[0].Result != "invalid_code" {
		t.Errorf("verify_failed events: %+v", only.Items)
	}
	for _, q := range []otp.Query{{ID: v.ID}, {Recipient: usRecipient}} {
		q.AppID = "demo"
		at, err := e.svc.Attempts(t.Context(), q)
		if err != nil || len(at.Items) != 2 || at.Items[0].Result != "approved" || at.Items[1].Result != "invalid_code" || at.Items[1].RemoteIP != "192.0.2.7" {
			t.Errorf("Attempts(%+v) = %+v, %v", q, at.Items, err)
		}
	}
	if _, err := e.svc.Attempts(t.Context(), otp.Query{AppID: "other", ID: v.ID}); !errors.Is(err, fault.NotFound) {
		t.Errorf("another app's attempts: %v", err)
	}
}

func TestSweepExpired(t *testing.T) {
	n := &fakeNotifier{}
	e := newAppEnv(t, n, 0, nil)
	v, _ := e.send(t)
	e.missed(v.ID)
	if k, err := e.svc.SweepExpired(t.Context()); k != 0 || err != nil {
		t.Fatalf("sweep before expiry: %d %v", k, err)
	}
	e.clock.Advance(testTTL)
	if k, err := e.svc.SweepExpired(t.Context()); k != 1 || err != nil {
		t.Fatalf("sweep: %d %v", k, err)
	}
	if k, _ := e.svc.SweepExpired(t.Context()); k != 0 {
		t.Fatalf("second sweep marked %d", k)
	}
	if got := strings.Join(n.events(), ","); got != "call_missed,expired" {
		t.Errorf("webhooks %s", got)
	}
	if st := e.status(t, v.ID); st.Status != otp.StatusExpired {
		t.Errorf("status %s", st.Status)
	}
	logs, _ := e.svc.Logs(t.Context(), otp.Query{AppID: "demo", Type: otp.EventExpired})
	if len(logs.Items) != 1 {
		t.Errorf("expired events: %d", len(logs.Items))
	}
}

func TestPurge(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, time.Hour, nil)
	old, _ := e.send(t)
	e.missed(old.ID)
	e.clock.Advance(2 * time.Hour)
	recent, _ := e.send(t)
	n, err := e.svc.Purge(t.Context())
	if err != nil || n != 5 { // the old verification and its 4 events
		t.Fatalf("Purge = %d, %v; want 5", n, err)
	}
	if _, err := e.svc.Status(t.Context(), "demo", old.ID); !errors.Is(err, fault.NotFound) {
		t.Errorf("old verification still there: %v", err)
	}
	e.status(t, recent.ID)
	page, _ := e.svc.List(t.Context(), otp.Query{AppID: "demo", Recipient: usRecipient})
	if len(page.Items) != 1 {
		t.Errorf("list after purge: %d items", len(page.Items))
	}
	rows, _ := e.svc.Reports(t.Context(), "demo", e.clock.Now().Add(-24*time.Hour), e.clock.Now(), otp.GroupChannel)
	if len(rows) != 1 || rows[0].Sent != 2 {
		t.Errorf("reports after purge: %+v (counters are kept)", rows)
	}
}

// NIST SP 800-63B: failed verifications of one recipient, across verifications, lock it out for the window.
func TestFailedVerificationsLockout(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{apps.ScopeFailedVerifications: {Limit: 3, Window: apps.Duration(time.Hour)}}
	})
	v1, cli1 := e.send(t)
	v2, cli2 := e.send(t)
	for _, w := range []struct{ id, code string }{{v1.ID, wrongCode(codeOf(cli1))}, {v1.ID, wrongCode(codeOf(cli1))}, {v2.ID, wrongCode(codeOf(cli2))}} {
		if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: w.id, Code: w.code}); !errors.Is(err, fault.InvalidCode) {
			t.Fatalf("wrong code: %v", err)
		}
	}
	_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: v2.ID, Code: codeOf(cli2)})
	if wantCode(t, err, fault.RateLimited).RetryAfter != time.Hour {
		t.Errorf("retry after %s, want 1h", err.(*fault.Error).RetryAfter)
	}
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall}); !errors.Is(err, fault.RateLimited) {
		t.Errorf("send to a locked-out recipient: %v", err)
	}
	if st := e.status(t, v2.ID); st.Attempts != 1 {
		t.Errorf("a locked-out verify counted an attempt: %d", st.Attempts)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall}); err != nil {
		t.Errorf("send after the window: %v", err)
	}
}

func TestSendRateLimits(t *testing.T) {
	e := newAppEnv(t, &fakeNotifier{}, 0, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{apps.ScopePrefix: {Limit: 2, Window: apps.Duration(time.Minute)}}
	})
	send := func(to string) error {
		_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: to, Channel: otp.ChannelFlashCall})
		return err
	}
	// +1415555 2xxx: one block of 1,000 numbers.
	if err := errors.Join(send("+14155552671"), send("+14155552999")); err != nil {
		t.Fatal(err)
	}
	if err := send("+14155552000"); !errors.Is(err, fault.RateLimited) || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("third send to the block: %v", err)
	}
	if err := send("+14155553000"); err != nil {
		t.Fatalf("the next block: %v", err)
	}
	statuses, _ := e.svc.RateLimits("demo", "demo-key", "192.0.2.7", "14155552671")
	for _, l := range statuses {
		if l.Scope == apps.ScopePrefix && (l.Key != "+14155552" || l.Used != 2 || l.Limit != 2 || l.Window != limits.Window(time.Minute)) {
			t.Errorf("prefix limit %+v", l)
		}
	}
}
