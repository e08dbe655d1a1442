package otp_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/otp"
)

// An inbound verification hands out a number of the app's inbound pool and sends nothing. Only a call from
// the recipient's number to that number, before it expires, approves it: a withheld caller, another
// caller, or the right caller to another number of the pool do not; a second call finds nothing to approve.
func TestInboundCall(t *testing.T) {
	n := &fakeNotifier{}
	e, _ := newChannelEnv(t, n, func(a *apps.App) {
		a.Channels = append(a.Channels, otp.ChannelInbound)
		a.InboundPool = "demo"
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelInbound})
	if err != nil {
		t.Fatalf("Send inbound: %v", err)
	}
	if !regexp.MustCompile(`^\+44207946[0-9]{4}$`).MatchString(v.DialNumber) || steps(v) != "inbound:sent" {
		t.Fatalf("send: dial_number %q, steps %s; want a number of the pool, inbound:sent", v.DialNumber, steps(v))
	}
	if got := len(e.dial.Requests()); got != 0 {
		t.Errorf("an inbound send placed %d calls or messages, want none", got)
	}
	other := "+44207946" + strings.Repeat("0", 4)
	if other == v.DialNumber {
		other = "+442079461111"
	}
	for _, tc := range []struct {
		name string
		call otp.InboundCall
		want string
	}{
		{"withheld", otp.InboundCall{Trunk: "carrier", Called: v.DialNumber}, otp.InboundWithheld},
		{"not a number", otp.InboundCall{Trunk: "carrier", Called: v.DialNumber, Caller: "anonymous"}, otp.InboundWithheld},
		{"another caller", otp.InboundCall{Trunk: "carrier", Called: v.DialNumber, Caller: "+14155550000"}, otp.InboundNoMatch},
		{"another number of the pool", otp.InboundCall{Trunk: "carrier", Called: other, Caller: usRecipient}, otp.InboundNoMatch},
		{"a number of no pool", otp.InboundCall{Trunk: "carrier", Called: "+33198765432", Caller: usRecipient}, otp.InboundNoMatch},
	} {
		if got, _, err := e.svc.InboundCallReceived(t.Context(), tc.call); err != nil || got != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
		if st := e.status(t, v.ID); st.Status != otp.StatusPending {
			t.Fatalf("%s left the verification %s", tc.name, st.Status)
		}
	}
	// The trunk sends the numbers without '+': they are read as E.164 all the same.
	got, id, err := e.svc.InboundCallReceived(t.Context(), otp.InboundCall{Trunk: "carrier", Called: strings.TrimPrefix(v.DialNumber, "+"), Caller: strings.TrimPrefix(usRecipient, "+")})
	if err != nil || got != otp.InboundMatched || id != v.ID {
		t.Fatalf("the recipient's call: %s %s, %v; want matched %s", got, id, err, v.ID)
	}
	st := e.status(t, v.ID)
	if st.Status != otp.StatusApproved || steps(st) != "inbound:delivered" || st.Steps[0].Trunk != "carrier" {
		t.Errorf("after the call: %s, %s, trunk %q", st.Status, steps(st), st.Steps[0].Trunk)
	}
	if events := n.events(); !slices.Contains(events, otp.EventInboundMatched) || !slices.Contains(events, otp.WebhookApproved) {
		t.Errorf("webhooks %v, want inbound_call_matched and approved", events)
	}
	if got, _, _ := e.svc.InboundCallReceived(t.Context(), otp.InboundCall{Trunk: "carrier", Called: v.DialNumber, Caller: usRecipient}); got != otp.InboundNoMatch {
		t.Errorf("a second call: %s, want no_match (approved already)", got)
	}

	// Past its expiry a call approves nothing.
	late, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: otp.ChannelInbound})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(testTTL + time.Second)
	if got, _, _ := e.svc.InboundCallReceived(t.Context(), otp.InboundCall{Trunk: "carrier", Called: late.DialNumber, Caller: "+14155552672"}); got != otp.InboundNoMatch {
		t.Errorf("a call after the expiry: %s, want no_match", got)
	}
}

// A flash call resent as an inbound verification gets its number to call, and the recipient's call to it
// approves.
func TestInboundResend(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.Channels = append(a.Channels, otp.ChannelInbound)
		a.InboundPool = "demo"
		a.ResendCooldown = apps.Duration(time.Second)
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelFlashCall})
	if err != nil {
		t.Fatal(err)
	}
	e.end(v.ID, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true})
	e.clock.Advance(2 * time.Second)
	r, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID, Channel: otp.ChannelInbound})
	if err != nil {
		t.Fatalf("Resend inbound: %v", err)
	}
	last := r.Steps[len(r.Steps)-1]
	if r.DialNumber == "" || last.Channel != otp.ChannelInbound || last.SentAt == nil || !last.SentAt.Equal(e.clock.Now()) {
		t.Fatalf("resent: dial_number %q, last step %+v", r.DialNumber, last)
	}
	if got, _, err := e.svc.InboundCallReceived(t.Context(), otp.InboundCall{Trunk: "carrier", Called: r.DialNumber, Caller: usRecipient}); got != otp.InboundMatched || err != nil {
		t.Errorf("the recipient's call after the resend: %s, %v", got, err)
	}
}
