package otp_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/fault"
	"flashotp/message"
	"flashotp/otp"
)

// voice (20s) → sms: the SMS starts on the voice step's timeout while the voice call still rings; the SMS
// is refused (the voice code keeps the verification pending); then the voice call is not answered. No
// code is live and nothing is in flight or planned, yet the verification stays pending.
func TestReviewLateCallOfEarlierStepLeavesPendingWithNoCode(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.Workflow = []apps.Step{
			{Channel: otp.ChannelVoice, Timeout: apps.Duration(20 * time.Second)},
			{Channel: otp.ChannelSMS},
		}
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(21 * time.Second)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.dial.Last(t); r.Kind != call.KindMessage {
		t.Fatalf("after the voice step's timeout: %+v, want the SMS", r)
	}
	// The SMS is refused: the voice code is still live, so it stays pending.
	e.end(v.ID, call.Result{State: call.StateFailed, SIPCode: 488, Reason: call.ReasonClientError, Responded: true})
	e.stepsAre(t, v.ID, "voice:queued,sms:failed")
	// The voice call (step 0, ref = the verification's ID) rang out unanswered.
	now := e.clock.Now()
	e.svc.CallEnded(v.ID, "phone", "", call.Result{State: call.StateFailed, SIPCode: 487, Reason: call.ReasonNoAnswer, Responded: true,
		Provisional: true, Rang: true, StartedAt: now.Add(-25 * time.Second), RingingAt: now.Add(-20 * time.Second), EndedAt: now})
	st := e.stepsAre(t, v.ID, "voice:failed,sms:failed")
	if st.Status != otp.StatusFailed {
		t.Fatalf("every step failed, no code live, nothing left: status %s, want failed", st.Status)
	}
}

// A flash-call send keeps the flash-call form, which drops the send's locale; a resend on voice then
// speaks the app's default locale instead of the send's.
func TestReviewFlashFormResendLosesLocale(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall, Locale: "pt-BR"})
	if err != nil {
		t.Fatal(err)
	}
	e.missed(v.ID)
	e.clock.Advance(31 * time.Second)
	if _, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID, Channel: otp.ChannelVoice}); err != nil {
		t.Fatalf("resend to voice: %v", err)
	}
	r := e.dial.Last(t)
	if r.Kind != call.KindVoice {
		t.Fatalf("dialer got %+v, want the voice call", r)
	}
	code := strings.TrimPrefix(string(r.Prompt), "audio:")
	if !slices.Contains(c.sent, "voice pt-BR "+code) {
		t.Errorf("voice prompt asked for %q, want the send's locale pt-BR", c.sent)
	}
}

// A send whose code_length the SMS channel cannot take is the caller's mistake (invalid_request), found only
// in prepare, after guard counted it against the recipient's (and app's, channel's, prefix's) send limits:
// the refused request uses up the recipient's only send.
func TestReviewRefusedCodeLengthCountsSendLimit(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{apps.ScopeRecipient: {Limit: 1, Window: apps.Duration(time.Hour)}}
	})
	_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS, CodeLength: 12})
	if !errors.Is(err, fault.InvalidRequest) {
		t.Fatalf("code_length 12 on sms: %v, want invalid_request", err)
	}
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS}); err != nil {
		t.Fatalf("the recipient's first real send after a refused one: %v", err)
	}
}

// heldSender holds each message until release is closed, then reports it sent.
type heldSender struct {
	got     chan message.Message
	release chan struct{}
}

func (b *heldSender) Send(_ context.Context, m message.Message) message.Result {
	b.got <- m
	<-b.release
	return message.Result{State: message.Sent}
}

