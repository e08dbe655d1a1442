package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"flashotp/configs"
	"flashotp/sip"
)

// /metrics counts the calls, picks, sends and verifies of the engine, with no phone number anywhere; the
// profiles are behind the admin token.
func TestMetrics(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	cfg.Phone = configs.Phone{Enabled: true, Listen: "127.0.0.1:0", Mode: sip.PhoneRing}
	cfg.HTTP.AdminToken = "t0k"
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.send(recipient).body["verification_id"].(string)
	c.waitCall(id)
	c.verify(id, "0000")

	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		body = c.do("GET", "/metrics", "").raw
		if strings.Contains(body, `flashotp_calls_ended_total{outcome="missed",reason="",trunk="sipp"} 1`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`flashotp_calls_started_total{trunk="sipp"} 1`,
		`flashotp_calls_ended_total{outcome="missed",reason="",trunk="sipp"} 1`,
		`flashotp_calls_in_flight 0`,
		`flashotp_pool_picks_total{pool="demo"} 1`,
		`flashotp_send_duration_seconds_count 1`,
		`flashotp_post_dial_delay_seconds_count{trunk="sipp"} 1`,
		`flashotp_ring_to_cancel_seconds_count 1`,
		`flashotp_dialer_queue_depth 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !regexp.MustCompile(`flashotp_verify_duration_seconds_count\{result="(invalid_code|approved)"\} 1`).MatchString(body) {
		t.Errorf("/metrics has no verify count")
	}
	if regexp.MustCompile(`\+?(1415555|44207946)[0-9]{4}`).MatchString(body) {
		t.Errorf("a phone number in /metrics")
	}
	if a := c.do("GET", "/admin/debug/pprof/goroutine?debug=1", ""); a.status != 401 {
		t.Errorf("pprof without the admin token: %d", a.status)
	}
	if a := c.do("GET", "/admin/debug/pprof/goroutine?debug=1", "", "Authorization", "Bearer t0k"); a.status != 200 || !strings.Contains(a.raw, "goroutine profile") {
		t.Errorf("pprof with the admin token: %d", a.status)
	}
}
