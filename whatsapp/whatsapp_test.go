package whatsapp_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/message"
	"flashotp/whatsapp"
)

const (
	phoneNumberID = "106540352242922"
	accessToken   = "EAAJB-test-token-0123456789"
	appSecret     = "app-secret-0123456789"
	verifyToken   = "verify-me-please"
)

func settings(base string) whatsapp.Settings {
	return whatsapp.Settings{
		BaseURL: base, APIVersion: "v21.0", PhoneNumberID: phoneNumberID, AccessToken: accessToken,
		AppSecret: appSecret, VerifyToken: verifyToken, Template: "verification_code", Timeout: 2 * time.Second,
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sendRequest is the send-message body the Cloud API documents for a template message; the fake API
// decodes it strictly, so that a field it does not know fails the request.
type sendRequest struct {
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

// cloudAPI is a local HTTP server shaped like the Cloud API's send-message endpoint. It checks every part
// of a request the documentation requires of an authentication template and answers as the API does; an
// answer func may answer otherwise (an error, a failure).
type cloudAPI struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	got    []sendRequest
	calls  atomic.Int64
	answer func(n int64, w http.ResponseWriter) bool // true: answered
}

func newCloudAPI(t testing.TB) *cloudAPI {
	a := &cloudAPI{t: t}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// apiError writes a Graph API error as the Cloud API does.
func apiError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":"OAuthException","code":%d,"error_data":{"messaging_product":"whatsapp","details":%q},"fbtrace_id":"AbCdEf123"}}`, msg, code, msg)
}

func (a *cloudAPI) serve(w http.ResponseWriter, r *http.Request) {
	n := a.calls.Add(1)
	bad := func(format string, args ...any) {
		a.t.Errorf("request %d: "+format, append([]any{n}, args...)...)
		apiError(w, 400, 100, "Invalid parameter")
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v21.0/"+phoneNumberID+"/messages" || r.URL.RawQuery != "" {
		bad("%s %s, want POST /v21.0/%s/messages", r.Method, r.URL, phoneNumberID)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+accessToken {
		apiError(w, 401, 190, "Invalid OAuth access token - Cannot parse access token")
		a.t.Errorf("Authorization %q", got)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		bad("Content-Type %q", ct)
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var req sendRequest
	if err := dec.Decode(&req); err != nil {
		bad("body: %v", err)
		return
	}
	tpl := req.Template
	switch {
	case req.MessagingProduct != "whatsapp", req.RecipientType != "individual", req.Type != "template":
		bad("messaging_product %q, recipient_type %q, type %q", req.MessagingProduct, req.RecipientType, req.Type)
		return
	case req.To == "" || strings.Trim(req.To, "0123456789") != "":
		bad("to %q: want the number's digits", req.To)
		return
	case tpl.Name != "verification_code" || tpl.Language.Code == "":
		bad("template %q, language %q", tpl.Name, tpl.Language.Code)
		return
	case len(tpl.Components) != 2:
		bad("%d components, want body and button", len(tpl.Components))
		return
	}
	body, button := tpl.Components[0], tpl.Components[1]
	if body.Type != "body" || body.SubType != "" || body.Index != "" || len(body.Parameters) != 1 || body.Parameters[0].Type != "text" {
		bad("body component %+v", body)
		return
	}
	if button.Type != "button" || button.SubType != "url" || button.Index != "0" || len(button.Parameters) != 1 ||
		button.Parameters[0].Type != "text" || button.Parameters[0].Text != body.Parameters[0].Text {
		bad("button component %+v: want sub_type url, index 0, the code as its text parameter", button)
		return
	}
	if code := body.Parameters[0].Text; len(code) > 15 || strings.Trim(code, "0123456789") != "" {
		bad("code %q", code)
		return
	}
	a.mu.Lock()
	a.got = append(a.got, req)
	a.mu.Unlock()
	if a.answer != nil && a.answer(n, w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":"+%s","wa_id":"%s"}],"messages":[{"id":"wamid.HBgL%d","message_status":"accepted"}]}`, req.To, req.To, n)
}

func (a *cloudAPI) requests() []sendRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sendRequest(nil), a.got...)
}

// receipts keeps what a Sender reports.
type receipts struct {
	mu  sync.Mutex
	got []message.Receipt
}

func (r *receipts) add(x message.Receipt) { r.mu.Lock(); r.got = append(r.got, x); r.mu.Unlock() }
func (r *receipts) all() []message.Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message.Receipt(nil), r.got...)
}

func newSender(t testing.TB, s whatsapp.Settings) (*whatsapp.Sender, *receipts) {
	t.Helper()
	var r receipts
	snd, err := whatsapp.New(s, r.add, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snd.Close)
	return snd, &r
}

func msg(ref, code, locale string) message.Message {
	return message.Message{Ref: ref, App: "demo", Channel: "whatsapp", To: "+14155552671", Text: code + " is your demo code.", Code: code, Locale: locale}
}

// A message goes as the authentication template: the code in the body's parameter and in the copy-code
// button's, the Ref as biz_opaque_callback_data, the template language the locale's; the wamid comes back
// as the ProviderID.
func TestSend(t *testing.T) {
	api := newCloudAPI(t)
	snd, _ := newSender(t, settings(api.srv.URL))
	languages := []struct{ locale, want string }{
		{"en", "en_US"}, {"en-GB", "en_US"}, {"pt", "pt_BR"}, {"pt-BR", "pt_BR"}, {"es-MX", "es"}, {"fr-CA", "fr"},
		{"de", "de"}, {"hi-IN", "hi"}, {"ja", "en_US"}, {"", "en_US"}, {"not a tag", "en_US"},
	}
	for i, l := range languages {
		ref, code := fmt.Sprintf("otp_01J.%d", i), fmt.Sprintf("%06d", 730155+i)
		res := snd.Send(context.Background(), msg(ref, code, l.locale))
		if res.State != message.Sent || res.ProviderID != fmt.Sprintf("wamid.HBgL%d", i+1) || res.At.IsZero() {
			t.Fatalf("%s: %+v, want sent with the wamid", l.locale, res)
		}
		got := api.requests()[i]
		if got.To != "14155552671" || got.BizOpaqueCallbackData != ref || got.Template.Language.Code != l.want ||
			got.Template.Components[0].Parameters[0].Text != code || got.Template.Components[1].Parameters[0].Text != code {
			t.Errorf("%s: request %+v, want to 14155552671, ref %s, language %s, code %s", l.locale, got, ref, l.want, code)
		}
	}
	// The operator's languages: the nearest, else en's.
	s := settings(api.srv.URL)
	s.Languages = map[string]string{"pt": "pt_PT", "en": "en_GB", "zh": "zh_CN"}
	custom, _ := newSender(t, s)
	for locale, want := range map[string]string{"pt-BR": "pt_PT", "zh-Hans": "zh_CN", "de": "en_GB"} {
		if got := custom.Language(locale); got != want {
			t.Errorf("Language(%q) = %q, want %q", locale, got, want)
		}
	}
}

// A message the engine cannot send as a template (no E.164 number, no code) fails without a request.
func TestSendBadMessage(t *testing.T) {
	api := newCloudAPI(t)
	snd, _ := newSender(t, settings(api.srv.URL))
	for _, m := range []message.Message{
		{Ref: "r", To: "user@example.com", Code: "123456"},
		{Ref: "r", To: "+1415555267a", Code: "123456"},
		{Ref: "r", To: "+14155552671"},
	} {
		if res := snd.Send(context.Background(), m); res.State != message.Failed || res.Reason != message.ReasonRejected {
			t.Errorf("%+v: %+v, want failed rejected", m, res)
		}
	}
	if n := api.calls.Load(); n != 0 {
		t.Errorf("%d requests reached the API", n)
	}
}

// The API's errors fail the message with their reason (and never show the code); a 5xx, a rate limit or
// a lost connection is retried until the message is taken or ctx ends.
func TestSendErrors(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(n int64, w http.ResponseWriter) bool
		state   message.State
		reason  string
		calls   int64
		detail  string
		timeout time.Duration
	}{
		{"undeliverable", func(_ int64, w http.ResponseWriter) bool {
			apiError(w, 400, 131026, "Message undeliverable")
			return true
		}, message.Failed, message.ReasonUndelivered, 1, "error 131026 Message undeliverable", 0},
		{"template missing", func(_ int64, w http.ResponseWriter) bool {
			apiError(w, 404, 132001, "Template name does not exist in the translation")
			return true
		}, message.Failed, message.ReasonRejected, 1, "error 132001", 0},
		{"token expired", func(_ int64, w http.ResponseWriter) bool {
			apiError(w, 401, 190, "Error validating access token: Session has expired")
			return true
		}, message.Failed, message.ReasonAuthFailed, 1, "error 190", 0},
		{"code echoed back is scrubbed", func(_ int64, w http.ResponseWriter) bool {
			apiError(w, 400, 131009, "Parameter value is not valid: 482910")
			return true
		}, message.Failed, message.ReasonRejected, 1, "not valid: [code]", 0},
		{"500 then taken", func(n int64, w http.ResponseWriter) bool {
			if n < 3 {
				apiError(w, 500, 131000, "Something went wrong")
				return true
			}
			return false
		}, message.Sent, "", 3, "", 0},
		{"throughput limit then taken", func(n int64, w http.ResponseWriter) bool {
			if n == 1 {
				apiError(w, 400, 130429, "Rate limit hit")
				return true
			}
			return false
		}, message.Sent, "", 2, "", 0},
		{"503 until the step's time runs out", func(_ int64, w http.ResponseWriter) bool {
			w.WriteHeader(503)
			return true
		}, message.Failed, message.ReasonUnavailable, -1, "HTTP 503", 700 * time.Millisecond},
		{"200 without a message", func(_ int64, w http.ResponseWriter) bool {
			io.WriteString(w, `{"messaging_product":"whatsapp","messages":[]}`)
			return true
		}, message.Failed, message.ReasonBadResponse, 1, "without a message ID", 0},
		{"garbage", func(_ int64, w http.ResponseWriter) bool {
			w.WriteHeader(400)
			io.WriteString(w, `<html>bad gateway</html>`)
			return true
		}, message.Failed, message.ReasonBadResponse, 1, "HTTP 400", 0},
		{"connection dropped then taken", func(n int64, w http.ResponseWriter) bool {
			if n == 1 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return true
			}
			return false
		}, message.Sent, "", 2, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newCloudAPI(t)
			api.answer = tt.answer
			snd, _ := newSender(t, settings(api.srv.URL))
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			res := snd.Send(ctx, msg("otp_01J.0", "482910", "en"))
			if res.State != tt.state || res.Reason != tt.reason || !strings.Contains(res.Detail, tt.detail) {
				t.Errorf("%+v, want %s %q with detail %q", res, tt.state, tt.reason, tt.detail)
			}
			if strings.Contains(res.Detail, "482910") || strings.Contains(res.Detail, accessToken) {
				t.Errorf("detail %q shows the code or the token", res.Detail)
			}
			if n := api.calls.Load(); tt.calls > 0 && n != tt.calls || tt.calls < 0 && n < 2 {
				t.Errorf("%d requests, want %d", n, tt.calls)
			}
			if tt.timeout > 0 && time.Since(start) > tt.timeout+time.Second {
				t.Errorf("took %v past a %v deadline", time.Since(start), tt.timeout)
			}
		})
	}
	// Nobody listening: unavailable once the time runs out.
	api := newCloudAPI(t)
	api.srv.Close()
	snd, _ := newSender(t, settings(api.srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if res := snd.Send(ctx, msg("otp_01J.0", "482910", "en")); res.State != message.Failed || res.Reason != message.ReasonUnavailable {
		t.Errorf("no API: %+v, want failed unavailable", res)
	}
}

// sign is Meta's X-Hub-Signature-256 of body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// webhook builds a status notification as the Cloud API posts it.
func webhook(statuses ...string) []byte {
	return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` +
		phoneNumberID + `"},"statuses":[` + strings.Join(statuses, ",") + `]},"field":"messages"}]}]}`)
}

func status(wamid, st, ref, extra string) string {
	s := `{"id":"` + wamid + `","status":"` + st + `","timestamp":"1750263773","recipient_id":"14155552671"`
	if ref != "" {
		s += `,"biz_opaque_callback_data":"` + ref + `"`
	}
	if st == "sent" || st == "delivered" {
		s += `,"conversation":{"id":"6ceb9d929c1b1e1d4e2b8e3e5f4a3b2c","origin":{"type":"authentication"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"authentication","type":"regular"}`
	}
	return s + extra + "}"
}

// Statuses become Receipts of the Ref biz_opaque_callback_data carries, or of the wamid's message when it
// is missing: delivered, read, failed with the reason of its error; sent and unknown messages say nothing.
func TestStatuses(t *testing.T) {
	api := newCloudAPI(t)
	snd, got := newSender(t, settings(api.srv.URL))
	res := snd.Send(context.Background(), msg("otp_01J.1", "482910", "en"))
	if res.State != message.Sent {
		t.Fatal(res)
	}
	at := time.Unix(1750263773, 0).UTC()
	failed := `,"errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]`
	body := webhook(
		status(res.ProviderID, "sent", "otp_01J.1", ""),
		status(res.ProviderID, "delivered", "otp_01J.1", ""),
		status(res.ProviderID, "read", "", ""), // no callback data: the wamid names it
		status("wamid.unknown", "delivered", "", ""),
		status("wamid.other", "failed", "otp_01J.2", failed),
		status("wamid.third", "failed", "otp_01J.3", `,"errors":[{"code":131049,"title":"This message was not delivered to maintain healthy ecosystem engagement."}]`),
	)
	if !snd.Authentic(body, sign(appSecret, body)) {
		t.Fatal("the webhook's own signature refused")
	}
	n, err := snd.Statuses(body)
	want := []message.Receipt{
		{Ref: "otp_01J.1", State: message.Delivered, At: at},
		{Ref: "otp_01J.1", State: message.Read, At: at},
		{Ref: "otp_01J.2", State: message.Failed, Reason: message.ReasonUndelivered, Detail: "error 131026 Message undeliverable", At: at},
		{Ref: "otp_01J.3", State: message.Failed, Reason: message.ReasonRejected, Detail: "error 131049 This message was not delivered to maintain healthy ecosystem engagement.", At: at},
	}
	if err != nil || n != len(want) {
		t.Fatalf("Statuses = %d, %v; want %d receipts", n, err, len(want))
	}
	if r := got.all(); fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("receipts\n%+v\nwant\n%+v", r, want)
	}
	for _, bad := range []string{``, `[]`, `{"entry":"x"}`, `{"object":"page","entry":[]}`, `{"entry":[{"changes":[{"value":{"statuses":[{"status":7}]}}]}]}`} {
		if _, err := snd.Statuses([]byte(bad)); !errors.Is(err, whatsapp.ErrPayload) {
			t.Errorf("Statuses(%q) = %v, want ErrPayload", bad, err)
		}
	}
	if len(got.all()) != len(want) {
		t.Errorf("bad payloads reported receipts: %+v", got.all())
	}
}

