package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/dialer"
	"flashotp/internal/metricstest"
	"flashotp/internal/testwait"
	"flashotp/numberpool"
	"flashotp/sip"
)

// /metrics counts the calls, picks, sends and verifies of the engine, with no phone number anywhere; the
// profiles are behind the admin token.
func TestMetrics(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	cfg.Phone = sip.PhoneSettings{Enabled: true, Listen: "127.0.0.1:0", Mode: sip.PhoneRing}
	cfg.HTTP.AdminToken = "t0k"
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.send(recipient).body["verification_id"].(string)
	c.waitCall(id)
	c.verify(id, "0000")

	// Until the call's end is counted, or 5 s; then the checks below say what is missing.
	var body string
	testwait.Until(5*time.Second, func() bool {
		body = c.do("GET", "/metrics", "").raw
		return strings.Contains(body, `flashotp_calls_ended_total{outcome="missed",reason="",trunk="sipp"} 1`)
	})
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

// metric returns series' value in a scrape of /metrics (0 when absent: a counter not yet counted).
func (c client) metric(series string) float64 {
	c.t.Helper()
	return metricstest.Value(c.t, c.do("GET", "/metrics", "").raw, series)
}

// Each of the engine's counters and gauges moves when its event happens, scraped from the running engine:
// requests by route and status, refused credentials by reason, 429s by scope, verifications by final
// status, a trunk going down; the queue's capacity and the store's errors are there from the start.
func TestMetricsMove(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close() // nothing answers there
	cfg := phoneConfig(t)
	cfg.Trunks = append(cfg.Trunks, dialer.Trunk{Name: "dead", Address: deadAddr, Transport: "udp", Priority: 9, DownAfter: 1})
	cfg.Pool = append(cfg.Pool, numberpool.FilePool{Name: "dead", Entries: []numberpool.FileEntry{{Numbers: []string{"+44207947XXXX"}, Trunks: []string{"dead"}}}})
	cfg.Apps[0].Pools = []string{"demo", "dead"}
	cfg.Apps[0].RateLimits = map[string]apps.Limit{"recipient": {Limit: 1, Window: apps.Duration(time.Hour)}}
	c, phone := startPhoneMain(t, cfg)
	send := func(to, pool string) answer {
		return c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":%q,"channel":"flashcall","from":%q}`, to, pool))
	}
	// moves checks that event moves each series by its delta.
	moves := func(what string, event func(), deltas map[string]float64) {
		t.Helper()
		before := map[string]float64{}
		for s := range deltas {
			before[s] = c.metric(s)
		}
		event()
		for s, d := range deltas {
			if got := c.metric(s) - before[s]; got != d {
				t.Errorf("%s: %s moved by %v, want %v", what, s, got, d)
			}
		}
	}

	for series, want := range map[string]float64{
		`flashotp_trunk_up{trunk="phone"}`: 1,
		`flashotp_trunk_up{trunk="dead"}`:  1,
		`flashotp_dialer_queue_capacity`:   float64(cfg.Dialer.QueueSize),
		`flashotp_store_errors_total`:      0,
	} {
		if got := c.metric(series); got != want {
			t.Errorf("at start %s = %v, want %v", series, got, want)
		}
	}
	if body := c.do("GET", "/metrics", "").raw; !strings.Contains(body, "flashotp_store_errors_total 0") {
		t.Errorf("/metrics lacks the store's errors")
	}

	commits, writes := c.metric("flashotp_store_commits_total"), c.metric("flashotp_store_writes_total")
	var id string
	moves("a send", func() {
		if a := send(recipient, "demo"); a.status != 202 {
			t.Fatalf("send: %d %s", a.status, a.raw)
		} else {
			id = a.body["verification_id"].(string)
		}
	}, map[string]float64{`flashotp_http_requests_total{route="/otp/send",status="202"}`: 1})
	// The send's record was committed: at least one more write, in at least one more commit, and never more
	// commits than writes.
	if dc, dw := c.metric("flashotp_store_commits_total")-commits, c.metric("flashotp_store_writes_total")-writes; dc < 1 || dw < dc {
		t.Errorf("a send moved the store's commits by %v and writes by %v, want at least 1 and at least as many writes", dc, dw)
	}
	cli := c.lastCLI(phone, id, recipient)
	moves("the right code", func() { c.verify(id, cli[len(cli)-4:]) }, map[string]float64{
		`flashotp_verifications_ended_total{status="approved"}`:          1,
		`flashotp_http_requests_total{route="/otp/verify",status="200"}`: 1,
	})
	moves("a wrong secret", func() { c.do("GET", "/otp/list", "", "X-API-Secret", "wrong") }, map[string]float64{
		`flashotp_auth_failures_total{reason="wrong_secret"}`:          1,
		`flashotp_http_requests_total{route="/otp/list",status="401"}`: 1,
	})
	moves("no route", func() { c.do("GET", "/nope", "") }, map[string]float64{
		`flashotp_http_requests_total{route="other",status="404"}`: 1,
	})
	moves("the recipient limit", func() { send(recipient, "demo") }, map[string]float64{
		`flashotp_rate_limited_total{scope="recipient"}`:               1,
		`flashotp_http_requests_total{route="/otp/send",status="429"}`: 1,
	})
	second := send("+14155552672", "demo").body["verification_id"].(string)
	moves("a resend too soon", func() {
		c.do("POST", "/otp/resend", fmt.Sprintf(`{"appid":"demo","verification_id":%q}`, second))
	}, map[string]float64{`flashotp_rate_limited_total{scope="resend_cooldown"}`: 1})

	// A call on a trunk that never answers: it fails before ringing (the verification is failed) and the
	// trunk (down_after 1) is marked down.
	moves("a dead trunk", func() {
		a := send("+14155552673", "dead")
		if a.status != 202 {
			t.Fatalf("send via the dead trunk: %d %s", a.status, a.raw)
		}
		if st := c.waitCall(a.body["verification_id"].(string)); st["status"] != "failed" {
			t.Fatalf("status %v after a call that never rang, want failed", st["status"])
		}
	}, map[string]float64{
		`flashotp_verifications_ended_total{status="failed"}`: 1,
		`flashotp_trunk_up{trunk="dead"}`:                     -1,
		`flashotp_trunk_up{trunk="phone"}`:                    0,
	})
}
