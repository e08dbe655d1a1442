package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/internal/testwait"
	"flashotp/whatsapp"
)

const (
	waNumberID    = "106540352242922"
	waToken       = "EAAJB-engine-test-token-0123"
	waAppSecret   = "engine-app-secret-0123456789"
	waVerifyToken = "engine-verify-token"
)

// waSent is what the fake Cloud API took of one authentication template.
type waSent struct {
	to, lang, bodyCode, buttonCode, ref, wamid string
}

// cloudAPI is a local server shaped like the WhatsApp Cloud API's send-message endpoint: it takes only a
// template message as the documentation writes it (POST /{version}/{phone_number_id}/messages, the bearer
// token, messaging_product, recipient_type, to, type template, the template's name and language, a body
// parameter and a url button at index 0, biz_opaque_callback_data), and answers with a wamid, or with
// refuse's error.
type cloudAPI struct {
	t      *testing.T
	mu     sync.Mutex
	sent   []waSent
	refuse bool // answer 400 error 131026 (message undeliverable)
}

func (a *cloudAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		a.t.Errorf("cloud API: "+format, args...)
		http.Error(w, `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100}}`, 400)
	}
	if r.Method != "POST" || r.URL.Path != "/v21.0/"+waNumberID+"/messages" {
		fail("%s %s", r.Method, r.URL)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+waToken || r.Header.Get("Content-Type") != "application/json" {
		fail("Authorization %q, Content-Type %q", r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		return
	}
	var req struct {
		MessagingProduct string `json:"messaging_product"`
		RecipientType    string `json:"recipient_type"`
		To               string `json:"to"`
		Type             string `json:"type"`
		Template         struct {
			Name     string `json:"name"`
			Language struct {
				Code string `json:"code"`
			} `json:"language"`
			Components []struct {
				Type       string `json:"type"`
				SubType    string `json:"sub_type"`
				Index      string `json:"index"`
				Parameters []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"parameters"`
			} `json:"components"`
		} `json:"template"`
		BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail("body: %v", err)
		return
	}
	c := req.Template.Components
	if req.MessagingProduct != "whatsapp" || req.RecipientType != "individual" || req.Type != "template" ||
		req.Template.Name != "verification_code" || len(c) != 2 || c[0].Type != "body" || len(c[0].Parameters) != 1 ||
		c[0].Parameters[0].Type != "text" || c[1].Type != "button" || c[1].SubType != "url" || c[1].Index != "0" ||
		len(c[1].Parameters) != 1 || c[1].Parameters[0].Type != "text" || req.BizOpaqueCallbackData == "" {
		fail("not an authentication template: %+v", req)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := waSent{to: req.To, lang: req.Template.Language.Code, bodyCode: c[0].Parameters[0].Text, buttonCode: c[1].Parameters[0].Text,
		ref: req.BizOpaqueCallbackData, wamid: fmt.Sprintf("wamid.HBgLMTQxNTU1NTI2NzEVAgARGBI%d", len(a.sent))}
	a.sent = append(a.sent, s)
	w.Header().Set("Content-Type", "application/json")
	if a.refuse {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."},"fbtrace_id":"A1b2C3"}}`)
		return
	}
	fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":"+%s","wa_id":"%s"}],"messages":[{"id":%q,"message_status":"accepted"}]}`, req.To, req.To, s.wamid)
}

// waited returns the n-th template the API took, waiting for it.
func (a *cloudAPI) waited(n int) waSent {
	a.t.Helper()
	var s waSent
	if !testwait.Until(10*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.sent) > n {
			s = a.sent[n]
			return true
		}
		return false
	}) {
		a.t.Fatalf("the Cloud API got no template #%d", n+1)
	}
	return s
}

// statusWebhook is a status notification as the Cloud API posts it; ref "" leaves biz_opaque_callback_data out.
func statusWebhook(s waSent, status, ref, extra string) string {
	st := fmt.Sprintf(`{"id":%q,"status":%q,"timestamp":"%d","recipient_id":%q`, s.wamid, status, time.Now().Unix(), s.to)
	if ref != "" {
		st += fmt.Sprintf(`,"biz_opaque_callback_data":%q`, ref)
	}
	return `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` +
		waNumberID + `"},"statuses":[` + st + extra + `}]},"field":"messages"}]}]}`
}

