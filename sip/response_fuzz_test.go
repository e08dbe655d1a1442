package sip_test

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/sip"
)

// Placeholders a fuzzed response may use, filled from the INVITE it answers, so that fuzzed bytes can reach
// the call's transaction rather than being dropped as strays only.
var inviteHeaders = map[string]*regexp.Regexp{
	"{via}":    regexp.MustCompile(`(?m)^Via: .*\r?$`),
	"{from}":   regexp.MustCompile(`(?m)^From: .*\r?$`),
	"{to}":     regexp.MustCompile(`(?m)^To: .*\r?$`),
	"{callid}": regexp.MustCompile(`(?m)^Call-ID: .*\r?$`),
	"{cseq}":   regexp.MustCompile(`(?m)^CSeq: .*\r?$`),
}

// FuzzTrunkResponse: whatever a trunk answers to the INVITE (and to the CANCEL, if one comes), the call
// ends with one outcome, within its dial timeout and cancel guard, and the UA does not panic. Seeds:
// testdata/fuzz/FuzzTrunkResponse, whose {via}, {from}, … are filled from the INVITE.
func FuzzTrunkResponse(f *testing.F) {
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ua.Close() })
	trunk, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { trunk.Close() })

	f.Fuzz(func(t *testing.T, response string) {
		req := call.Request{Target: trunk.LocalAddr().String(), To: "+14155552671", CLI: "+442079461234",
			DialTimeout: 20 * time.Millisecond, CancelGuard: 20 * time.Millisecond}
		done := make(chan call.Result, 1)
		go func() { done <- ua.Dial(context.Background(), req, nil) }()
		// Answer every request of this call (INVITE, retransmissions, CANCEL, ACK, BYE) with the response.
		answered := false
		buf := make([]byte, 65536)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("the call did not end within 5 s (dial_timeout and cancel_guard are 20 ms) on %q", response)
			}
			select {
			case res := <-done:
				switch res.State {
				case call.StateMissed, call.StateAnswered, call.StateFailed:
				default:
					t.Fatalf("call ended without an outcome: %+v", res)
				}
				if !answered {
					t.Fatal("the trunk never saw the INVITE")
				}
				return
			default:
			}
			_ = trunk.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, from, err := trunk.ReadFrom(buf)
			if err != nil {
				continue
			}
			req := string(buf[:n])
			answered = answered || strings.HasPrefix(req, "INVITE ")
			out := response
			for ph, re := range inviteHeaders {
				out = strings.ReplaceAll(out, ph, strings.TrimRight(re.FindString(req), "\r"))
			}
			_, _ = trunk.WriteTo([]byte(out), from)
		}
	})
}
