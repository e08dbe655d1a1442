package otp_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/message"
	"flashotp/otp"
)

// reportsOf returns every grouping of demo's reports over the last two days, one line per row.
func reportsOf(t *testing.T, svc *otp.Service, now time.Time) string {
	t.Helper()
	var out []string
	for _, g := range otp.GroupBys {
		rows, err := svc.Reports(t.Context(), "demo", now.Add(-48*time.Hour), now, g)
		if err != nil {
			t.Fatalf("Reports %s: %v", g, err)
		}
		for _, r := range rows {
			pdd := "-"
			if r.P50PostDialDelayMS != nil {
				pdd = fmt.Sprint(*r.P50PostDialDelayMS)
			}
			out = append(out, fmt.Sprintf("%s %s sent=%d missed=%d answered=%d failed=%d approved=%d pdd=%s", g, r.Key, r.Sent, r.Missed, r.Answered, r.Failed, r.Approved, pdd))
		}
	}
	return strings.Join(out, "\n")
}

// The report counts of the last second die with the engine; at the next start they are counted again from
// the records (each holds what it counted): the reports after a crash are the reports before it, in every
// grouping, also once retention has deleted some of the records.
func TestReportsCountedAgainAfterCrash(t *testing.T) {
	var cfg otp.Config
	e, c := newChannelEnv(t, &fakeNotifier{}, nil, func(c *otp.Config) { c.Retention = time.Hour; cfg = *c })
	ctx := t.Context()
	if _, err := e.svc.Recover(ctx); err != nil { // as at every start
		t.Fatal(err)
	}
	rang := func(id string, st call.State) {
		now := e.clock.Now()
		e.end(id, call.Result{State: st, Rang: true, StartedAt: now.Add(-900 * time.Millisecond), RingingAt: now.Add(-400 * time.Millisecond), EndedAt: now})
	}
	// A flash call, missed and approved.
	v1, err := e.svc.Send(ctx, otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatal(err)
	}
	cli := e.dial.Last(t).CLI
	rang(v1.ID, call.StateMissed)
	if err := e.verify(t, v1.ID, cli[len(cli)-4:]); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := e.svc.FlushReports(ctx, false); err != nil { // some counts stored, the rest pending
		t.Fatal(err)
	}
	// A workflow: the flash call fails before it rings, the SMS goes and its code approves.
	v2, err := e.svc.Send(ctx, otp.SendRequest{AppID: "demo", Recipient: gbRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	e.end(v2.ID, call.Result{State: call.StateFailed, SIPCode: 480, Reason: call.ReasonUnavailable, Responded: true})
	e.end(v2.ID, call.Result{State: call.StateSent, SIPCode: 202, Responded: true})
	if err := e.verify(t, v2.ID, c.last(t, otp.ChannelSMS)); err != nil {
		t.Fatalf("verify sms: %v", err)
	}
	// A flash call missed, resent, then answered; a voice call that fails.
	v3, err := e.svc.Send(ctx, otp.SendRequest{AppID: "demo", Recipient: frRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatal(err)
	}
	rang(v3.ID, call.StateMissed)
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.Resend(ctx, otp.ResendRequest{AppID: "demo", VerificationID: v3.ID}); err != nil {
		t.Fatalf("resend: %v", err)
	}
	rang(v3.ID, call.StateAnswered)
	v4, err := e.svc.Send(ctx, otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: otp.ChannelVoice})
	if err != nil {
		t.Fatal(err)
	}
	e.end(v4.ID, call.Result{State: call.StateFailed, SIPCode: 486, Reason: call.ReasonBusy, Responded: true})

	want := reportsOf(t, e.svc, e.clock.Now())
	for _, line := range []string{"day 2025-03-14 sent=5 missed=2 answered=1 failed=2 approved=2", "channel sms sent=1 missed=0 answered=0 failed=0 approved=1", "trunk phone sent=6 "} {
		if !strings.Contains(want, line) {
			t.Fatalf("reports before the crash lack %q:\n%s", line, want)
		}
	}
	// The crash: a new engine over the same file, the pending counts gone.
	crashed := func() *otp.Service {
		svc := otp.New(cfg, e.db.Verifications(), e.pools, quietLog())
		if _, err := svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := crashed()
	if got := reportsOf(t, svc, e.clock.Now()); got != want {
		t.Fatalf("reports after the crash:\n%s\nwant:\n%s", got, want)
	}
	// A receipt two days later (the SMS expired undelivered) counts on its message's day, which the
	// recount of a crash right after it must reach.
	e.clock.Advance(50 * time.Hour)
	if err := svc.FlushReports(ctx, false); err != nil { // idle: it marks the time, so a recount starts a day ago
		t.Fatal(err)
	}
	svc.MessageReceipt(message.Receipt{Ref: v2.ID + "~1", State: message.Failed, Reason: message.ReasonExpired, At: e.clock.Now()})
	want = reportsOf(t, svc, e.clock.Now())
	if !strings.Contains(want, "channel sms sent=1 missed=0 answered=0 failed=1 approved=1") {
		t.Fatalf("the late receipt is not counted:\n%s", want)
	}
	svc = crashed()
	if got := reportsOf(t, svc, e.clock.Now()); got != want {
		t.Fatalf("reports after a late receipt and a crash:\n%s\nwant:\n%s", got, want)
	}
	// Retention takes the records; their counts stay, and a crash after it counts the day again the same.
	e.clock.Advance(2 * time.Hour)
	if n, err := svc.Purge(ctx); err != nil || n == 0 {
		t.Fatalf("Purge: %d, %v", n, err)
	}
	if got := reportsOf(t, svc, e.clock.Now()); got != want {
		t.Fatalf("reports after retention:\n%s\nwant:\n%s", got, want)
	}
	if got := reportsOf(t, crashed(), e.clock.Now()); got != want {
		t.Fatalf("reports after retention and a crash:\n%s\nwant:\n%s", got, want)
	}
	// A clean stop flushes: the next start counts nothing again (and the reports are the same).
	if err := svc.FlushReports(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := reportsOf(t, crashed(), e.clock.Now()); got != want {
		t.Fatalf("reports after a clean stop:\n%s\nwant:\n%s", got, want)
	}
}
