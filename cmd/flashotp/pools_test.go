package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flashotp/dialer"
	"flashotp/internal/peers"
	"flashotp/numberpool"
)

// A trunk that answers 403 for a CLI gets that CLI quarantined: the next sends use the other number.
func TestQuarantineOn403(t *testing.T) {
	reject := peers.StartUAS(t, "reject_403.xml", 1)
	ring := peers.StartUAS(t, "ring_cancel.xml", 6)
	cfg := testConfig(t, ring.Addr)
	cfg.OTP.MinCodeSpace = 1 // two numbers, for the test
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Entries: []numberpool.FileEntry{{Numbers: []string{"+442079460001", "+442079460002"}}}}}
	cfg.HTTP.AdminToken = "t0k"
	cfg.Dialer.DialTimeout = 300 * time.Millisecond
	// The first call goes to the rejecting trunk; a 403 is not retried elsewhere.
	cfg.Trunks = []dialer.Trunk{{Name: "rejecting", Address: reject.Addr, Priority: 1}, {Name: "ringing", Address: ring.Addr, Priority: 2}}
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

// `flashotp apps` and `flashotp keys` against the built binary: an app made live takes sends with its own
// key and fraud guards, keys rotate and revoke, and all of it survives a restart.
func TestBinaryAppsAdmin(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel.xml", 1)
	config := strings.Replace(engineConfig(t.TempDir(), uas.Addr, ""), "http:\n  listen: 127.0.0.1:0\n", "http:\n  listen: 127.0.0.1:0\n  admin_token: t0k\n", 1)
	p, c := serve(t, config)
	cli := func(ok bool, args ...string) string {
		t.Helper()
		cmd := start(t, append(args[:1:1], append([]string{"--url", c.base, "--token", "t0k"}, args[1:]...)...)...)
		<-cmd.done
		if (cmd.cmd.ProcessState.ExitCode() == 0) != ok {
			t.Fatalf("flashotp %v: exit %d: %s %s", args, cmd.cmd.ProcessState.ExitCode(), cmd.stdout, cmd.stderr)
		}
		return cmd.stdout.String() + cmd.stderr.String()
	}
	var created struct {
		App struct {
			ID               string   `json:"id"`
			MaxAttempts      int      `json:"max_attempts"`
			AllowedCountries []string `json:"allowed_countries"`
		} `json:"app"`
		Key struct{ Key, Secret string } `json:"key"`
	}
	out := cli(true, "apps", "create", "shop", "--pools", "demo", "--set", `{"allowed_countries":["GB"],"max_attempts":3}`)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key.Secret == "" || created.App.MaxAttempts != 3 {
		t.Fatalf("apps create: %v\n%s", err, out)
	}
	send := func(key, secret, to string) answer {
		return c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"shop","recipient":%q,"channel":"flashcall"}`, to), "X-API-Key", key, "X-API-Secret", secret)
	}
	if a := send(created.Key.Key, created.Key.Secret, "+447400123456"); a.status != 202 {
		t.Fatalf("send as the new app: %d %s", a.status, a.raw)
	}
	if a := send(created.Key.Key, created.Key.Secret, recipient); a.status != 403 || errCode(a) != "destination_blocked" {
		t.Fatalf("send outside the app's countries: %d %s", a.status, a.raw)
	}
	var second, rotated struct{ Key, Secret string }
	_ = json.Unmarshal([]byte(cli(true, "keys", "create", "shop")), &second)
	_ = json.Unmarshal([]byte(cli(true, "keys", "rotate", "shop", created.Key.Key)), &rotated)
	if rotated.Key != created.Key.Key || rotated.Secret == created.Key.Secret || second.Secret == "" {
		t.Fatalf("create %+v, rotate %+v", second, rotated)
	}
	if a := c.do("GET", "/otp/list", "", "X-API-Key", created.Key.Key, "X-API-Secret", created.Key.Secret); a.status != 401 {
		t.Fatalf("old secret after rotate: %d", a.status)
	}
	cli(true, "keys", "revoke", "shop", second.Key)
	if a := c.do("GET", "/otp/list", "", "X-API-Key", second.Key, "X-API-Secret", second.Secret); a.status != 401 {
		t.Fatalf("revoked key: %d", a.status)
	}
	if out := cli(false, "apps", "update", "demo", "--set", `{"ttl":"10m"}`); !strings.Contains(out, "config file") {
		t.Fatalf("updating a config app: %s", out)
	}
	if out := cli(true, "apps", "update", "shop", "--set", `{"ttl":"10m"}`); !strings.Contains(out, `"ttl": "10m0s"`) {
		t.Fatalf("apps update: %s", out)
	}
	if out := cli(false, "apps", "update", "shop", "--set", `{"code_length":12}`); !strings.Contains(out, "code_length") {
		t.Fatalf("bad setting: %s", out)
	}

	p.kill(syscall.SIGTERM)
	_, c = serve(t, config)
	if a := c.do("GET", "/otp/list", "", "X-API-Key", rotated.Key, "X-API-Secret", rotated.Secret); a.status != 200 || len(a.body["items"].([]any)) != 1 {
		t.Fatalf("after restart, the rotated key lists the app's send: %d %s", a.status, a.raw)
	}
	list := regexp.MustCompile(` +`).ReplaceAllString(cli(true, "apps", "list"), " ")
	if !strings.Contains(list, "demo config demo 4 5m0s 5 any") || !strings.Contains(list, "shop api demo 4 10m0s 3 GB") {
		t.Fatalf("apps list:\n%s", list)
	}
	if keys := cli(true, "keys", "list", "shop"); !strings.Contains(keys, "revoked") || strings.Contains(keys, rotated.Secret) {
		t.Fatalf("keys list:\n%s", keys)
	}
	cli(true, "apps", "delete", "shop")
	if a := c.do("GET", "/otp/list", "", "X-API-Key", rotated.Key, "X-API-Secret", rotated.Secret); a.status != 401 {
		t.Fatalf("key of a deleted app: %d", a.status)
	}
}

// runCLI runs the built binary with args and the environment given (no FLASHOTP_* variable of the test's
// own), and returns its exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLASHOTP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := startCmd(t, cmd)
	<-p.done
	return p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()
}

// The admin commands as an operator first meets them: an engine without http.admin_token is named as
// such, the token taken from the environment works but is never printed, an unknown subcommand fails,
// -o json prints the API's answer, and `apps get` and `pools get` show one item.
func TestBinaryAdminCLI(t *testing.T) {
	const token = "t0k-not-for-help-output"
	cfg := testConfig(t, "127.0.0.1:9") // nothing is sent
	cfg.HTTP.AdminToken = token
	on := "http://" + startMain(t, cfg).HTTPAddr
	off := "http://" + startMain(t, testConfig(t, "127.0.0.1:9")).HTTPAddr
	withToken := []string{"FLASHOTP_HTTP_ADMIN_TOKEN=" + token, "FLASHOTP_ADMIN_URL=" + on}

	t.Run("admin API off", func(t *testing.T) {
		for _, args := range [][]string{{"pools", "list"}, {"apps", "get", "demo"}, {"keys", "list", "demo"}, {"store", "backup", filepath.Join(t.TempDir(), "b.db")}} {
			code, _, stderr := runCLI(t, nil, append(args, "--url", off, "--token", "any")...)
			if code == 0 || !strings.Contains(stderr, "admin API is off on the engine at "+off) || !strings.Contains(stderr, "http.admin_token") {
				t.Errorf("%v against an engine without a token: exit %d, %s", args, code, stderr)
			}
		}
	})

	t.Run("token from the environment, never printed", func(t *testing.T) {
		for _, args := range [][]string{{"pools", "--help"}, {"apps", "list", "--help"}, {"keys", "--help"}, {"store", "backup", "--help"}} {
			code, stdout, stderr := runCLI(t, withToken, args...)
			if code != 0 || strings.Contains(stdout+stderr, token) || !strings.Contains(stdout, "FLASHOTP_HTTP_ADMIN_TOKEN") {
				t.Errorf("%v: exit %d; want the env var named and the token not shown:\n%s%s", args, code, stdout, stderr)
			}
		}
		if code, stdout, stderr := runCLI(t, withToken, "apps", "list"); code != 0 || !strings.Contains(stdout, "demo") {
			t.Errorf("apps list with the token and URL from the environment: exit %d %s %s", code, stdout, stderr)
		}
		if code, _, stderr := runCLI(t, []string{"FLASHOTP_ADMIN_URL=" + on}, "apps", "list"); code == 0 || !strings.Contains(stderr, "no admin token") {
			t.Errorf("apps list without a token: exit %d %s", code, stderr)
		}
	})

	t.Run("unknown subcommand", func(t *testing.T) {
		for _, group := range [][]string{{}, {"pools"}, {"apps"}, {"keys"}, {"store"}, {"completion"}} {
			code, _, stderr := runCLI(t, withToken, append(group, "bogus")...)
			if code == 0 || !strings.Contains(stderr, `unknown command "bogus"`) {
				t.Errorf("flashotp %v bogus: exit %d, %q", group, code, stderr)
			}
		}
		if code, stdout, _ := runCLI(t, nil, "pools"); code != 0 || !strings.Contains(stdout, "Available Commands") {
			t.Errorf("flashotp pools alone: exit %d, want its help:\n%s", code, stdout)
		}
	})

	t.Run("output json", func(t *testing.T) {
		c := client{t, on}
		for _, tc := range []struct {
			args []string
			path string
		}{
			{[]string{"pools", "list", "-o", "json"}, "/admin/pools"},
			{[]string{"pools", "--output", "json", "get", "demo"}, "/admin/pools/demo"},
			{[]string{"apps", "list", "--output=json"}, "/admin/apps"},
			{[]string{"apps", "get", "demo", "-o", "json"}, "/admin/apps/demo"},
			{[]string{"keys", "list", "demo", "-o", "json"}, "/admin/apps/demo/keys"},
		} {
			code, stdout, stderr := runCLI(t, withToken, tc.args...)
			var got, want any
			if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
				t.Errorf("%v: exit %d, %v:\n%s%s", tc.args, code, err, stdout, stderr)
				continue
			}
			api := c.do("GET", tc.path, "", "Authorization", "Bearer "+token)
			if err := json.Unmarshal([]byte(api.raw), &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%v printed\n%s\nthe API answers\n%s", tc.args, stdout, api.raw)
			}
		}
		if code, _, stderr := runCLI(t, withToken, "apps", "list", "-o", "yaml"); code == 0 || !strings.Contains(stderr, `--output "yaml": want text or json`) {
			t.Errorf("-o yaml: exit %d %s", code, stderr)
		}
	})

	t.Run("get one", func(t *testing.T) {
		spaces := regexp.MustCompile(` +`)
		if code, stdout, stderr := runCLI(t, withToken, "apps", "get", "demo"); code != 0 || !strings.Contains(spaces.ReplaceAllString(stdout, " "), "demo config demo 4 5m0s 5 any") {
			t.Errorf("apps get demo: exit %d\n%s%s", code, stdout, stderr)
		}
		if code, stdout, stderr := runCLI(t, withToken, "pools", "get", "demo"); code != 0 || !strings.Contains(spaces.ReplaceAllString(stdout, " "), "demo e1 +44207946XXXX any any 1 true 0 config") {
			t.Errorf("pools get demo: exit %d\n%s%s", code, stdout, stderr)
		}
		for _, args := range [][]string{{"apps", "get", "nope"}, {"pools", "get", "nope"}} {
			if code, _, stderr := runCLI(t, withToken, args...); code == 0 || !strings.Contains(stderr, "404 not_found") {
				t.Errorf("%v: exit %d %s", args, code, stderr)
			}
		}
	})
}
