package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/dialer"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/numberpool"
	"flashotp/store"
)

// testConfig is the demo configuration on free loopback ports in a temporary directory, with trunk as its
// one trunk and the built-in phone off.
func testConfig(t *testing.T, trunk string) configs.Config {
	t.Helper()
	cfg := configs.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Store.Path = filepath.Join(t.TempDir(), "flashotp.db")
	cfg.Trunks = []dialer.Trunk{{Name: "sipp", Address: trunk, Transport: "udp"}}
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	cfg.Apps = []apps.ConfigApp{{App: apps.App{ID: "demo"}, APIKey: "demo", APISecret: "demo-secret"}}
	cfg.Dialer.DialTimeout = 2 * time.Second
	cfg.Dialer.CancelGuard = time.Second
	cfg.HTTP.DrainDelay = 0 // no load balancer: tests that stop the engine need not wait (TestDrain does)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startMain runs the engine in-process until the test ends.
func startMain(t *testing.T, cfg configs.Config) *Main {
	t.Helper()
	m := NewMain(cfg, quietLog())
	startRun(t, m)
	return m
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRun runs m until the test ends, and fails the test if its stop fails.
func startRun(t *testing.T, m *Main) {
	t.Helper()
	stop := runUntilStopped(t, m)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("engine stop: %v", err)
		}
	})
}

// runUntilStopped runs m once it is ready and returns its stop: it stops the engine and returns what Run
// returned (once; the test's end stops it too, if the test did not).
func runUntilStopped(t *testing.T, m *Main) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		cancel()
		t.Fatalf("engine did not start: %v", err)
	}
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// client calls the API as the demo app.
type client struct {
	t    *testing.T
	base string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c client) do(method, path, body string, headers ...string) answer {
	c.t.Helper()
	a, err := c.tryDo(method, path, body, headers...)
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

// trySend is send that reports a connection that failed (the engine may be gone) instead of failing.
func (c client) trySend(recipient string) (answer, bool) {
	a, err := c.tryDo("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":%q,"channel":"flashcall"}`, recipient))
	return a, err == nil
}

func (c client) tryDo(method, path, body string, headers ...string) (answer, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", "demo")
	req.Header.Set("X-API-Secret", "demo-secret")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

func (c client) send(recipient string) answer {
	return c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":%q,"channel":"flashcall"}`, recipient))
}

func (c client) verify(id, code string) answer {
	return c.do("POST", "/otp/verify", fmt.Sprintf(`{"appid":"demo","verification_id":%q,"otp_code":%q}`, id, code))
}

// waitCall polls the status until the call has an outcome.
func (c client) waitCall(id string) map[string]any {
	c.t.Helper()
	var a answer
	var state any
	ended := testwait.Until(10*time.Second, func() bool {
		if a = c.do("GET", "/otp/status?verification_id="+id, ""); a.status != 200 {
			c.t.Fatalf("status: %d %s", a.status, a.raw)
		}
		state = a.body["call"].(map[string]any)["state"]
		return state == "missed" || state == "answered" || state == "failed"
	})
	if !ended {
		c.t.Fatalf("call still %v: %s", state, a.raw)
	}
	return a.body
}

func errCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

var fromUser = regexp.MustCompile(`(?m)^From: <sip:(\+[0-9]+)@`)

