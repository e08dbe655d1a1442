package main

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flashotp/configs"
	"flashotp/internal/peers"
)

// A trunk that answers 403 for a CLI gets that CLI quarantined: the next sends use the other number.
func TestQuarantineOn403(t *testing.T) {
	reject := peers.StartUAS(t, "reject_403.xml", 1)
	ring := peers.StartUAS(t, "ring_cancel.xml", 6)
	cfg := testConfig(t, ring.Addr)
	cfg.OTP.MinCodeSpace = 1 // two numbers, for the test
	cfg.Pool = []configs.Pool{{Name: "demo", Entries: []configs.PoolEntry{{Numbers: []string{"+442079460001", "+442079460002"}}}}}
	cfg.HTTP.AdminToken = "t0k"
	cfg.Dialer.DialTimeout = 300 * time.Millisecond
	// The first call goes to the rejecting trunk; a 403 is not retried elsewhere.
	cfg.Trunks = []configs.Trunk{{Name: "rejecting", Address: reject.Addr, Priority: 1}, {Name: "ringing", Address: ring.Addr, Priority: 2}}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}

	first := c.waitCall(c.send(recipient).body["verification_id"].(string))
	if call := first["call"].(map[string]any); call["state"] != "failed" || call["sip_code"] != 403.0 {
		t.Fatalf("first call %v, want failed 403", call)
	}
	rejected := cliOf(t, reject, recipient)
	pools := c.do("GET", "/admin/pools", "", "Authorization", "Bearer t0k")
	if !strings.Contains(pools.raw, `"cli:`+rejected[:len(rejected)-4]+`****"`) {
		t.Fatalf("%s not quarantined:\n%s", rejected, pools.raw)
	}
	// The rejecting trunk's SIPp took its one call and is gone: later calls find it silent and fail over
	// to the ringing trunk (dial_timeout is short here).
	for i := 0; i < 5; i++ {
		to := fmt.Sprintf("+1415555%04d", 2671+i)
		v := c.waitCall(c.send(to).body["verification_id"].(string))
		got := cliOf(t, ring, to)
		if got == rejected {
			t.Fatalf("send %d used the quarantined CLI %s", i, got)
		}
		if call := v["call"].(map[string]any); call["trunk"] != "ringing" {
			t.Fatalf("call %v", call)
		}
	}
}

// The admin API and `flashotp pools` against the built binary: an entry added live is used at once for its
// country and survives a restart; quarantine and release by hand.
func TestBinaryPoolsAdmin(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel.xml", 2)
	data := t.TempDir()
	config := engineConfig(data, uas.Addr, "") + `  admin_token: t0k
`
	config = strings.Replace(config, "http:\n  listen: 127.0.0.1:0\n", "http:\n  listen: 127.0.0.1:0\n  admin_token: t0k\n", 1)
	config = strings.Replace(config, "    api_secret: demo-secret\n", "    api_secret: demo-secret\n    pools: [demo, live]\n", 1)
	config = strings.TrimSuffix(config, "  admin_token: t0k\n")
	p, c := serve(t, config)
	pools := func(args ...string) string {
		t.Helper()
		cmd := start(t, append([]string{"pools", "--url", c.base, "--token", "t0k"}, args...)...)
		<-cmd.done
		if cmd.cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("flashotp pools %v: %s %s", args, cmd.stdout, cmd.stderr)
		}
		return cmd.stdout.String()
	}

	out := pools("add", "live", "+33198765XXXX", "--countries", "FR")
	if !strings.Contains(out, "added entry e1 to pool live") {
		t.Fatalf("add: %s", out)
	}
	french := "+33612345678"
	c.waitCall(c.send(french).body["verification_id"].(string))
	if cli := cliOf(t, uas, french); !strings.HasPrefix(cli, "+33198765") {
		t.Fatalf("a French recipient got %s, not the local entry added live", cli)
	}
	list := pools("list")
	for _, want := range []string{"live  e1", "+33198765XXXX", "FR", "demo  FR", "demo  *"} {
		if !strings.Contains(regexp.MustCompile(` +`).ReplaceAllString(list, "  "), want) {
			t.Errorf("pools list lacks %q:\n%s", want, list)
		}
	}
	if out := pools("quarantine", "live", "--entry", "e1", "--for", "1h"); !strings.Contains(out, "quarantined until") {
		t.Fatalf("quarantine: %s", out)
	}
	if a := c.send("+33612345679"); a.status != 202 || !strings.HasPrefix(a.body["cli_prefix"].(string), "+44207946") {
		t.Fatalf("with the local entry quarantined, send gave %d %s", a.status, a.raw)
	}
	pools("release", "live", "--entry", "e1")
	// An entry beside the config pool's own.
	if out := pools("add", "demo", "+4930901XXXX", "--countries", "DE"); !strings.Contains(out, "added entry") {
		t.Fatalf("add to the config pool: %s", out)
	}

	p.kill(syscall.SIGTERM)
	_, c = serve(t, config)
	a := c.send("+33612345670")
	if a.status != 202 || !strings.HasPrefix(a.body["cli_prefix"].(string), "+33198765") {
		t.Fatalf("after restart: %d %s", a.status, a.raw)
	}
	if pat := a.body["cli_pattern"].(string); !regexp.MustCompile(pat).MatchString("+331987650000") {
		t.Fatalf("cli_pattern %q does not match the entry's numbers", pat)
	}
	if a := c.send("+4915112345678"); a.status != 202 || a.body["cli_prefix"] != "+4930901" {
		t.Fatalf("after restart, a German recipient: %d %s; want the entry added to the config pool", a.status, a.raw)
	}
}