// The carrier's receipt (here: failed) comes before the Sender's goroutine reports the hand-over: the
// receipt ends the step without deleting its v_open_calls key, and the late "sent" outcome is ignored
// (the step is final), so the key stays while nothing is in flight.
func TestReviewReceiptBeforeSentLeavesOpenCall(t *testing.T) {
	b := &heldSender{got: make(chan message.Message, 4), release: make(chan struct{})}
	e, _ := newChannelEnv(t, &fakeNotifier{}, nil, func(c *otp.Config) {
		c.SMS.Via = "smpp"
		c.Senders = map[string]message.Sender{otp.ChannelSMS: b}
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS})
	if err != nil {
		t.Fatal(err)
	}
	m := <-b.got
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Failed, Reason: message.ReasonUndelivered, At: e.clock.Now()})
	close(b.release)
	st := e.stepsAre(t, v.ID, "sms:failed")
	if st.Status != otp.StatusFailed {
		t.Fatalf("status %s, want failed", st.Status)
	}
	time.Sleep(200 * time.Millisecond) // the sender's late outcome is recorded (ignored)
	var open []string
	if err := e.db.Verifications().View(t.Context(), func(tx otp.Tx) error {
		open = slices.Collect(tx.OpenCalls())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(open, v.ID) {
		t.Errorf("v_open_calls still holds %s, whose only step ended", v.ID)
	}
}

// channels.md: an address with brackets is refused (400 invalid_recipient). checkEmail refuses '<' and '>'
// only: net/mail takes a domain literal, so an email goes to a bare IP address in brackets.
func TestReviewEmailDomainLiteralAccepted(t *testing.T) {
	e, _, _ := newSenderEnv(t, &fakeNotifier{}, nil)
	for _, bad := range []string{"user@[192.168.0.1]", "user@[10.0.0.1]"} {
		_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: bad, Channel: otp.ChannelEmail})
		if !errors.Is(err, fault.InvalidRecipient) {
			t.Errorf("email to %q: %v, want invalid_recipient", bad, err)
		}
	}
}

// SPEC section 3: verify takes verification_id or recipient; section 8: an email step's recipient is an
// address. newestPending parses the recipient as a phone number only, so an email-only verification
// cannot be verified by its recipient.
func TestReviewVerifyByEmailRecipient(t *testing.T) {
	e, _, mail := newSenderEnv(t, &fakeNotifier{}, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "user@example.com", Channel: otp.ChannelEmail})
	if err != nil {
		t.Fatal(err)
	}
	e.stepsAre(t, v.ID, "email:sent")
	if _, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", Recipient: "user@example.com", Code: mail.last(t).Code}); err != nil {
		t.Fatalf("verify by the email recipient: %v", err)
	}
}

// An email-only send's recipient key is its address (api.md, rate limits), taken as typed: the domain of an
// address is case-insensitive (RFC 5321 2.4), so "user@EXAMPLE.com" reaches the same mailbox under a
// recipient limit of its own, and the recipient limit (and failed_verifications lockout) is bypassed.
func TestReviewEmailRecipientKeyCaseBypassesLimit(t *testing.T) {
	e, _, _ := newSenderEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{apps.ScopeRecipient: {Limit: 1, Window: apps.Duration(time.Hour)}}
	})
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "user@example.com", Channel: otp.ChannelEmail}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "user@EXAMPLE.com", Channel: otp.ChannelEmail})
	if !errors.Is(err, fault.RateLimited) {
		t.Fatalf("a second send to the same mailbox, its domain in capitals: %v, want rate_limited", err)
	}
}

// The same as TestReviewLateCallOfEarlierStepLeavesPendingWithNoCode, through MessageReceipt: sms (1m) →
// voice. The SMS is sent; on its timeout the voice call goes and is not answered (the SMS code keeps the
// verification pending); then the SMS's receipt says it failed. No code is live, nothing is in flight or
// planned, and the verification stays pending.
func TestReviewLateReceiptOfEarlierStepLeavesPendingWithNoCode(t *testing.T) {
	e, smsc, _ := newSenderEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.Workflow = []apps.Step{
			{Channel: otp.ChannelSMS, Timeout: apps.Duration(time.Minute)},
			{Channel: otp.ChannelVoice},
		}
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	m := smsc.last(t)
	e.stepsAre(t, v.ID, "sms:sent")
	e.clock.Advance(61 * time.Second)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.dial.Last(t); r.Kind != call.KindVoice {
		t.Fatalf("after the sms step's timeout: %+v, want the voice call", r)
	}
	e.end(v.ID, call.Result{State: call.StateFailed, SIPCode: 487, Reason: call.ReasonNoAnswer, Responded: true, Provisional: true, Rang: true,
		RingingAt: e.clock.Now().Add(-time.Second)})
	if st := e.stepsAre(t, v.ID, "sms:sent,voice:failed"); st.Status != otp.StatusPending {
		t.Fatalf("the sms code is live: status %s, want pending", st.Status)
	}
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Failed, Reason: message.ReasonUndelivered, At: e.clock.Now()})
	if st := e.stepsAre(t, v.ID, "sms:failed,voice:failed"); st.Status != otp.StatusFailed {
		t.Fatalf("every step failed, no code live, nothing left: status %s, want failed", st.Status)
	}
}

