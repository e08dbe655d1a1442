package peers

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SMTPD is a running aiosmtpd (Debian python3-aiosmtpd) started by testdata/smtpd/smtpd.py: a real SMTP
// server with STARTTLS or implicit TLS and AUTH, writing each message it receives to Dir.
type SMTPD struct {
	Host   string // 127.0.0.1
	Port   int
	Dir    string // where the messages land
	CAFile string // the PEM of the server's self-signed certificate (IP SAN 127.0.0.1), "" without TLS
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    lockedBuffer
	done   chan struct{}
}

// SMTPDOptions choose the server's TLS (starttls, implicit or none) and the one user it accepts (none: no
// AUTH).
type SMTPDOptions struct {
	TLS      string
	User     string
	Password string
}

// SMTPMessage is one message the server received: the DATA as sent, and its envelope.
type SMTPMessage struct {
	Raw      []byte
	MailFrom string   `json:"mail_from"`
	RcptTos  []string `json:"rcpt_tos"`
	Login    *string  `json:"login"` // the AUTH user, nil without AUTH
}

// StartSMTPD runs aiosmtpd on a free loopback port with o's TLS (a self-signed certificate made here) and
// AUTH. Recipients whose local part starts with "reject" get 550 at RCPT; with "tempfail", 451 on the first
// RCPT and 250 after. It is stopped when the test ends.
func StartSMTPD(t testing.TB, o SMTPDOptions) *SMTPD {
	t.Helper()
	py := aiosmtpdPython(t)
	if o.TLS == "" {
		o.TLS = "starttls"
	}
	dir := t.TempDir()
	s := &SMTPD{Host: "127.0.0.1", Dir: filepath.Join(dir, "messages"), done: make(chan struct{})}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "smtpd", "smtpd.py")
	args := []string{script, "--dir", s.Dir, "--tls", o.TLS, "--user", o.User, "--password", o.Password}
	if o.TLS != "none" {
		cert, key := selfSigned(t, dir)
		s.CAFile = cert
		args = append(args, "--cert", cert, "--key", key)
	}
	s.cmd = exec.Command(py, args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stderr = &s.out
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start aiosmtpd: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			stopGroup(s.cmd, s.done)
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		port, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "READY ")))
		if err != nil || !strings.HasPrefix(line, "READY ") {
			t.Fatalf("aiosmtpd did not start (%q):\n%s", line, s.out.String())
		}
		s.Port = port
	case <-time.After(20 * time.Second):
		stopGroup(s.cmd, s.done)
		t.Fatalf("aiosmtpd did not start in 20s:\n%s", s.out.String())
	}
	return s
}

// Addr returns the server's host:port.
func (s *SMTPD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Log returns what the server wrote on standard error.
func (s *SMTPD) Log() string { return s.out.String() }

// Messages returns the messages received so far, in order.
func (s *SMTPD) Messages(t testing.TB) []SMTPMessage {
	t.Helper()
	var out []SMTPMessage
	for n := 1; ; n++ {
		meta, err := os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("%d.json", n)))
		if os.IsNotExist(err) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var m SMTPMessage
		if err := json.Unmarshal(meta, &m); err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		if m.Raw, err = os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("%d.eml", n))); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

// WaitMessages waits up to d for the server to hold n messages and returns them.
func (s *SMTPD) WaitMessages(t testing.TB, n int, d time.Duration) []SMTPMessage {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if got := s.Messages(t); len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("aiosmtpd holds %d messages after %s, want %d:\n%s", len(got), d, n, s.Log())
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// aiosmtpdPython returns a python3 that imports aiosmtpd: Debian's (/usr/bin/python3) first, where the
// package installs it, whatever python3 comes first on PATH.
func aiosmtpdPython(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p
		}
	}
	Missing(t, "python3 with aiosmtpd not found: install the Debian package python3-aiosmtpd (make test does this as root)")
	return ""
}

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and localhost, and its key, in dir.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpd.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "smtpd.crt"), filepath.Join(dir, "smtpd.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
