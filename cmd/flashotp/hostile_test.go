package main

import (
	"strings"
	"testing"
	"time"

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
