package email_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"flashotp/email"
	"flashotp/internal/peers"
	"flashotp/message"
	"flashotp/setting"
	"flashotp/templates"
)

const (
	user     = "flashotp"
	password = "s3cret-pw"
)

func settingsFor(srv *peers.SMTPD, mode string) email.Settings {
	s := email.DefaultSettings
	s.Host, s.Port, s.TLS, s.CAFile = srv.Host, srv.Port, mode, srv.CAFile
	s.Username, s.Password = user, password
	s.From = "Shop OTP <otp@shop.example>"
	s.HELO = "engine.shop.example"
	s.Timeout = 10 * time.Second
	return s
}

func newSender(t *testing.T, s email.Settings) *email.Sender {
	t.Helper()
	snd, err := email.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snd
}

func rendered(t *testing.T, to, code string, d templates.Data) message.Message {
	t.Helper()
	d.Code = code
	e, err := templates.RenderEmail(nil, "en", "en", d)
	if err != nil {
		t.Fatal(err)
	}
	return message.Message{Ref: "v1.0", App: "shop", Channel: "email", To: to, Subject: e.Subject, Text: e.Text, HTML: e.HTML, Code: code, Locale: e.Locale}
}

func send(t *testing.T, snd *email.Sender, m message.Message, d time.Duration) message.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return snd.Send(ctx, m)
}

// parsed is a received message, its parts decoded.
type parsed struct {
	hdr        mail.Header
	text, html string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{hdr: msg.Header}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		part, err := r.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		types = append(types, ct)
		switch ct {
		case "text/plain":
			p.text = string(body)
		case "text/html":
			p.html = string(body)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain then text/html", types)
	}
	return p
}

// A rendered email reaches aiosmtpd over STARTTLS with AUTH, as a transactional multipart/alternative
// message with the code in both parts.
func TestSendStartTLS(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "starttls", User: user, Password: password})
	snd := newSender(t, settingsFor(srv, email.TLSStartTLS))
	m := rendered(t, "user@example.com", "730155", templates.Data{App: "shop", Minutes: 5})
	res := send(t, snd, m, 20*time.Second)
	if res.State != message.Sent || res.ProviderID == "" {
		t.Fatalf("Send = %+v\n%s", res, srv.Log())
	}
	got := srv.WaitMessages(t, 1, 5*time.Second)[0]
	if got.Login == nil || *got.Login != user || got.MailFrom != "otp@shop.example" || strings.Join(got.RcptTos, ",") != "user@example.com" {
		t.Errorf("envelope: login %v, from %q, to %v", got.Login, got.MailFrom, got.RcptTos)
	}
	p := parse(t, got.Raw)
	from, err := p.hdr.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Shop OTP" || from[0].Address != "otp@shop.example" {
		t.Errorf("From %q: %v %v", p.hdr.Get("From"), from, err)
	}
	if to, err := p.hdr.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "user@example.com" {
		t.Errorf("To %q", p.hdr.Get("To"))
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(p.hdr.Get("Subject"))
	if subject != "730155 is your shop verification code" {
		t.Errorf("Subject %q", subject)
	}
	if id := p.hdr.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@shop.example>") || id != "<"+res.ProviderID+">" {
		t.Errorf("Message-ID %q (provider ID %q)", id, res.ProviderID)
	}
	if d, err := p.hdr.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %q: %v", p.hdr.Get("Date"), err)
	}
	if p.hdr.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", p.hdr.Get("Auto-Submitted"))
	}
	for _, h := range []string{"Bcc", "Cc", "List-Unsubscribe", "User-Agent", "X-Mailer"} {
		if v, ok := p.hdr[h]; ok {
			t.Errorf("header %s: %q", h, v)
		}
	}
	if !strings.Contains(p.text, "\n730155\n") || !strings.Contains(p.text, "expires in 5 minutes") {
		t.Errorf("text part %q", p.text)
	}
	if !strings.Contains(p.html, ">730155</p>") || !strings.Contains(p.html, "<!DOCTYPE html>") {
		t.Errorf("html part %q", p.html)
	}
}

