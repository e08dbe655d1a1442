package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flashotp/configs"
)

// The log section picks the format and the lowest level logged: each event is one line, in JSON a whole
// object.
func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		want          []string // the messages logged, of debug, info, warn, error
	}{
		{"debug", "json", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"info", "json", []string{"INFO", "WARN", "ERROR"}},
		{"warn", "JSON", []string{"WARN", "ERROR"}},
		{"ERROR", "json", []string{"ERROR"}},
		{"warn", "text", []string{"WARN", "ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.level+" "+tt.format, func(t *testing.T) {
			var out bytes.Buffer
			log := newLogger(&out, configs.Log{Level: tt.level, Format: tt.format})
			log.Debug("DEBUG", "n", 1)
			log.Info("INFO", "n", 2)
			log.Warn("WARN", "n", 3)
			log.Error("ERROR", "n", 4, "err", "a\nb")
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			var got []string
			for _, l := range lines {
				if strings.EqualFold(tt.format, "json") {
					var rec struct{ Level, Msg string }
					if err := json.Unmarshal([]byte(l), &rec); err != nil {
						t.Fatalf("line %q is not JSON: %v", l, err)
					}
					if rec.Level != rec.Msg {
						t.Errorf("line %q: level %s", l, rec.Level)
					}
					got = append(got, rec.Msg)
				} else {
					m := regexp.MustCompile(`^time=\S+ level=(\w+) msg=(\w+) `).FindStringSubmatch(l)
					if m == nil || m[1] != m[2] {
						t.Fatalf("line %q is not a text record", l)
					}
					got = append(got, m[2])
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("logged %v, want %v", got, tt.want)
			}
		})
	}
}

// `flashotp serve` with FLASHOTP_LOG_FORMAT=json writes nothing on standard error but JSON objects, one per
// line, from start to stop.
func TestBinaryJSONLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "serve", "--config", path)
	cmd.Env = append(os.Environ(), "FLASHOTP_LOG_FORMAT=json", "FLASHOTP_LOG_LEVEL=info")
	p := startCmd(t, cmd)
	m := p.stderr.waitFor(t, regexp.MustCompile(`"msg":"flashotp serving","http":"([^"]+)"`), 15*time.Second)
	c := client{t, "http://" + m[1]}
	if a := c.send(recipient); a.status != 202 {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	p.kill(syscall.SIGTERM)
	lines := strings.Split(p.stderr.String(), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("stderr line %q is not a JSON record (%v)", l, err)
		}
	}
	if !strings.Contains(p.stderr.String(), `"msg":"flashotp stopping"`) {
		t.Errorf("no stop line in:\n%s", p.stderr.String())
	}
}

// http.trusted_proxies reaches the API: from a trusted peer, X-Forwarded-For names the client.
func TestTrustedProxiesWired(t *testing.T) {
	for _, tt := range []struct {
		trusted []string
		want    string
	}{{nil, "demo/127.0.0.1"}, {[]string{"127.0.0.1"}, "demo/203.0.113.7"}} {
		cfg := phoneConfig(t)
		cfg.HTTP.TrustedProxies = tt.trusted
		c, _ := startPhoneMain(t, cfg)
		a := c.do("GET", "/otp/rate-limits?appid=demo", "", "X-Forwarded-For", "203.0.113.7")
		if !strings.Contains(a.raw, `"scope":"client","key":"`+tt.want+`"`) {
			t.Errorf("trusted %v: rate-limits %d %s, want the client key %s", tt.trusted, a.status, a.raw, tt.want)
		}
	}
}