// Only the app secret's HMAC of the very body passes; the handshake needs subscribe and the verify token.
func TestAuthenticAndHandshake(t *testing.T) {
	snd, _ := newSender(t, settings("https://graph.facebook.com"))
	body := webhook(status("wamid.1", "delivered", "otp_01J.1", ""))
	good := sign(appSecret, body)
	for _, sig := range []string{"", "sha256=", good[len("sha256="):], "sha1=" + good[len("sha256="):], sign("another-secret-0123", body),
		strings.ToUpper(good[:7]) + good[7:], good[:len(good)-2], good + "00", "sha256=" + strings.Repeat("zz", 32)} {
		if snd.Authentic(body, sig) {
			t.Errorf("signature %q accepted", sig)
		}
	}
	if !snd.Authentic(body, good) || snd.Authentic(append(bytes.Clone(body), ' '), good) {
		t.Error("the signature does not follow the body")
	}
	// Meta writes the hex in lowercase; its uppercase is the same MAC.
	if !snd.Authentic(body, "sha256="+strings.ToUpper(good[len("sha256="):])) {
		t.Error("uppercase hex refused")
	}
	if c, ok := snd.Handshake("subscribe", verifyToken, "1158201444"); !ok || c != "1158201444" {
		t.Errorf("handshake = %q, %v", c, ok)
	}
	for _, h := range [][3]string{{"subscribe", "wrong-token", "1"}, {"unsubscribe", verifyToken, "1"}, {"subscribe", "", "1"},
		{"subscribe", verifyToken, ""}, {"subscribe", verifyToken, strings.Repeat("9", 300)}} {
		if _, ok := snd.Handshake(h[0], h[1], h[2]); ok {
			t.Errorf("handshake %q accepted", h)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := whatsapp.DefaultSettings.Validate(); err != nil {
		t.Errorf("the defaults (channel off): %v", err)
	}
	if err := settings("https://graph.facebook.com").Validate(); err != nil {
		t.Errorf("a whole section: %v", err)
	}
	tests := []struct {
		name string
		set  func(s *whatsapp.Settings)
		want string
	}{
		{"token without a number", func(s *whatsapp.Settings) { *s = whatsapp.DefaultSettings; s.AccessToken = accessToken }, "phone_number_id: required when access_token is set"},
		{"number not digits", func(s *whatsapp.Settings) { s.PhoneNumberID = "+15550783881" }, "phone_number_id: want the digits"},
		{"base_url", func(s *whatsapp.Settings) { s.BaseURL = "graph.facebook.com" }, "base_url: want an http(s) URL"},
		{"base_url with a query", func(s *whatsapp.Settings) { s.BaseURL = "https://x.example/?a=1" }, "base_url: want an http(s) URL"},
		{"api_version", func(s *whatsapp.Settings) { s.APIVersion = "21" }, "api_version: want a Graph API version"},
		{"no token", func(s *whatsapp.Settings) { s.AccessToken = "" }, "access_token: required"},
		{"short app secret", func(s *whatsapp.Settings) { s.AppSecret = "abc" }, "app_secret: want at least 16"},
		{"no verify token", func(s *whatsapp.Settings) { s.VerifyToken = "" }, "verify_token: required"},
		{"template", func(s *whatsapp.Settings) { s.Template = "Verification Code" }, "template: want the template's name"},
		{"language code", func(s *whatsapp.Settings) { s.Languages = map[string]string{"en": "english"} }, "languages.en: want a WhatsApp template language code"},
		{"locale", func(s *whatsapp.Settings) { s.Languages = map[string]string{"zz-!": "en_US"} }, "languages.zz-!:"},
		{"timeout", func(s *whatsapp.Settings) { s.Timeout = 0 }, "timeout: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings("https://graph.facebook.com")
			tt.set(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
			if _, nerr := whatsapp.New(s, nil, quiet); nerr == nil {
				t.Error("New took settings Validate refuses")
			}
		})
	}
}

// Classify has a row per Cloud API error the engine tells apart.
func TestClassify(t *testing.T) {
	tests := []struct {
		status, code int
		reason       string
		temporary    bool
	}{
		{401, 190, message.ReasonAuthFailed, false},
		{403, 10, message.ReasonAuthFailed, false},
		{403, 200, message.ReasonAuthFailed, false},
		{400, 131005, message.ReasonAuthFailed, false},
		{400, 131026, message.ReasonUndelivered, false},
		{404, 132001, message.ReasonRejected, false},
		{400, 132000, message.ReasonRejected, false},
		{400, 131008, message.ReasonRejected, false},
		{400, 131030, message.ReasonRejected, false},
		{400, 131047, message.ReasonRejected, false},
		{400, 368, message.ReasonRejected, false},
		{400, 100, message.ReasonRejected, false},
		{429, 130429, message.ReasonUnavailable, true},
		{400, 131056, message.ReasonUnavailable, true},
		{400, 80007, message.ReasonUnavailable, true},
		{400, 4, message.ReasonUnavailable, true},
		{500, 131000, message.ReasonUnavailable, true},
		{503, 131016, message.ReasonUnavailable, true},
		{500, 1, message.ReasonUnavailable, true},
		{502, 99999, message.ReasonUnavailable, true},
		{401, 99999, message.ReasonAuthFailed, false},
		{400, 99999, message.ReasonRejected, false},
	}
	for _, tt := range tests {
		if r, tmp := whatsapp.Classify(tt.status, tt.code); r != tt.reason || tmp != tt.temporary {
			t.Errorf("Classify(%d, %d) = %s, %v; want %s, %v", tt.status, tt.code, r, tmp, tt.reason, tt.temporary)
		}
	}
}

// Statuses never panics and reports only receipts of a known state with a Ref.
func FuzzStatuses(f *testing.F) {
	f.Add(webhook(status("wamid.1", "delivered", "otp_01J.1", "")))
	f.Add(webhook(status("wamid.1", "failed", "", `,"errors":[{"code":131026}]`)))
	f.Add([]byte(`{"entry":[{"changes":[{"value":{"statuses":[{}]}}]}]}`))
	f.Add([]byte(`{"object":1}`))
	var mu sync.Mutex
	var got []message.Receipt
	snd, err := whatsapp.New(settings("https://graph.facebook.com"), func(r message.Receipt) { mu.Lock(); got = append(got, r); mu.Unlock() }, quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		mu.Lock()
		got = got[:0]
		mu.Unlock()
		n, err := snd.Statuses(body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && n != 0 || n != len(got) {
			t.Fatalf("Statuses = %d, %v with %d receipts", n, err, len(got))
		}
		for _, r := range got {
			if r.Ref == "" || (r.State != message.Delivered && r.State != message.Read && r.State != message.Failed) {
				t.Fatalf("receipt %+v", r)
			}
		}
	})
}

// BenchmarkSend measures messages a second through a Sender against the local Cloud API, 16 at once.
// go test -run '^$' -bench Send -benchtime 5000x ./whatsapp/
func BenchmarkSend(b *testing.B) {
	api := newCloudAPI(b)
	snd, _ := newSender(b, settings(api.srv.URL))
	var i atomic.Int64
	b.SetParallelism(16 / max(1, runtimeProcs()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := i.Add(1)
			if res := snd.Send(context.Background(), msg(fmt.Sprintf("otp_01J.%d", n), "482910", "pt-BR")); res.State != message.Sent {
				b.Errorf("%+v", res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