// cliOf returns the CLI of the INVITE SIPp received for recipient.
func cliOf(t *testing.T, uas *peers.UAS, recipient string) string {
	t.Helper()
	for _, inv := range uas.Received("INVITE sip:" + recipient + "@") {
		if m := fromUser.FindStringSubmatch(inv); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no INVITE to %s in SIPp's log:\n%s", recipient, uas.Messages())
	return ""
}

const recipient = "+14155552671"

// The flash call through the whole engine against SIPp callees: what the status shows and what verify says.
func TestFlashCallAgainstSIPp(t *testing.T) {
	tests := []struct {
		name, scenario string
		proxy          bool
		dialTimeout    time.Duration
		state          string
		sipCode        float64
		reason         string
		status         string
		resend         bool // resend at once: a call that never rang waits out no resend_cooldown (30 s here)
	}{
		{"ring_cancel", "ring_cancel.xml", false, 2 * time.Second, "missed", 487, "", "pending", false},
		{"ring_cancel_behind_proxy", "ring_cancel_proxy.xml", true, 2 * time.Second, "missed", 487, "", "pending", false},
		{"answer_races_cancel", "answer.xml", false, 2 * time.Second, "answered", 200, "", "pending", false},
		{"busy", "busy.xml", false, 2 * time.Second, "failed", 486, "busy", "failed", true},
		{"silent", "silent.xml", false, 700 * time.Millisecond, "failed", 487, "no_ring", "failed", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 1
			if tc.resend {
				calls = 2
			}
			uas := peers.StartUAS(t, tc.scenario, calls)
			trunk := uas.Addr
			if tc.proxy {
				trunk = peers.StartKamailio(t, "proxy.cfg", uas.Addr).Addr
			}
			cfg := testConfig(t, trunk)
			cfg.Dialer.DialTimeout = tc.dialTimeout
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}

			sent := c.send(recipient)
			if sent.status != 202 {
				t.Fatalf("send: %d %s", sent.status, sent.raw)
			}
			id := sent.body["verification_id"].(string)
			v := c.waitCall(id)
			call := v["call"].(map[string]any)
			if call["state"] != tc.state || call["sip_code"] != tc.sipCode || call["reason"] != tc.reason || v["status"] != tc.status {
				t.Fatalf("got call %v status %v; want %s %v %q, status %s\n%s", call, v["status"], tc.state, tc.sipCode, tc.reason, tc.status, uas.Messages())
			}
			if tc.resend {
				if a := c.do("POST", "/otp/resend", fmt.Sprintf(`{"appid":"demo","verification_id":%q}`, id)); a.status != 202 {
					t.Fatalf("resend at once after a call that never rang: %d %s", a.status, a.raw)
				}
				if v := c.waitCall(id); v["status"] != tc.status || v["resends"] != 1.0 {
					t.Fatalf("after the resend: %v", v)
				}
			}
			if code := uas.Wait(t, 10*time.Second); code != 0 {
				t.Fatalf("sipp exit %d: scenario incomplete\n%s", code, uas.Messages())
			}
			cli := cliOf(t, uas, recipient)
			if !strings.HasPrefix(cli, v["cli_prefix"].(string)) || len(cli) != len(v["cli_prefix"].(string))+4 {
				t.Fatalf("CLI %s does not extend cli_prefix %v by 4 digits", cli, v["cli_prefix"])
			}
			if tc.proxy && len(regexp.MustCompile(`(?m)^Via: `).FindAllString(uas.Received("INVITE ")[0], -1)) != 2 {
				t.Fatalf("INVITE did not cross the proxy:\n%s", uas.Received("INVITE ")[0])
			}
			got := c.verify(id, cli[len(cli)-4:])
			switch tc.status {
			case "pending":
				if got.status != 200 || got.body["status"] != "approved" {
					t.Fatalf("verify: %d %s", got.status, got.raw)
				}
			case "failed":
				if got.status != 410 || errCode(got) != "undeliverable" {
					t.Fatalf("verify after a call that never rang: %d %s", got.status, got.raw)
				}
			}
		})
	}
}