// A template variable holding a line break and a header cannot add a header, nor a recipient.
func TestHeaderInjection(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "starttls", User: user, Password: password})
	snd := newSender(t, settingsFor(srv, email.TLSStartTLS))
	m := rendered(t, "user@example.com", "4821", templates.Data{App: "shop\r\nBcc: evil@example.com", Minutes: 5})
	m2 := m
	m2.Subject = "Code 4821\r\nBcc: evil@example.com\r\n\r\nbody"
	for _, m := range []message.Message{m, m2} {
		if res := send(t, snd, m, 20*time.Second); res.State != message.Sent {
			t.Fatalf("Send = %+v", res)
		}
	}
	for _, got := range srv.WaitMessages(t, 2, 5*time.Second) {
		if strings.Join(got.RcptTos, ",") != "user@example.com" {
			t.Errorf("envelope recipients %v", got.RcptTos)
		}
		p := parse(t, got.Raw)
		if _, ok := p.hdr["Bcc"]; ok {
			t.Errorf("a Bcc header got in:\n%s", got.Raw)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(p.hdr.Get("Subject"))
		if strings.ContainsAny(subject, "\r\n") || !strings.Contains(subject, "4821") {
			t.Errorf("Subject %q", subject)
		}
	}
	// A recipient with header text never reaches the server.
	for _, to := range []string{"user@example.com\r\nBcc: evil@example.com", "a@b.c, evil@example.com", "Evil <evil@example.com>", ""} {
		m := m
		m.To = to
		if res := send(t, snd, m, 5*time.Second); res.State != message.Failed || res.Reason != message.ReasonRejected {
			t.Errorf("To %q: %+v", to, res)
		}
	}
	if n := len(srv.Messages(t)); n != 2 {
		t.Errorf("the server holds %d messages, want 2", n)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "implicit", User: user, Password: password})
	snd := newSender(t, settingsFor(srv, email.TLSImplicit))
	if res := send(t, snd, rendered(t, "user@example.com", "5521", templates.Data{App: "shop", Minutes: 5}), 20*time.Second); res.State != message.Sent {
		t.Fatalf("Send = %+v\n%s", res, srv.Log())
	}
	got := srv.WaitMessages(t, 1, 5*time.Second)[0]
	if got.Login == nil || *got.Login != user || !strings.Contains(parse(t, got.Raw).text, "5521") {
		t.Errorf("received %+v", got)
	}
}

// A loopback server without TLS or AUTH (a local relay).
func TestSendNoTLS(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "none"})
	s := settingsFor(srv, email.TLSNone)
	s.Username, s.Password = "", ""
	if res := send(t, newSender(t, s), rendered(t, "user@example.com", "9912", templates.Data{App: "shop", Minutes: 5}), 20*time.Second); res.State != message.Sent {
		t.Fatalf("Send = %+v\n%s", res, srv.Log())
	}
	srv.WaitMessages(t, 1, 5*time.Second)
	// tls: starttls refuses to go on in clear with a server that offers no STARTTLS, at once.
	s.TLS = email.TLSStartTLS
	start := time.Now()
	if res := send(t, newSender(t, s), rendered(t, "user@example.com", "9913", templates.Data{App: "shop", Minutes: 5}), 10*time.Second); res.State != message.Failed || res.Reason != message.ReasonUnavailable || time.Since(start) > 5*time.Second {
		t.Errorf("starttls against a server without it: %+v after %s", res, time.Since(start))
	}
	if n := len(srv.Messages(t)); n != 1 {
		t.Errorf("the server holds %d messages, want 1", n)
	}
}

// The server's answers map to the step's: 535 auth_failed, 550 rejected, both at once; 451 then 250 sent.
func TestSendFailures(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "starttls", User: user, Password: password})
	s := settingsFor(srv, email.TLSStartTLS)
	snd := newSender(t, s)
	d := templates.Data{App: "shop", Minutes: 5}

	wrong := s
	wrong.Password = "not-it"
	start := time.Now()
	res := send(t, newSender(t, wrong), rendered(t, "user@example.com", "1111", d), 20*time.Second)
	if res.State != message.Failed || res.Reason != message.ReasonAuthFailed || !strings.Contains(res.Detail, "535") || time.Since(start) > 5*time.Second {
		t.Errorf("wrong password: %+v after %s", res, time.Since(start))
	}
	if strings.Contains(res.Detail, "not-it") {
		t.Errorf("the detail shows the password: %q", res.Detail)
	}

	start = time.Now()
	res = send(t, snd, rendered(t, "reject@example.com", "2222", d), 20*time.Second)
	if res.State != message.Failed || res.Reason != message.ReasonRejected || !strings.Contains(res.Detail, "550") || time.Since(start) > 5*time.Second {
		t.Errorf("550: %+v after %s", res, time.Since(start))
	}
	if strings.Contains(res.Detail, "reject@example.com") {
		t.Errorf("the detail shows the recipient: %q", res.Detail)
	}

	// A certificate the engine cannot verify (no ca_file: the system's roots) does not mend in seconds.
	untrusted := s
	untrusted.CAFile = ""
	start = time.Now()
	res = send(t, newSender(t, untrusted), rendered(t, "user@example.com", "1212", d), 20*time.Second)
	if res.State != message.Failed || res.Reason != message.ReasonUnavailable || !strings.Contains(res.Detail, "certificate") || time.Since(start) > 5*time.Second {
		t.Errorf("untrusted certificate: %+v after %s", res, time.Since(start))
	}

	res = send(t, snd, rendered(t, "tempfail@example.com", "3333", d), 20*time.Second)
	if res.State != message.Sent {
		t.Errorf("451 then 250: %+v", res)
	}
	got := srv.WaitMessages(t, 1, 5*time.Second)
	if len(got) != 1 || strings.Join(got[0].RcptTos, ",") != "tempfail@example.com" || !strings.Contains(parse(t, got[0].Raw).text, "3333") {
		t.Errorf("received %+v", got)
	}
}

