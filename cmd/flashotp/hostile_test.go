package main

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"flashotp/internal/peers"
	"flashotp/internal/testwait"
)

// Trunks that misbehave: for each, the engine does not panic, ends the call with one outcome, frees its
// slot, and keeps serving.
func TestHostileTrunks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the hostile SIPp trunks, one after another, take half a minute; make test runs them")
	}
	tests := []struct {
		scenario      string
		state, reason string // "" : any final outcome
		password      string // the trunk's digest password; "": none
		// complete: SIPp's scenario must run to its end, i.e. the engine sent what it waits for (ACK, BYE, a
		// CANCEL naming the right request) and nothing it does not expect.
		complete bool
	}{
		{"garbage.xml", "failed", "no_ring", "", false},
		{"no_to_tag_200.xml", "answered", "", "", false},
		{"endless_100.xml", "failed", "no_ring", "", false},
		{"ring_forever.xml", "failed", "trunk_error", "", false},
		{"storm.xml", "missed", "", "", false},
		{"decline_after_cancel.xml", "failed", "rejected", "", false},
		{"huge_header.xml", "", "", "", false},
		{"duplicated_headers.xml", "", "", "", false},
		{"wrong_ids.xml", "failed", "no_ring", "", false},
		{"missing_headers.xml", "missed", "", "", false},
		{"vanish.xml", "failed", "trunk_error", "", false},
		{"redirect_302.xml", "failed", "client_error", "", true},
		{"auth_401_no_credentials.xml", "failed", "auth_failed", "", true},
		{"auth_407_loop.xml", "failed", "auth_failed", "secret", true},
		{"auth_407_then_ring.xml", "missed", "", "secret", true},
		{"prack_100rel.xml", "missed", "", "", true},
		{"forked_200.xml", "answered", "", "", true},
		{"forked_two_200.xml", "answered", "", "", true},
		{"answer_at_once_sdp.xml", "answered", "", "", true},
		{"answer_at_once_no_sdp.xml", "answered", "", "", true},
		{"answer_then_callee_bye.xml", "answered", "", "", true},
		{"answer_bye_unanswered.xml", "answered", "", "", false},
		{"cancel_481_then_487.xml", "missed", "", "", true},
		{"cancel_500_then_nothing.xml", "failed", "trunk_error", "", false},
		{"cancel_408_then_200.xml", "answered", "", "", true},
		{"no_tag_487.xml", "missed", "", "", true},
		{"ring_garbage_route.xml", "missed", "", "", true},
		{"answer_garbage_route.xml", "answered", "", "", true},
		{"answer_wildcard_contact.xml", "answered", "", "", true},
		{"answer_sips_contact.xml", "answered", "", "", true},
		{"foreign_via.xml", "failed", "no_ring", "", true},
		{"trunk_requests.xml", "missed", "", "", true},
		{"answer_retransmitted.xml", "answered", "", "", false},
		{"late_answer_retransmitted.xml", "failed", "no_ring", "", true}, // answered too late to count: the outcome stands
		{"garbage_media_sdp.xml", "missed", "", "", true},
		{"long_content_length.xml", "failed", "no_ring", "", true},
		{"status_101_199.xml", "failed", "no_ring", "", true}, // SPEC: only 180 and 183 ring (RFC 3261 8.1.3.2 would take them for 183)
		{"status_699.xml", "failed", "trunk_error", "", true},
		{"status_999.xml", "failed", "trunk_error", "", true},
		{"status_0.xml", "failed", "no_ring", "", true},
		{"answer_after_guard.xml", "missed", "", "", true}, // answered after the call ended: the outcome stands
		{"final_then_200.xml", "missed", "", "", true},
		{"final_twice.xml", "missed", "", "", true},
		{"answer_long_route_set.xml", "answered", "", "", true},
		{"auth_401_garbage_challenge.xml", "failed", "auth_failed", "secret", true},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			uas := peers.StartUAS(t, "hostile/"+tc.scenario, 1)
			cfg := testConfig(t, uas.Addr)
			cfg.Dialer.DialTimeout, cfg.Dialer.CancelGuard = time.Second, time.Second
			if tc.password != "" {
				cfg.Trunks[0].Username, cfg.Trunks[0].Password = "flashotp", tc.password
			}
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}

			start := time.Now()
			v := c.waitCall(c.send(recipient).body["verification_id"].(string))
			call := v["call"].(map[string]any)
			if tc.state != "" && (call["state"] != tc.state || call["reason"] != tc.reason) {
				t.Errorf("call %v, want %s %q", call, tc.state, tc.reason)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the call took %s to end: its slot was held past dial_timeout + cancel_guard", took)
			}
			testwait.For(t, 3*time.Second, "no call counted in flight", func() bool {
				return strings.Contains(c.do("GET", "/metrics", "").raw, "\nflashotp_calls_in_flight 0\n")
			})
			if a := c.do("GET", "/healthz", ""); a.status != 200 {
				t.Fatalf("engine stopped serving: %d", a.status)
			}
			if tc.complete {
				// 1: the call failed its scenario (an unexpected message, a timeout, a failed check). Other
				// codes are SIPp's own fatal errors, not a verdict on the engine (seen: 254, "fatal error
				// binding a socket", mid-call, while other SIPps ran on the machine).
				switch code := uas.Wait(t, 10*time.Second); code {
				case 0:
				case 1:
					t.Errorf("sipp exit 1: the trunk's scenario did not complete\n%s", uas.Messages())
				default:
					t.Logf("sipp exit %d: SIPp's own error, the scenario's verdict is unknown", code)
				}
			}
			if a := c.send("+33612345678"); a.status != 202 {
				t.Fatalf("engine refuses sends after the hostile trunk: %d %s", a.status, a.raw)
			}
		})
	}
}