// Verify's answers over one verification's life, against a SIPp callee that is cancelled after the 180.
func TestVerifyLifecycle(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel.xml", 2)
	m := startMain(t, testConfig(t, uas.Addr))
	c := client{t, "http://" + m.HTTPAddr}

	first := c.send(recipient)
	id := first.body["verification_id"].(string)
	c.waitCall(id)
	cli := cliOf(t, uas, recipient)
	code := cli[len(cli)-4:]
	wrong := fmt.Sprintf("%04d", (int(code[3]-'0')+1)%10+10*int(code[2]-'0')+100*int(code[1]-'0')+1000*int(code[0]-'0'))

	a := c.verify(id, wrong)
	if a.status != 422 || errCode(a) != "invalid_code" || a.body["error"].(map[string]any)["attempts_remaining"] != 4.0 {
		t.Fatalf("wrong code: %d %s", a.status, a.raw)
	}
	if a = c.verify(id, cli); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("whole CLI: %d %s", a.status, a.raw)
	}
	if a = c.verify(id, code); a.status != 409 || errCode(a) != "already_verified" {
		t.Fatalf("reuse: %d %s", a.status, a.raw)
	}

	// max_attempts (5) wrong codes: four 422s, then 410, and the right code no longer helps.
	second := c.send("+33612345678")
	id2 := second.body["verification_id"].(string)
	c.waitCall(id2)
	cli2 := cliOf(t, uas, "+33612345678")
	wrong2 := "0000"
	if cli2[len(cli2)-4:] == wrong2 {
		wrong2 = "1111"
	}
	for i := 1; i <= 5; i++ {
		a := c.verify(id2, wrong2)
		want, wantCode := 422, "invalid_code"
		if i == 5 {
			want, wantCode = 410, "max_attempts_reached"
		}
		if a.status != want || errCode(a) != wantCode {
			t.Fatalf("wrong code %d: %d %s", i, a.status, a.raw)
		}
	}
	if a := c.verify(id2, cli2[len(cli2)-4:]); a.status != 410 || errCode(a) != "max_attempts_reached" {
		t.Fatalf("right code after the attempts: %d %s", a.status, a.raw)
	}
}

