package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/smsgw"
)

const (
	gwSID   = "AC0123456789abcdef0123456789abcdef"
	gwToken = "twilio-auth-token"
)

// twilioGateway is a local HTTP server shaped like Twilio's Messages API: it checks what Twilio's
// documentation requires of a request (path, HTTP Basic, a form of To, From, Body, StatusCallback) and
// answers as answer says.
type twilioGateway struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	forms  []url.Values
	answer func(n int) (int, string)
}

func startTwilio(t *testing.T, answer func(n int) (int, string)) *twilioGateway {
	g := &twilioGateway{t: t, answer: answer}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		u, p, ok := r.BasicAuth()
		if r.Method != "POST" || r.URL.Path != "/2010-04-01/Accounts/"+gwSID+"/Messages.json" || !ok || u != gwSID || p != gwToken ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || err != nil {
			t.Errorf("not a Twilio request: %s %s auth %q %v %q: %s", r.Method, r.URL, u, ok, r.Header.Get("Content-Type"), body)
			w.WriteHeader(400)
			return
		}
		g.mu.Lock()
		g.forms = append(g.forms, form)
		n := len(g.forms)
		g.mu.Unlock()
		code, out := g.answer(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, out)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *twilioGateway) form(i int) url.Values {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i >= len(g.forms) {
		g.t.Fatalf("%d requests reached the gateway, want at least %d", len(g.forms), i+1)
	}
	return g.forms[i]
}

func (g *twilioGateway) count() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.forms) }

