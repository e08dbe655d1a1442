package otp_test

import (
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/fault"
	"flashotp/internal/metricstest"
	"flashotp/message"
	"flashotp/metrics"
	"flashotp/otp"
)

// Each step that reaches an outcome is counted by channel and state once it is stored: a flash call that
// failed before it rang (failed), the SMS that followed (sent, then delivered by its receipt), and a flash
// call of the form before steps that rang (delivered). A report that changes nothing counts nothing.
func TestStepsEndedCounted(t *testing.T) {
	m := metrics.New()
	e, _ := newChannelEnv(t, &fakeNotifier{}, nil, func(c *otp.Config) { c.Metrics = m })
	want := map[string]float64{}
	check := func(when string) {
		t.Helper()
		scrape := metricstest.Scrape(t, m)
		for _, ch := range []string{"flashcall", "sms", "voice"} {
			for _, st := range []string{"sent", "delivered", "failed"} {
				series := `flashotp_steps_ended_total{channel="` + ch + `",state="` + st + `"}`
				if got := metricstest.Value(t, scrape, series); got != want[ch+":"+st] {
					t.Errorf("%s: %s = %v, want %v", when, series, got, want[ch+":"+st])
				}
			}
		}
	}
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	check("sent")
	e.end(v.ID, call.Result{State: call.StateFailed, Reason: call.ReasonNoRing})
	want["flashcall:failed"]++
	check("flash call failed")
	sms := e.ref(v.ID)
	e.end(v.ID, call.Result{State: call.StateSent, SIPCode: 202, Responded: true})
	want["sms:sent"]++
	check("sms sent")
	e.end(v.ID, call.Result{State: call.StateSent, SIPCode: 202, Responded: true}) // a second report: ignored
	check("sms reported twice")
	e.svc.MessageReceipt(message.Receipt{Ref: sms, State: message.Delivered, At: e.clock.Now()})
	want["sms:delivered"]++
	check("sms delivered")

	flash, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatal(err)
	}
	e.missed(flash.ID)
	want["flashcall:delivered"]++
	check("flash call missed")
}

// A listing's channel filter takes any channel of SPEC section 8 and keeps the verifications with a step
// on it; Find reads a verification by its ID alone, with its email address.
func TestListByChannelAndFind(t *testing.T) {
	e, smsc, _ := newSenderEnv(t, &fakeNotifier{}, nil)
	flash, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatal(err)
	}
	auto, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Email: "ann@example.com", Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	m := smsc.last(t)
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Failed, Reason: message.ReasonExpired, At: e.clock.Now()})
	e.stepsAre(t, auto.ID, "sms:failed,email:queued")
	for ch, want := range map[string][]string{
		"flashcall": {flash.ID}, "sms": {auto.ID}, "email": {auto.ID}, "voice": nil, "whatsapp": nil, "inbound": nil, "": {auto.ID, flash.ID},
	} {
		p, err := e.svc.List(t.Context(), otp.Query{AppID: "demo", Channel: ch})
		if err != nil {
			t.Fatalf("channel %q: %v", ch, err)
		}
		var got []string
		for _, v := range p.Items {
			got = append(got, v.ID)
		}
		if len(got) != len(want) || len(got) > 0 && got[0] != want[0] || len(got) > 1 && got[1] != want[1] {
			t.Errorf("channel %q: %v, want %v", ch, got, want)
		}
	}

	f, err := e.svc.Find(t.Context(), auto.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The email step goes on meanwhile: queued, then sent.
	if f.AppID != "demo" || f.Recipient != usRecipient || f.Email != "ann@example.com" || !strings.HasPrefix(steps(f.Verification), "sms:failed,email:") {
		t.Errorf("Find: %+v", f)
	}
	if f, err := e.svc.Find(t.Context(), flash.ID); err != nil || f.Email != "" || steps(f.Verification) != "flashcall:queued" {
		t.Errorf("Find flash: %+v, %v", f, err)
	}
	wantErr(t, func() error { _, err := e.svc.Find(t.Context(), "otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ"); return err }(), fault.NotFound)
	wantErr(t, func() error { _, err := e.svc.Find(t.Context(), "nope"); return err }(), fault.InvalidRequest)
}

// ReportsOf sums several apps' rows: counts add up, the median post-dial delay is that of all their calls.
func TestReportsOfApps(t *testing.T) {
	e := newEnv(t)
	send := func(app string, pdd time.Duration) {
		v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: app, Recipient: usRecipient, Channel: otp.ChannelFlashCall})
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		e.svc.CallEnded(v.ID, "phone", "", call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, StartedAt: now.Add(-pdd), RingingAt: now, EndedAt: now})
	}
	send("demo", 100*time.Millisecond)
	send("other", 1000*time.Millisecond)
	send("other", 1000*time.Millisecond)
	since, until := e.clock.Now().Add(-time.Hour), e.clock.Now()
	rows, err := e.svc.ReportsOf(t.Context(), []string{"demo", "other", "short"}, since, until, otp.GroupTrunk)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Key != "phone" || rows[0].Sent != 3 || rows[0].Missed != 3 || rows[0].P50PostDialDelayMS == nil ||
		*rows[0].P50PostDialDelayMS < 1000 || *rows[0].P50PostDialDelayMS > 1260 {
		t.Fatalf("rows %+v", rows)
	}
	one, _ := e.svc.Reports(t.Context(), "demo", since, until, otp.GroupTrunk)
	if len(one) != 1 || one[0].Sent != 1 || *one[0].P50PostDialDelayMS > 130 {
		t.Fatalf("demo alone: %+v", one)
	}
}
