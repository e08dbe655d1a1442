package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

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
	m := startMain(t, cfg)
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
}