// SMS through the HTTP gateway (sms.via: http, preset twilio) against a local Twilio-shaped server: the
// request arrives as Twilio documents it, with the code in its Body; a status callback signed as Twilio
// signs them marks the step delivered and the code verifies; a callback with a bad signature is 403 and
// changes nothing; a gateway answering 500 and then garbage fails the step with bad_response, and the
// engine serves on.
func TestSMSThroughHTTPGateway(t *testing.T) {
	gw := startTwilio(t, func(n int) (int, string) {
		switch n {
		case 1:
			return 201, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`
		case 2:
			return 500, `{"code":20500,"message":"Internal Server Error"}`
		}
		return 201, `<html>not what Twilio answers</html>`
	})
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.SMS.Via, cfg.SMS.Sender = "http", "+15557654321"
	cfg.HTTPSMS = smsgw.DefaultSettings
	cfg.HTTPSMS.Preset, cfg.HTTPSMS.URL, cfg.HTTPSMS.AccountSID, cfg.HTTPSMS.AuthToken = "twilio", gw.URL, gwSID, gwToken
	// The engine's public URL as Twilio would reach it (a proxy in front): the callbacks are signed for it
	// and posted here to the engine's own address.
	cfg.HTTPSMS.CallbackBaseURL = "https://otp.example.com/flashotp"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	startRun(t, m)
	c := client{t, "http://" + m.HTTPAddr}

	id := c.sendOn("sms", "").body["verification_id"].(string)
	v := c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "sms:sent" })
	if st := v["steps"].([]any)[0].(map[string]any); st["via"] != "http" || st["segments"] != 1.0 {
		t.Errorf("step %v: want via http, 1 segment", st)
	}
	form := gw.form(0)
	cb := form.Get("StatusCallback")
	if form.Get("To") != recipient || form.Get("From") != "+15557654321" || !strings.HasPrefix(cb, "https://otp.example.com/flashotp/callbacks/sms/"+id) || len(form) != 4 {
		t.Fatalf("form %v: want To, From, Body, StatusCallback", form)
	}
	match := smsCode.FindStringSubmatch(form.Get("Body"))
	if match == nil {
		t.Fatalf("no code in the Body %q", form.Get("Body"))
	}
	path := strings.TrimPrefix(cb, "https://otp.example.com/flashotp")

	callback := func(status, sig string) answer {
		f := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {status}, "AccountSid": {gwSID},
			"From": {"+15557654321"}, "To": {recipient}, "ApiVersion": {"2010-04-01"}}
		if sig == "" {
			sig = smsgw.TwilioSignature(gwToken, cb, f)
		}
		return c.do("POST", path, f.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
	}
	if a := callback("delivered", smsgw.TwilioSignature("not-the-token", cb, url.Values{"MessageStatus": {"delivered"}})); a.status != 403 {
		t.Fatalf("bad signature: %d %s", a.status, a.raw)
	}
	c.steps(id, "still sent", func(s []map[string]any) bool { return stepStates(s) == "sms:sent" })
	if a := callback("sent", ""); a.status != 204 {
		t.Fatalf("sent: %d %s", a.status, a.raw)
	}
	if a := callback("delivered", ""); a.status != 204 {
		t.Fatalf("delivered: %d %s", a.status, a.raw)
	}
	c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:delivered" })
	if a := c.verify(id, match[1]); a.status != 200 {
		t.Fatalf("verify the code the gateway got: %d %s", a.status, a.raw)
	}

	// 500, tried again, then a 201 that is not Twilio's answer.
	id = c.sendOn("sms", "").body["verification_id"].(string)
	v = c.steps(id, "failed", func(s []map[string]any) bool { return stepStates(s) == "sms:failed" })
	if st := v["steps"].([]any)[0].(map[string]any); st["reason"] != "bad_response" || v["status"] != "failed" {
		t.Errorf("verification %v: want its step failed bad_response", v)
	}
	if gw.count() != 3 {
		t.Errorf("%d requests reached the gateway, want 3 (one, then 500 and its retry)", gw.count())
	}
	if a := c.do("GET", "/healthz", ""); a.status != 200 {
		t.Fatalf("healthz after the gateway's failures: %d", a.status)
	}
	if out := log.String(); strings.Contains(out, gwToken) || regexp.MustCompile(`\b`+match[1]+`\b`).MatchString(out) || !strings.Contains(out, "bad_response") {
		t.Errorf("the log holds the auth token or the code, or not the failure:\n%s", out)
	}
}

// lockedLog is a log the test reads back while the engine writes it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// SMS through the Vonage preset against a local server shaped like Vonage's SMS API (a form of api_key,
// api_secret, from, to without '+', text, client-ref, callback; 200 with messages[0].status "0"): a
// delivery receipt by GET, signed as Vonage signs them (md5hash), delivers the step and the code verifies;
// a receipt whose sig does not match is 403.
func TestSMSThroughVonage(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if r.Method != "POST" || r.URL.Path != "/sms/json" || err != nil || form.Get("api_key") != "abcd1234" || form.Get("api_secret") != "vonage-secret" {
			t.Errorf("not a Vonage request: %s %s %s", r.Method, r.URL, body)
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		forms = append(forms, form)
		mu.Unlock()
		io.WriteString(w, `{"message-count":"1","messages":[{"to":"`+form.Get("to")+`","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"}]}`)
	}))
	t.Cleanup(gw.Close)
	cfg := channelConfig(t, "127.0.0.1:9")
	cfg.SMS.Via = "http"
	cfg.HTTPSMS = smsgw.DefaultSettings
	cfg.HTTPSMS.Preset, cfg.HTTPSMS.URL, cfg.HTTPSMS.APIKey, cfg.HTTPSMS.APISecret = "vonage", gw.URL, "abcd1234", "vonage-secret"
	cfg.HTTPSMS.From, cfg.HTTPSMS.SignatureSecret, cfg.HTTPSMS.CallbackBaseURL = "Acme", "vonage-sig-secret", "https://otp.example.com"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.sendOn("sms", "").body["verification_id"].(string)
	c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "sms:sent" })
	mu.Lock()
	form := forms[0]
	mu.Unlock()
	if form.Get("to") != strings.TrimPrefix(recipient, "+") || form.Get("from") != "Acme" || form.Get("client-ref") != id ||
		form.Get("callback") != "https://otp.example.com/callbacks/sms/"+id || form.Has("type") {
		t.Fatalf("form %v", form)
	}
	match := smsCode.FindStringSubmatch(form.Get("text"))
	if match == nil {
		t.Fatalf("no code in the text %q", form.Get("text"))
	}
	dlr := url.Values{"msisdn": {form.Get("to")}, "to": {"Acme"}, "network-code": {"12345"}, "messageId": {"0A0000000123ABCD1"},
		"price": {"0.03"}, "status": {"delivered"}, "scts": {"2001011400"}, "err-code": {"0"}, "api-key": {"abcd1234"},
		"client-ref": {id}, "message-timestamp": {"2020-01-01 12:00:00"}, "timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}}
	dlr.Set("sig", smsgw.VonageSignature(smsgw.SigMD5Hash, "vonage-sig-secret", dlr))
	forged := url.Values{}
	for k, v := range dlr {
		forged[k] = v
	}
	forged.Set("status", "failed")
	if a := c.do("GET", "/callbacks/sms/"+id+"?"+forged.Encode(), ""); a.status != 403 {
		t.Fatalf("forged receipt: %d %s", a.status, a.raw)
	}
	if a := c.do("GET", "/callbacks/sms/"+id+"?"+dlr.Encode(), ""); a.status != 204 {
		t.Fatalf("receipt: %d %s", a.status, a.raw)
	}
	c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:delivered" })
	if a := c.verify(id, match[1]); a.status != 200 {
		t.Fatalf("verify the code Vonage got: %d %s", a.status, a.raw)
	}
}
