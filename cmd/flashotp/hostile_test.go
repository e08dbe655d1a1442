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
)

// Trunks that misbehave: for each, the engine does not panic, ends the call with one outcome, frees its
// slot, and keeps serving.
func TestHostileTrunks(t *testing.T) {
	tests := []struct {
		scenario      string
		state, reason string // "" : any final outcome
	}{
		{"garbage.xml", "failed", "no_ring"},
		{"no_to_tag_200.xml", "answered", ""},
		{"endless_100.xml", "failed", "no_ring"},
		{"ring_forever.xml", "failed", "trunk_error"},
		{"storm.xml", "missed", ""},
		{"decline_after_cancel.xml", "failed", "rejected"},
		{"huge_header.xml", "", ""},
		{"duplicated_headers.xml", "", ""},
		{"wrong_ids.xml", "failed", "no_ring"},
		{"missing_headers.xml", "missed", ""},
		{"vanish.xml", "failed", "trunk_error"},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			uas := peers.StartUAS(t, "hostile/"+tc.scenario, 1)
			cfg := testConfig(t, uas.Addr)
			cfg.Dialer.DialTimeout, cfg.Dialer.CancelGuard = time.Second, time.Second
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
			deadline := time.Now().Add(3 * time.Second)
			for !strings.Contains(c.do("GET", "/metrics", "").raw, "\nflashotp_calls_in_flight 0\n") {
				if time.Now().After(deadline) {
					t.Fatal("a call is still counted in flight")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if a := c.do("GET", "/healthz", ""); a.status != 200 {
				t.Fatalf("engine stopped serving: %d", a.status)
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
	for deadline := time.Now().Add(5 * time.Second); offer == nil; time.Sleep(5 * time.Millisecond) {
		if invs := uas.Received("INVITE "); len(invs) > 0 {
			offer = regexp.MustCompile(`(?m)^m=audio ([0-9]+) `).FindStringSubmatch(invs[0])
		}
		if time.Now().After(deadline) {
			t.Fatal("no INVITE with an SDP offer")
		}
	}
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