// A 183 with SDP, then an RTP flood (and garbage) at the engine's media port from the callee's address and
// from a stranger: the call still ends missed at its time, the flood is counted only from the address the
// callee named, and the engine keeps serving.
func TestRTPFlood(t *testing.T) {
	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	stranger, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	uas := peers.StartUAS(t, "early_media.xml", 1, "-key", "rtpport", strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port))
	cfg := testConfig(t, uas.Addr)
	cfg.Dialer.RingTime = time.Second
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	start := time.Now()
	id := c.send(recipient).body["verification_id"].(string)
	var offer []string
	testwait.For(t, 5*time.Second, "an INVITE with an SDP offer", func() bool {
		if invs := uas.Received("INVITE "); len(invs) > 0 {
			offer = regexp.MustCompile(`(?m)^m=audio ([0-9]+) `).FindStringSubmatch(invs[0])
		}
		return offer != nil
	})
	engine, _ := net.ResolveUDPAddr("udp", "127.0.0.1:"+offer[1])
	const flood = 20000
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 0xf100d}, Payload: make([]byte, 160)}
	for i := 0; i < flood; i++ {
		pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(160*i)
		raw, _ := pkt.Marshal()
		_, _ = media.WriteTo(raw, engine)
		_, _ = stranger.WriteTo(raw, engine)
		if i%100 == 0 {
			_, _ = media.WriteTo([]byte("\x00garbage, not RTP"), engine)
		}
	}
	v := c.waitCall(id)
	call := v["call"].(map[string]any)
	got := call["early_media_packets"].(float64)
	if call["state"] != "missed" || got < 1 || got > flood {
		t.Fatalf("call %v; want missed with 1..%d early media packets (the stranger's not counted)", call, flood)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the call took %s under the flood (ring_time 1s)", took)
	}
	if a := c.send("+33612345678"); a.status != 202 {
		t.Fatalf("engine refuses sends after the flood: %d %s", a.status, a.raw)
	}
	t.Logf("%d RTP packets sent from the callee's address (and as many from a stranger), %.0f counted", flood, got)
}