// A server nobody answers on: retried until the step's time is up, then unavailable.
func TestSendUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // a closed port: connection refused
	s := email.DefaultSettings
	s.Host, s.Port, s.TLS, s.From = "127.0.0.1", port, email.TLSNone, "otp@shop.example"
	start := time.Now()
	res := send(t, newSender(t, s), rendered(t, "user@example.com", "4444", templates.Data{App: "shop", Minutes: 5}), 1500*time.Millisecond)
	if el := time.Since(start); res.State != message.Failed || res.Reason != message.ReasonUnavailable || el < time.Second || el > 3*time.Second {
		t.Errorf("unreachable: %+v after %s", res, el)
	}
}

func TestSettingsValidate(t *testing.T) {
	ok := email.DefaultSettings
	ok.Host, ok.From = "smtp.example.com", "Shop <otp@shop.example>"
	tests := []struct {
		name string
		set  func(s *email.Settings)
		want string // the bad key; "": accepted
	}{
		{"ok", func(s *email.Settings) {}, ""},
		{"off", func(s *email.Settings) { *s = email.DefaultSettings }, ""},
		{"from without host", func(s *email.Settings) { s.Host = "" }, "host"},
		{"tls unknown", func(s *email.Settings) { s.TLS = "ssl" }, "tls"},
		{"none remote", func(s *email.Settings) { s.TLS = email.TLSNone }, "tls"},
		{"none remote allowed", func(s *email.Settings) { s.TLS, s.AllowInsecure = email.TLSNone, true }, ""},
		{"none loopback", func(s *email.Settings) { s.TLS, s.Host = email.TLSNone, "127.0.0.1" }, ""},
		{"none localhost", func(s *email.Settings) { s.TLS, s.Host = email.TLSNone, "localhost" }, ""},
		{"host with port", func(s *email.Settings) { s.Host = "smtp.example.com:587" }, "host"},
		{"port", func(s *email.Settings) { s.Port = 70000 }, "port"},
		{"from missing", func(s *email.Settings) { s.From = "" }, "from"},
		{"from bad", func(s *email.Settings) { s.From = "not an address" }, "from"},
		{"from two", func(s *email.Settings) { s.From = "a@b.example, c@d.example" }, "from"},
		{"from line break", func(s *email.Settings) { s.From = "otp@shop.example\r\nBcc: evil@example.com" }, "from"},
		{"password alone", func(s *email.Settings) { s.Password = "x" }, "username"},
		{"helo", func(s *email.Settings) { s.HELO = "bad name" }, "helo"},
		{"helo literal", func(s *email.Settings) { s.HELO = "[192.0.2.1]" }, ""},
		{"timeout", func(s *email.Settings) { s.Timeout = 0 }, "timeout"},
		{"max connections", func(s *email.Settings) { s.MaxConnections = 0 }, "max_connections"},
		{"ca file", func(s *email.Settings) { s.CAFile = "/nonexistent.pem" }, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.set(&s)
			err := s.Validate()
			var keys []string
			for _, e := range setting.Split(err) {
				var se *setting.Error
				if !errors.As(e, &se) {
					t.Fatalf("not a *setting.Error: %v", e)
				}
				keys = append(keys, se.Key)
			}
			if strings.Join(keys, ",") != tt.want {
				t.Errorf("Validate() = %v, want an error of key %q", err, tt.want)
			}
		})
	}
}
