package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	apiclient "flashotp/client"
	"flashotp/configs"
	"flashotp/httpapi"
	"flashotp/internal/peers"
	"flashotp/sip"
)

// repoRoot is the repository, seen from this package's directory (where go test runs).
var repoRoot = filepath.Join("..", "..")

// The systemd unit passes `systemd-analyze verify` without a word (unknown keys and bad values are only
// warnings there, so any output fails the test), scores OK (at most 2.0) on `systemd-analyze security`, and
// gives a stop more time than the engine's drain takes.
func TestSystemdUnit(t *testing.T) {
	analyze := peers.Require(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "flashotp.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's program to exist: point it at an executable that does (this test binary).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const bin = "/usr/local/bin/flashotp"
	if !strings.Contains(string(unit), "ExecStart="+bin+" ") {
		t.Fatalf("ExecStart does not run %s", bin)
	}
	path := filepath.Join(t.TempDir(), "flashotp.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), bin, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}

	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(string(unit))
	if m == nil {
		t.Fatal("no TimeoutStopSec")
	}
	stop, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", m[1], err)
	}
	if drain := configs.Default().Dialer.ShutdownTimeout + configs.Default().HTTP.DrainDelay; stop <= drain {
		t.Errorf("TimeoutStopSec=%s: systemd would kill the engine before its drain (%s) ends", stop, drain)
	}
}

// The alert rules pass promtool's check, and its unit tests (each rule fires on the series it is about and
// not on healthy ones) pass: a rule that can never fire fails here.
func TestAlertRules(t *testing.T) {
	promtool := peers.Require(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "flashotp-alerts.yml"},
		{"test", "rules", "flashotp-alerts.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every flashotp_* metric the dashboard and the alert rules query is one the engine serves. Labelled
// metrics appear on /metrics only once a label set is used, so the test uses the engine a little (a send to
// the built-in phone, a wrong code, a wrong secret); a name still absent must at least be registered by the
// metrics package (a name in its source), so that a typo in a query fails here.
func TestDashboardMetricsExist(t *testing.T) {
	used := map[string][]string{} // metric name -> files that query it
	nameRe := regexp.MustCompile(`flashotp_[a-z_]+`)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "flashotp-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range nameRe.FindAllString(q.Expr, -1) {
				used[n] = append(used[n], "dashboard")
			}
		}
	}
	rules, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", "flashotp-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if strings.Contains(line, "description:") || strings.Contains(line, "summary:") {
			continue // prose, not a query
		}
		for _, n := range nameRe.FindAllString(line, -1) {
			used[n] = append(used[n], "alert rules")
		}
	}

	cfg := testConfig(t, "127.0.0.1:0")
	cfg.Phone = sip.PhoneSettings{Enabled: true, Listen: "127.0.0.1:0", Mode: sip.PhoneRing}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.send(recipient).body["verification_id"].(string)
	c.waitCall(id)
	c.verify(id, "0000")
	c.do("GET", "/otp/status?verification_id="+id, "", "X-API-Secret", "wrong")
	served := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(c.do("GET", "/metrics", "").raw, -1) {
		served[m[1]] = true
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				served[m[1]+s] = true
			}
		}
	}
	registered := registeredMetrics(t)

	var missing []string
	for n, where := range used {
		if served[n] {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !registered[n] && !registered[base] {
			missing = append(missing, n+" (in "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics neither on /metrics nor registered by the metrics package:\n%s", strings.Join(missing, "\n"))
	}
}

// registeredMetrics are the flashotp_* names written in the metrics package's source.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "metrics", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("metrics package source: %v", err)
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(flashotp_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
	}
	return names
}

// `flashotp healthcheck` exits 0 only when /healthz answers 200; with no --url it probes the config's
// http.listen over loopback.
func TestHealthcheck(t *testing.T) {
	m := startMain(t, testConfig(t, "127.0.0.1:0"))
	closed := closedTCPAddr(t)
	for _, tc := range []struct {
		name    string
		url     string
		healthy bool
	}{
		{"healthy", "http://" + m.HTTPAddr + "/healthz", true},
		{"not 200", "http://" + m.HTTPAddr + "/nope", false},
		{"nothing listening", "http://" + closed + "/healthz", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			root.SetArgs([]string{"healthcheck", "--url", tc.url, "--timeout", "2s"})
			err := root.Execute()
			if tc.healthy && err != nil {
				t.Errorf("healthcheck: %v", err)
			}
			if !tc.healthy && !errors.Is(err, apiclient.ErrUnhealthy) {
				t.Errorf("healthcheck of %s: %v, want apiclient.ErrUnhealthy", tc.url, err)
			}
		})
	}

	for _, tc := range []struct {
		listen, cert, want string
	}{
		{"0.0.0.0:8080", "", "http://127.0.0.1:8080/healthz"},
		{"[::]:9090", "", "http://127.0.0.1:9090/healthz"},
		{":8080", "", "http://127.0.0.1:8080/healthz"},
		{"10.1.2.3:8080", "", "http://10.1.2.3:8080/healthz"},
		{"[::1]:8443", "c.pem", "https://[::1]:8443/healthz"},
	} {
		if got := healthURL(httpapi.Settings{Listen: tc.listen, TLSCert: tc.cert}); got != tc.want {
			t.Errorf("healthURL(%q, tls %v) = %q, want %q", tc.listen, tc.cert != "", got, tc.want)
		}
	}
}

// closedTCPAddr is a loopback address nothing listens on (a port just released).
func closedTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
