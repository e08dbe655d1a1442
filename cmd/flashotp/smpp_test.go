package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"flashotp/internal/peers"
	"flashotp/smpp"
	"flashotp/sms"
)

// TestSMSOverSMPP sends a code by SMS through an SMSC (sms.via: smpp): the SMSC gets the submit_sm with the
// code, its delivery receipt makes the step delivered, and the code verifies.
func TestSMSOverSMPP(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "s3cret")
	cfg := channelConfig(t, "127.0.0.1:9") // no call is made: the trunk is never used
	cfg.SMS.Via, cfg.SMS.Sender = sms.ViaSMPP, "FlashOTP"
	cfg.SMPP = []smpp.Settings{smpp.Settings{Name: "test", Address: smsc.Addr, SystemID: "flashotp", Password: "s3cret",
		EnquireLink: time.Second, BindTimeout: 2 * time.Second}.WithDefaults()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.sendOn("sms", "").body["verification_id"].(string)
	v := c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:delivered" })
	st := v["steps"].([]any)[0].(map[string]any)
	if st["via"] != "smpp" || st["segments"] != 1.0 {
		t.Errorf("step %v: want via smpp, 1 segment", st)
	}
	subs := smsc.Events("submit")
	if len(subs) != 1 {
		t.Fatalf("%d submits reached the SMSC, want 1:\n%s", len(subs), smsc.Log())
	}
	sub := subs[0]
	if sub.SourceAddr != "FlashOTP" || sub.SourceTON != 5 || sub.DestAddr != strings.TrimPrefix(recipient, "+") {
		t.Errorf("submit %+v: want from FlashOTP (alphanumeric) to %s", sub, recipient)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(sub.Text)
	if code == "" {
		t.Fatalf("no code in the SMS %q", sub.Text)
	}
	if a := c.verify(id, code); a.status != 200 {
		t.Fatalf("verify the SMS code: %d %s", a.status, a.raw)
	}
}

// TestSMPPBindRefused: an SMSC that refuses the engine's password leaves the engine serving; the SMS waits
// for a bind (and fails auth_failed at its step's end), nothing else is held up.
func TestSMPPBindRefused(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "s3cret")
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.SMS.Via = sms.ViaSMPP
	cfg.SMPP = []smpp.Settings{smpp.Settings{Name: "test", Address: smsc.Addr, SystemID: "flashotp", Password: "wrong",
		EnquireLink: time.Second, BindTimeout: 2 * time.Second}.WithDefaults()}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	if len(smsc.WaitEvents("bind_refused", 1, 5*time.Second)) == 0 {
		t.Fatalf("the engine never tried to bind:\n%s", smsc.Log())
	}
	if a := c.do("GET", "/readyz", ""); a.status != 200 {
		t.Errorf("readyz %d with the SMSC refusing the bind, want 200", a.status)
	}
	c.sendOn("sms", "")
	if n := len(smsc.Events("submit")); n != 0 {
		t.Errorf("%d submits with a refused bind", n)
	}
}

// TestSMPPReceiptFails: a receipt saying UNDELIV fails the step undelivered.
func TestSMPPReceiptFails(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "s3cret")
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.SMS.Via = sms.ViaSMPP
	cfg.SMPP = []smpp.Settings{smpp.Settings{Name: "test", Address: smsc.Addr, SystemID: "flashotp", Password: "s3cret"}.WithDefaults()}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	a := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155550000","channel":"sms"}`) // the test SMSC: UNDELIV
	if a.status != 202 {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	v := c.steps(a.body["verification_id"].(string), "failed", func(s []map[string]any) bool { return stepStates(s) == "sms:failed" })
	if st := v["steps"].([]any)[0].(map[string]any); st["reason"] != "undelivered" {
		t.Errorf("step %v: want failed undelivered", st)
	}
}

// TestSMPPRestart: the SMSC goes away mid-run; a send accepted meanwhile reaches it once it is back (the
// engine rebinds), and its code verifies.
func TestSMPPRestart(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "s3cret")
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.SMS.Via = sms.ViaSMPP
	cfg.SMPP = []smpp.Settings{smpp.Settings{Name: "test", Address: smsc.Addr, SystemID: "flashotp", Password: "s3cret",
		EnquireLink: time.Second, BindTimeout: time.Second}.WithDefaults()}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	first := c.sendOn("sms", "").body["verification_id"].(string)
	c.steps(first, "delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:delivered" })
	smsc.Stop()
	id := c.sendOn("sms", "").body["verification_id"].(string)
	time.Sleep(500 * time.Millisecond)
	if n := len(smsc.Events("submit")); n != 1 {
		t.Fatalf("%d submits with the SMSC stopped, want the first only", n)
	}
	smsc.Start()
	c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:delivered" })
	subs := smsc.Events("submit")
	if len(subs) != 2 {
		t.Fatalf("%d submits, want 2:\n%s", len(subs), smsc.Log())
	}
	code := regexp.MustCompile(`\d{6}`).FindString(subs[1].Text)
	if a := c.verify(id, code); a.status != 200 {
		t.Fatalf("verify the code sent after the restart: %d %s", a.status, a.raw)
	}
}
