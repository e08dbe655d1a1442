package sip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/sip"
)

// A flash call to a real softphone: baresip rings (180), our CANCEL ends the call with 487, and baresip
// shows a missed incoming call from the CLI that was never established.
func TestDialBaresip(t *testing.T) {
	b := peers.StartBaresip(t)
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := ua.Dial(ctx, call.Request{
		Target: b.Addr, To: "+447700900123", CLI: "+442079461234",
		DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
	}, nil)
	if res.State != call.StateMissed || res.SIPCode != 487 || !res.Rang {
		t.Fatalf("result %s, want missed code=487 rang=true\nbaresip:\n%s", res, b.Log())
	}

	// baresip logs the end of the call after it sent the 487; give it a moment.
	const closed = "sip:+442079461234@127.0.0.1: session closed"
	testwait.Until(5*time.Second, func() bool { return strings.Contains(b.Log(), closed) }) // the checks below say what is missing
	log := b.Log()
	incoming := strings.Index(log, "Incoming call from:  sip:+442079461234@")
	end := strings.Index(log, closed)
	switch {
	case incoming < 0:
		t.Fatalf("baresip did not show the incoming call from the CLI:\n%s", log)
	case end < 0:
		t.Fatalf("baresip did not close the call:\n%s", log)
	case end < incoming:
		t.Fatalf("baresip closed a call before the incoming one:\n%s", log)
	}
	for _, answered := range []string{"Call established", "Answering incoming call"} {
		if strings.Contains(log, answered) {
			t.Errorf("baresip answered the call (%q):\n%s", answered, log)
		}
	}

	// Its SIP trace (-s): it rang and ended the INVITE with 487, never with 200.
	var sent []string
	for _, m := range baresipSent(log, b.Addr) {
		if strings.Contains(m, "\nCSeq: 1 INVITE") {
			sent = append(sent, strings.SplitN(m, "\n", 2)[0])
		}
	}
	if got := strings.Join(sent, ", "); got != "SIP/2.0 180 Ringing, SIP/2.0 487 Request Terminated" {
		t.Errorf("baresip answered the INVITE with %q, want 180 then 487:\n%s", got, log)
	}
}

// baresipSent returns the SIP messages in baresip's -s trace that it sent from addr, each from its start
// line. A trace entry is "#", then "UDP from -> to", then the message.
func baresipSent(log, addr string) []string {
	var out []string
	for _, entry := range strings.Split(log, "#\n")[1:] {
		head, msg, ok := strings.Cut(entry, "\n")
		if ok && strings.HasPrefix(head, "UDP "+addr+" -> ") {
			out = append(out, strings.ReplaceAll(msg, "\r", ""))
		}
	}
	return out
}