// Bad input of every kind gets its SPEC status and code; no call is placed, nothing is stored, and the
// engine keeps serving.
func TestBadInputChangesNothing(t *testing.T) {
	trunk, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	cfg := testConfig(t, trunk.LocalAddr().String())
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}

	big := `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","reference":"` + strings.Repeat("a", 70000) + `"}`
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		code    string
	}{
		{"malformed json", `{"appid":"demo",`, nil, 400, "invalid_request"},
		{"not an object", `[1,2]`, nil, 400, "invalid_request"},
		{"unknown field", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","evil":1}`, nil, 400, "invalid_request"},
		{"missing recipient", `{"appid":"demo","channel":"flashcall"}`, nil, 400, "invalid_request"},
		{"wrong type", `{"appid":"demo","recipient":14155552671,"channel":"flashcall"}`, nil, 400, "invalid_request"},
		{"trailing data", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"} {}`, nil, 400, "invalid_request"},
		{"other channel", `{"appid":"demo","recipient":"+14155552671","channel":"sms"}`, nil, 400, "invalid_request"},
		{"not e164", `{"appid":"demo","recipient":"4155552671x","channel":"flashcall"}`, nil, 400, "invalid_recipient"},
		{"too short", `{"appid":"demo","recipient":"+1415","channel":"flashcall"}`, nil, 400, "invalid_recipient"},
		{"not a real number", `{"appid":"demo","recipient":"+15551234567","channel":"flashcall"}`, nil, 400, "invalid_recipient"},
		{"crlf in recipient", `{"appid":"demo","recipient":"+14155552671\r\nX-Evil: 1","channel":"flashcall"}`, nil, 400, "invalid_recipient"},
		{"sip header in recipient", `{"appid":"demo","recipient":"+14155552671>;tag=1\r\nContact: <sip:x@evil>","channel":"flashcall"}`, nil, 400, "invalid_recipient"},
		{"crlf in from", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","from":"demo\r\nVia: SIP/2.0/UDP evil"}`, nil, 400, "invalid_request"},
		{"unknown from", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","from":"P-Asserted-Identity: <sip:1@x>"}`, nil, 400, "invalid_request"},
		{"premium rate", `{"appid":"demo","recipient":"+19005550123","channel":"flashcall"}`, nil, 403, "destination_blocked"},
		{"bad code_length", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","code_length":12}`, nil, 400, "invalid_request"},
		{"too large", big, nil, 413, "request_too_large"},
		{"wrong secret", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`, []string{"X-API-Secret", "nope"}, 401, "unauthorized"},
		{"no credentials", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`, []string{"X-API-Key", "", "X-API-Secret", ""}, 401, "unauthorized"},
		{"other app", `{"appid":"other","recipient":"+14155552671","channel":"flashcall"}`, nil, 403, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := c.do("POST", "/otp/send", tc.body, tc.headers...)
			if a.status != tc.status || errCode(a) != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
			if msg, _ := a.body["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatalf("no message naming the problem: %s", a.raw)
			}
		})
	}
	verifyTests := []struct {
		name, body, code string
		status           int
	}{
		{"crlf in code", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ","otp_code":"12\r\n34"}`, "invalid_request", 400},
		{"letters in code", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ","otp_code":"12ab"}`, "invalid_request", 400},
		{"unknown verification", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ","otp_code":"1234"}`, "not_found", 404},
		{"malformed id", `{"appid":"demo","verification_id":"../../etc","otp_code":"1234"}`, "invalid_request", 400},
		{"missing code", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ"}`, "invalid_request", 400},
	}
	for _, tc := range verifyTests {
		t.Run("verify "+tc.name, func(t *testing.T) {
			a := c.do("POST", "/otp/verify", tc.body)
			if a.status != tc.status || errCode(a) != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
		})
	}

	resendTests := []struct {
		name, body, code string
		status           int
	}{
		{"unknown verification", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ"}`, "not_found", 404},
		{"malformed id", `{"appid":"demo","verification_id":"otp_1\r\nVia: x"}`, "invalid_request", 400},
		{"unknown field", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ","to":"+1"}`, "invalid_request", 400},
		{"other channel", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ","channel":"sms"}`, "invalid_request", 400},
		{"other app", `{"appid":"other","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ"}`, "forbidden", 403},
	}
	for _, tc := range resendTests {
		t.Run("resend "+tc.name, func(t *testing.T) {
			if a := c.do("POST", "/otp/resend", tc.body); a.status != tc.status || errCode(a) != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
		})
	}
	for _, path := range []string{
		"/otp/list?limit=0", "/otp/list?status=nope", "/otp/list?since=yesterday", "/otp/list?cursor=abc", "/otp/list?foo=1",
		"/otp/logs?type=nope", "/otp/attempts", "/otp/attempts?recipient=%2B1", "/otp/rate-limits?recipient=abc",
		"/otp/reports?group_by=hour", "/otp/reports?since=2026-02-01&until=2026-01-01",
	} {
		if a := c.do("GET", path, ""); a.status != 400 || errCode(a) != "invalid_request" && errCode(a) != "invalid_recipient" {
			t.Errorf("GET %s: %d %s, want 400", path, a.status, a.raw)
		}
	}

	for _, b := range store.VerificationBuckets {
		if n, err := m.db.(boltBackend).Count(b); err != nil || n != 0 {
			t.Fatalf("store holds %d records in %s after bad input (err %v)", n, b, err)
		}
	}
	_ = trunk.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := trunk.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("bad input reached the trunk: %d bytes", n)
	}

	// Still serving: a good send is accepted and its INVITE reaches the trunk.
	if a := c.send(recipient); a.status != 202 {
		t.Fatalf("good send after bad input: %d %s", a.status, a.raw)
	}
	_ = trunk.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := trunk.ReadFrom(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("INVITE sip:"+recipient+"@")) {
		t.Fatalf("no INVITE after a good send: %v %q", err, buf[:n])
	}
}