// The flash step's timeout (SweepExpired) and its failure (CallEnded) race: both call advance(1), each
// counts the SMS channel's limit (allowStep) and draws a code before modify lets one of them start the step.
// One SMS went out, but the channel's limit counts two.
func TestReviewRacingAdvanceCountsChannelLimitTwice(t *testing.T) {
	for n := range 40 {
		e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
			a.RateLimits = map[string]apps.Limit{otp.ChannelSMS: {Limit: 2, Window: apps.Duration(time.Hour)}}
		})
		v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(21 * time.Second)
		var wg sync.WaitGroup
		wg.Go(func() { e.svc.SweepExpired(t.Context()) })
		now := e.clock.Now()
		wg.Go(func() {
			e.svc.CallEnded(v.ID, "phone", "", call.Result{State: call.StateFailed, Reason: call.ReasonNoRing, StartedAt: now.Add(-time.Second), EndedAt: now})
		})
		wg.Wait()
		msgs := 0
		for _, r := range e.dial.Requests() {
			if r.Kind == call.KindMessage {
				msgs++
			}
		}
		if msgs != 1 {
			t.Fatalf("%d messages, want 1", msgs)
		}
		// One SMS of the limit's two went: another send on sms must pass.
		if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: otp.ChannelSMS}); err != nil {
			t.Fatalf("iteration %d: one sms of 2 sent, another send: %v", n, err)
		}
	}
}

// noApps knows no app: an engine on which advance stops right after CallEnded committed (as a crash there).
type noApps struct{}

func (noApps) Get(string) (apps.App, bool) { return apps.App{}, false }
func (noApps) List() []apps.App            { return nil }

// CallEnded commits the failed flash step with rec.Next zeroed and the next step left to advance, outside
// that transaction. If advance never commits (a crash or restart in between; here an engine that stops the
// workflow), nothing resumes it: rec.Next is zero, so the step deadline still in v_expiry is taken as stale,
// and Recover only ends steps in flight. The verification waits, with no code live, until it expires,
// against channels.md ("the deadline is stored, so a restart does not lose it").
func TestReviewWorkflowLostBetweenCallEndedAndAdvance(t *testing.T) {
	var cfg otp.Config
	e, _ := newChannelEnv(t, &fakeNotifier{}, nil, func(c *otp.Config) { cfg = *c })
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	crashed := cfg
	crashed.Apps = noApps{}
	before := otp.New(crashed, e.db.Verifications(), e.pools, quietLog())
	now := e.clock.Now()
	before.CallEnded(v.ID, "phone", "", call.Result{State: call.StateFailed, Reason: call.ReasonNoRing, StartedAt: now.Add(-time.Second), EndedAt: now})
	e.stepsAre(t, v.ID, "flashcall:failed")
	// The engine restarts (e.svc): recovery, then the sweeper, well past the flash step's 20 s timeout.
	if _, err := e.svc.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(25 * time.Second)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := e.status(t, v.ID)
	if steps(st) == "flashcall:failed" && st.Status == otp.StatusPending {
		t.Fatalf("workflow stuck after restart: %s, %s, %d requests (want the sms step started)", steps(st), st.Status, len(e.dial.Requests()))
	}
}

// A workflow step that never started (its channel's limit reached) fails rate_limited. advance counts it
// sent on its channel, and nothing counts it failed: channels.md says a report counts `sent` per step and
// `failed` per step that did not deliver.
func TestReviewRateLimitedStepNotCountedFailed(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{otp.ChannelSMS: {Limit: 1, Window: apps.Duration(time.Hour)}}
	})
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: otp.ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	e.end(v.ID, call.Result{State: call.StateFailed, Reason: call.ReasonNoRing})
	e.stepsAre(t, v.ID, "flashcall:failed,sms:failed,voice:queued")
	rows, err := e.svc.Reports(t.Context(), "demo", time.Time{}, time.Time{}, otp.GroupChannel)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Key == otp.ChannelSMS && r.Sent-r.Failed != 1 {
			t.Errorf("sms row %+v: one sms went (the first send), the workflow's sms step never started; want sent-failed = 1", r)
		}
	}
}
