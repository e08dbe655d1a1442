package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/email"
	"flashotp/internal/peers"
)

// emailParts returns the subject, text and HTML parts of a received email.
func emailParts(t *testing.T, raw []byte) (subject, text, html string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return subject, text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case "text/html":
			html = string(b)
		}
	}
}

// An email send through the engine reaches aiosmtpd over STARTTLS with AUTH; the code it carries verifies.
// A mailbox the server refuses fails the step rejected. A malformed address is 400 invalid_recipient with
// nothing stored and nothing sent.
func TestEmailAgainstAiosmtpd(t *testing.T) {
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "starttls", User: "flashotp", Password: "s3cret-pw"})
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.Apps[0].Channels = append(cfg.Apps[0].Channels, apps.ChannelEmail)
	cfg.Email = email.DefaultSettings
	cfg.Email.Host, cfg.Email.Port, cfg.Email.CAFile = srv.Host, srv.Port, srv.CAFile
	cfg.Email.Username, cfg.Email.Password = "flashotp", "s3cret-pw"
	cfg.Email.From = "Demo <otp@demo.example>"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}

	a := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"user@example.com","channel":"email","locale":"fr-CA"}`)
	if a.status != 202 {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	id := a.body["verification_id"].(string)
	v := c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "email:sent" })
	if st := v["steps"].([]any)[0].(map[string]any); st["locale"] != "fr" {
		t.Errorf("step %v: want locale fr", st)
	}
	got := srv.WaitMessages(t, 1, 10*time.Second)[0]
	if strings.Join(got.RcptTos, ",") != "user@example.com" || got.MailFrom != "otp@demo.example" {
		t.Errorf("envelope from %q to %v", got.MailFrom, got.RcptTos)
	}
	subject, text, html := emailParts(t, got.Raw)
	match := regexp.MustCompile(`\n(\d{4,10})\n`).FindStringSubmatch(text)
	if match == nil {
		t.Fatalf("no code in the text part %q", text)
	}
	code := match[1]
	if !strings.HasPrefix(subject, code+" est votre code demo") || !strings.Contains(html, ">"+code+"</p>") {
		t.Errorf("subject %q, html %q: want the code %s in French", subject, html, code)
	}
	if a := c.verify(id, code); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify the email's code: %d %s", a.status, a.raw)
	}

	// The server refusing the mailbox (550) fails the step rejected, at once.
	a = c.do("POST", "/otp/send", `{"appid":"demo","recipient":"reject@example.com","channel":"email"}`)
	if a.status != 202 {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	v = c.steps(a.body["verification_id"].(string), "failed", func(s []map[string]any) bool { return stepStates(s) == "email:failed" })
	if st := v["steps"].([]any)[0].(map[string]any); st["reason"] != "rejected" {
		t.Errorf("step %v: want reason rejected", st)
	}

	for _, bad := range []string{"not-an-address", "user@example.com\r\nBcc: evil@example.com", "Evil <evil@example.com>", "a@b.example, evil@example.com"} {
		a := c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":%q,"channel":"email"}`, bad))
		if a.status != 400 || errCode(a) != "invalid_recipient" {
			t.Errorf("recipient %q: %d %s, want 400 invalid_recipient", bad, a.status, a.raw)
		}
	}
	if l := c.do("GET", "/otp/list", ""); l.status != 200 || strings.Count(l.raw, `"verification_id"`) != 2 {
		t.Errorf("list after the refused sends: %d %s, want the two verifications", l.status, l.raw)
	}
	if n := len(srv.Messages(t)); n != 1 {
		t.Errorf("aiosmtpd holds %d messages, want 1", n)
	}
}