func hubSignature(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// A whatsapp send reaches a server shaped like the Cloud API as the authentication template with the code
// in its body and its copy-code button; the engine answers Meta's handshake, takes signed statuses (sent,
// delivered, read) and refuses unsigned ones without a change; the code verifies. A failed status and the
// API's refusal fail their steps with their reason; the engine serves throughout.
func TestWhatsAppAgainstCloudAPI(t *testing.T) {
	api := &cloudAPI{t: t}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := phoneConfig(t)
	cfg.Apps[0].Channels = []string{apps.ChannelFlashCall, apps.ChannelWhatsApp}
	cfg.WhatsApp = whatsapp.DefaultSettings
	cfg.WhatsApp.BaseURL, cfg.WhatsApp.PhoneNumberID, cfg.WhatsApp.AccessToken = srv.URL, waNumberID, waToken
	cfg.WhatsApp.AppSecret, cfg.WhatsApp.VerifyToken = waAppSecret, waVerifyToken
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	startRun(t, m)
	c := client{t, "http://" + m.HTTPAddr}
	post := func(body, signature string) int {
		t.Helper()
		return c.do("POST", "/callbacks/whatsapp", body, "X-Hub-Signature-256", signature).status
	}
	state := func(id string) map[string]any {
		v := c.do("GET", "/otp/status?verification_id="+id, "")
		return v.body["steps"].([]any)[0].(map[string]any)
	}

	// Meta's handshake.
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {waVerifyToken}, "hub.challenge": {"1158201444"}}
	if a := c.do("GET", "/callbacks/whatsapp?"+q.Encode(), ""); a.status != 200 || a.raw != "1158201444" {
		t.Errorf("handshake: %d %q", a.status, a.raw)
	}
	q.Set("hub.verify_token", "guessed")
	if a := c.do("GET", "/callbacks/whatsapp?"+q.Encode(), ""); a.status != 403 {
		t.Errorf("handshake with a wrong token: %d %s", a.status, a.raw)
	}

	// Sent, delivered, read, verified.
	id := c.sendOn("whatsapp", `,"locale":"pt-BR"`).body["verification_id"].(string)
	got := api.waited(0)
	if got.to != strings.TrimPrefix(recipient, "+") || got.lang != "pt_BR" || len(got.bodyCode) != 6 || got.buttonCode != got.bodyCode {
		t.Fatalf("template %+v: want to %s, pt_BR, the 6-digit code in body and button", got, recipient)
	}
	c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:sent" })
	delivered := statusWebhook(got, "delivered", got.ref, "")
	for _, sig := range []string{"", hubSignature("not-the-app-secret", delivered), hubSignature(waAppSecret, delivered+" ")} {
		if st := post(delivered, sig); st != 403 {
			t.Errorf("a webhook signed %q: %d, want 403", sig, st)
		}
	}
	if st := state(id); st["state"] != "sent" || st["delivered_at"] != nil {
		t.Fatalf("unsigned webhooks changed the step: %v", st)
	}
	for _, status := range []string{"sent", "delivered", "read"} {
		body := statusWebhook(got, status, got.ref, "")
		if st := post(body, hubSignature(waAppSecret, body)); st != 200 {
			t.Fatalf("signed %s status: %d", status, st)
		}
	}
	v := c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:delivered" })
	if st := v["steps"].([]any)[0].(map[string]any); st["delivered_at"] == nil || st["locale"] != "pt" {
		t.Errorf("step %v: want delivered_at and locale pt", st)
	}
	if a := c.verify(id, got.bodyCode); a.status != 200 {
		t.Fatalf("verify the WhatsApp code: %d %s", a.status, a.raw)
	}

	// A failed status (its wamid names the message: no callback data) fails the step with its reason.
	id = c.sendOn("whatsapp", "").body["verification_id"].(string)
	got = api.waited(1)
	if got.lang != "en_US" {
		t.Errorf("no locale: language %q, want en_US", got.lang)
	}
	c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:sent" })
	failed := statusWebhook(got, "failed", "", `,"errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]`)
	if st := post(failed, hubSignature(waAppSecret, failed)); st != 200 {
		t.Fatalf("signed failed status: %d", st)
	}
	v = c.steps(id, "failed", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:failed" })
	if st := v["steps"].([]any)[0].(map[string]any); st["reason"] != "undelivered" {
		t.Errorf("failed step %v: want reason undelivered", st)
	}

	// The API refuses the message: the step fails with the reason of its error.
	api.mu.Lock()
	api.refuse = true
	api.mu.Unlock()
	id = c.sendOn("whatsapp", "").body["verification_id"].(string)
	api.waited(2)
	v = c.steps(id, "failed", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:failed" })
	if st := v["steps"].([]any)[0].(map[string]any); st["reason"] != "undelivered" {
		t.Errorf("refused step %v: want reason undelivered", st)
	}
	if a := c.do("GET", "/healthz", ""); a.status != 200 {
		t.Errorf("healthz: %d", a.status)
	}
	// The log names the failures, never a secret or a code.
	out := log.String()
	for _, secret := range []string{waToken, waAppSecret, waVerifyToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
	for i := range 3 {
		if code := api.waited(i).bodyCode; regexp.MustCompile(`\b` + code + `\b`).MatchString(out) {
			t.Errorf("the log holds code %s", code)
		}
	}
	if !strings.Contains(out, "error 131026") {
		t.Errorf("the log does not name the API's refusal:\n%s", out)
	}
}

var waSMSLine = regexp.MustCompile(`sms from \S+: ([0-9]{4,10}) is your demo`)

// A workflow whatsapp → sms: Meta's failed status ends the WhatsApp step, whose code no longer verifies; the
// SMS goes at once and its code verifies.
func TestWhatsAppWorkflowFallsBack(t *testing.T) {
	api := &cloudAPI{t: t}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := phoneConfig(t)
	cfg.Apps[0].Channels = []string{apps.ChannelWhatsApp, apps.ChannelSMS}
	cfg.Apps[0].Workflow = []apps.Step{{Channel: apps.ChannelWhatsApp, Timeout: apps.Duration(time.Minute)}, {Channel: apps.ChannelSMS}}
	cfg.WhatsApp = whatsapp.DefaultSettings
	cfg.WhatsApp.BaseURL, cfg.WhatsApp.PhoneNumberID, cfg.WhatsApp.AccessToken = srv.URL, waNumberID, waToken
	cfg.WhatsApp.AppSecret, cfg.WhatsApp.VerifyToken = waAppSecret, waVerifyToken
	c, phone := startPhoneMain(t, cfg)

	id := c.sendOn("auto", "").body["verification_id"].(string)
	got := api.waited(0)
	c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:sent" })
	failed := statusWebhook(got, "failed", got.ref, `,"errors":[{"code":131026,"title":"Message undeliverable"}]`)
	if a := c.do("POST", "/callbacks/whatsapp", failed, "X-Hub-Signature-256", hubSignature(waAppSecret, failed)); a.status != 200 {
		t.Fatalf("failed status: %d %s", a.status, a.raw)
	}
	c.steps(id, "fallen back to sms", func(s []map[string]any) bool { return stepStates(s) == "whatsapp:failed,sms:sent" })
	var code string
	if !testwait.Until(10*time.Second, func() bool {
		phone.mu.Lock()
		defer phone.mu.Unlock()
		for _, l := range phone.lines {
			if m := waSMSLine.FindStringSubmatch(l); m != nil {
				code = m[1]
			}
		}
		return code != ""
	}) {
		t.Fatalf("the phone got no SMS: %v", phone.lines)
	}
	if a := c.verify(id, got.bodyCode); a.status != 422 {
		t.Errorf("the failed WhatsApp step's code: %d %s, want 422", a.status, a.raw)
	}
	if a := c.verify(id, code); a.status != 200 {
		t.Fatalf("the SMS code: %d %s", a.status, a.raw)
	}
}
