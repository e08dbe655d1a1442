package smsgw

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/fault"
	"flashotp/message"
)

const (
	sid       = "AC0123456789abcdef0123456789abcdef"
	authToken = "tw-auth-token-s3cret"
	apiSecret = "vonage-api-s3cret"
	sigSecret = "vonage-sig-s3cret"
	bearer    = "custom-bearer-s3cret"
	cbSecret  = "custom-callback-s3cret"
)

// hostile is a message whose every value tries to break out of its place.
var hostile = message.Message{
	Ref: "otp_01JD3ABC~1", App: "demo", Channel: "sms", To: "+15551234567", From: "Ac\"me&x=1",
	Text: "480915 is your code\n\"quoted\" & a=b\r\nX-Injected: 1\\", Code: "480915", Locale: "en",
}

// gateway is a local HTTP server that hands each request to check and answers what it returns.
type gateway struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func startGateway(t *testing.T, answer func(n int, r *http.Request, body []byte) (int, string)) *gateway {
	t.Helper()
	g := &gateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.reqs = append(g.reqs, r)
		g.body = append(g.body, b)
		n := len(g.reqs)
		g.mu.Unlock()
		code, out := answer(n, r, b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, out)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) count() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.reqs) }

// logBuf is a log the test reads back.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// noSecrets fails if the log holds a secret, the code or the text.
func noSecrets(t *testing.T, log *logBuf) {
	t.Helper()
	for _, s := range []string{authToken, apiSecret, sigSecret, bearer, cbSecret, "480915", "quoted"} {
		if strings.Contains(log.String(), s) {
			t.Errorf("the log holds %q:\n%s", s, log)
		}
	}
}

func newSender(t *testing.T, s Settings, receipts message.Receipts) (*Sender, *logBuf) {
	t.Helper()
	log := &logBuf{}
	g, err := New(s, receipts, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, log
}

func twilioSettings(url string) Settings {
	s := DefaultSettings
	s.Preset, s.URL, s.AccountSID, s.AuthToken, s.CallbackBaseURL = PresetTwilio, url, sid, authToken, "https://otp.example.com/base"
	return s
}

func send(g *Sender, m message.Message) message.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.Send(ctx, m)
}

// wantForm checks that body is exactly the form want: every field, no other.
func wantForm(t *testing.T, body []byte, want url.Values) {
	t.Helper()
	got, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if g, w := got.Encode(), want.Encode(); g != w {
		t.Errorf("form\n got %s\nwant %s", g, w)
	}
}

// The Twilio preset's request as Twilio documents it
// (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource): POST to
// /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic AccountSid:AuthToken, a form of To, From,
// Body, StatusCallback; 201 with the message's sid.
func TestTwilioRequest(t *testing.T) {
	gw := startGateway(t, func(_ int, r *http.Request, _ []byte) (int, string) {
		return 201, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`
	})
	g, log := newSender(t, twilioSettings(gw.URL), nil)
	m := hostile
	m.From = "+15557654321"
	res := send(g, m)
	if res.State != message.Sent || res.ProviderID != "SM0123456789abcdef0123456789abcdef" || res.Segments != 1 {
		t.Fatalf("result %+v", res)
	}
	r, body := gw.reqs[0], gw.body[0]
	if r.Method != "POST" || r.URL.EscapedPath() != "/2010-04-01/Accounts/"+sid+"/Messages.json" || r.URL.RawQuery != "" {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if u, p, ok := r.BasicAuth(); !ok || u != sid || p != authToken {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	wantForm(t, body, url.Values{"To": {m.To}, "From": {m.From}, "Body": {m.Text},
		"StatusCallback": {"https://otp.example.com/base/callbacks/sms/otp_01JD3ABC~1"}})
	noSecrets(t, log)

	// A messaging service instead of a From.
	s := twilioSettings(gw.URL)
	s.MessagingServiceSID = "MG0123456789abcdef0123456789abcdef"
	s.CallbackBaseURL = ""
	g, _ = newSender(t, s, nil)
	if res := send(g, m); res.State != message.Sent {
		t.Fatalf("result %+v", res)
	}
	wantForm(t, gw.body[1], url.Values{"To": {m.To}, "MessagingServiceSid": {s.MessagingServiceSID}, "Body": {m.Text}})
}

// The Vonage preset's request as Vonage documents it
// (https://developer.vonage.com/en/api/sms#send-an-sms): POST /sms/json, a form of api_key, api_secret,
// from, to (no '+'), text, type=unicode for a UCS-2 text, callback; 200 with messages[0].status "0".
func TestVonageRequest(t *testing.T) {
	gw := startGateway(t, func(_ int, r *http.Request, _ []byte) (int, string) {
		return 200, `{"message-count":"1","messages":[{"to":"15551234567","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"}]}`
	})
	s := DefaultSettings
	s.Preset, s.URL, s.APIKey, s.APISecret, s.From, s.CallbackBaseURL = PresetVonage, gw.URL, "abcd1234", apiSecret, "+15557654321", "https://otp.example.com"
	g, log := newSender(t, s, nil)
	for i, tc := range []struct{ text, typ string }{{hostile.Text, ""}, {"Ваш код 123456", "unicode"}} {
		m := hostile
		m.Text = tc.text
		res := send(g, m)
		if res.State != message.Sent || res.ProviderID != "0A0000000123ABCD1" {
			t.Fatalf("result %+v", res)
		}
		r := gw.reqs[i]
		if r.Method != "POST" || r.URL.Path != "/sms/json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("request %s %s %s", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		want := url.Values{"api_key": {"abcd1234"}, "api_secret": {apiSecret}, "from": {"15557654321"}, "to": {"15551234567"},
			"text": {tc.text}, "client-ref": {m.Ref}, "callback": {"https://otp.example.com/callbacks/sms/otp_01JD3ABC~1"}}
		if tc.typ != "" {
			want.Set("type", tc.typ)
		}
		wantForm(t, gw.body[i], want)
	}
	noSecrets(t, log)
}

// Vonage's refusals: HTTP 200 with a non-zero status, mapped to the reason; a throttle is tried again.
func TestVonageStatuses(t *testing.T) {
	for _, tc := range []struct {
		status, reason string
		sent           bool
	}{{"4", message.ReasonAuthFailed, false}, {"14", message.ReasonAuthFailed, false}, {"3", message.ReasonRejected, false}, {"1", "", true}} {
		t.Run(tc.status, func(t *testing.T) {
			gw := startGateway(t, func(n int, _ *http.Request, _ []byte) (int, string) {
				if n > 1 {
					return 200, `{"messages":[{"status":"0","message-id":"X1"}]}`
				}
				return 200, `{"message-count":"1","messages":[{"status":"` + tc.status + `","error-text":"nope"}]}`
			})
			s := DefaultSettings
			s.Preset, s.URL, s.APIKey, s.APISecret, s.From = PresetVonage, gw.URL, "k", apiSecret, "Acme"
			g, _ := newSender(t, s, nil)
			res := send(g, hostile)
			if tc.sent {
				if res.State != message.Sent || gw.count() != 2 {
					t.Fatalf("%+v after %d requests, want sent on the second", res, gw.count())
				}
				return
			}
			if res.State != message.Failed || res.Reason != tc.reason || gw.count() != 1 {
				t.Fatalf("%+v after %d requests, want %s at once", res, gw.count(), tc.reason)
			}
		})
	}
}

// A custom gateway's JSON and form bodies, URL, headers and bearer token, with values that try to break out
// of every place: each arrives as the exact value, in its own field.
func TestCustomRequest(t *testing.T) {
	for _, format := range []string{FormatJSON, FormatForm} {
		t.Run(format, func(t *testing.T) {
			gw := startGateway(t, func(_ int, r *http.Request, _ []byte) (int, string) {
				return 202, `{"data":{"ids":["m-42"]}}`
			})
			s := DefaultSettings
			s.Preset, s.BodyFormat, s.IDField = PresetCustom, format, "data.ids.0"
			s.URL = gw.URL + "/send/{{.From}}?to={{.To}}&app={{.App}}"
			s.Headers = map[string]string{"X-Ref": "{{.Ref}}", "X-App": "app {{.App}}"}
			s.Auth.Token = bearer
			s.CallbackBaseURL, s.CallbackSecret = "https://otp.example.com", cbSecret
			if format == FormatJSON {
				s.Body = `{"to":"{{.To}}","from":"{{.From}}","text":"{{.Text}}","code":"{{.Code}}","cb":"{{.CallbackURL}}"}`
			} else {
				s.Body = `to={{.To}}&from={{.From}}&text={{.Text}}&code={{.Code}}&cb={{.CallbackURL}}`
			}
			g, log := newSender(t, s, nil)
			res := send(g, hostile)
			if res.State != message.Sent || res.ProviderID != "m-42" {
				t.Fatalf("result %+v", res)
			}
			r, body := gw.reqs[0], gw.body[0]
			if r.URL.Path != "/send/"+hostile.From || r.URL.Query().Get("to") != hostile.To || r.URL.Query().Get("app") != "demo" || len(r.URL.Query()) != 2 {
				t.Errorf("URL %s: the values leaked out of their places", r.URL)
			}
			if r.Header.Get("Authorization") != "Bearer "+bearer || r.Header.Get("X-Ref") != hostile.Ref || r.Header.Get("X-App") != "app demo" {
				t.Errorf("headers %v", r.Header)
			}
			cb := "https://otp.example.com/callbacks/sms/otp_01JD3ABC~1?sig=" + refSig(cbSecret, hostile.Ref)
			want := map[string]string{"to": hostile.To, "from": hostile.From, "text": hostile.Text, "code": "480915", "cb": cb}
			got := map[string]string{}
			if format == FormatJSON {
				if r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %s: %v", body, err)
				}
			} else {
				q, err := url.ParseQuery(string(body))
				if err != nil {
					t.Fatal(err)
				}
				for k := range q {
					got[k] = q.Get(k)
				}
			}
			if len(got) != len(want) {
				t.Errorf("body %s: fields %v, want %v", body, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			noSecrets(t, log)
		})
	}
}

// A header template that prints the text is refused by Validate (a text may hold line breaks); a header
// value with a line break at send time is refused too: no request, no header split.
func TestCustomHeaderInjection(t *testing.T) {
	s := DefaultSettings
	s.Preset, s.URL, s.Body = PresetCustom, "https://gw.example.com", `{"t":"{{.To}}"}`
	s.Headers = map[string]string{"X-Text": "{{.Text}}"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "header X-Text") {
		t.Errorf("a header printing the text: %v", err)
	}
	gw := startGateway(t, func(int, *http.Request, []byte) (int, string) { return 200, "" })
	s.URL, s.Headers = gw.URL, map[string]string{"X-From": "{{.From}}"}
	g, _ := newSender(t, s, nil)
	if res := send(g, hostile); res.State != message.Sent || gw.reqs[0].Header.Get("X-From") != hostile.From {
		t.Fatalf("one line: %+v", res)
	}
	m := hostile
	m.From = "Acme\r\nX-Injected: 1"
	if res := send(g, m); res.State != message.Failed || res.Reason != message.ReasonRejected || gw.count() != 1 {
		t.Fatalf("a sender with a line break in a header: %+v, %d requests", res, gw.count())
	}
}

// Templates that cannot give a well-formed request are refused by Validate.
func TestValidateTemplates(t *testing.T) {
	for name, body := range map[string]string{
		"value outside a string": `{"to": {{.To}}}`,
		"not JSON":               `to={{.To}}`,
		"unknown field":          `{"to":"{{.Nope}}"}`,
		"bad template":           `{"to":"{{.To}"}`,
	} {
		s := DefaultSettings
		s.Preset, s.URL, s.Body = PresetCustom, "https://gw.example.com/send", body
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "body") {
			t.Errorf("%s: %v, want a body error", name, err)
		}
	}
	s := DefaultSettings
	s.Preset, s.URL, s.Method, s.Body = PresetCustom, "https://gw.example.com/send?to={{.To}}", "GET", `{"to":"{{.To}}"}`
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "GET carries no body") {
		t.Errorf("a GET with a body: %v", err)
	}
	s = DefaultSettings
	s.Preset = "nexmo"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "preset") {
		t.Errorf("unknown preset: %v", err)
	}
	s = twilioSettings("ftp://x")
	s.AccountSID, s.SuccessCodes, s.CallbackBaseURL = "AC12", "200-", "otp.example.com"
	err := s.Validate()
	for _, key := range []string{"account_sid", "success_codes", "url", "callback_base_url"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("want a %s error, got %v", key, err)
		}
	}
}

// What a gateway answers, as a Result: 5xx and network errors tried again within the deadline, 4xx refused
// at once (401/403 as auth_failed), a 2xx without what the preset expects a bad_response.
func TestSendFailures(t *testing.T) {
	twilioOK := `{"sid":"SM1"}`
	for _, tc := range []struct {
		name    string
		answers []int
		body    string
		state   message.State
		reason  string
		tries   int
	}{
		{"500 then 201", []int{500, 503, 201}, twilioOK, message.Sent, "", 3},
		{"429 then 201", []int{429, 201}, twilioOK, message.Sent, "", 2},
		{"400", []int{400}, `{"code":21211,"message":"The 'To' number is not a valid phone number."}`, message.Failed, message.ReasonRejected, 1},
		{"401", []int{401}, `{"code":20003}`, message.Failed, message.ReasonAuthFailed, 1},
		{"403", []int{403}, ``, message.Failed, message.ReasonAuthFailed, 1},
		{"201 garbage", []int{201}, `<html>hello</html>`, message.Failed, message.ReasonBadResponse, 1},
		{"201 without sid", []int{201}, `{"status":"queued"}`, message.Failed, message.ReasonBadResponse, 1},
		{"302", []int{302}, ``, message.Failed, message.ReasonBadResponse, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, func(n int, _ *http.Request, _ []byte) (int, string) {
				return tc.answers[min(n, len(tc.answers))-1], tc.body
			})
			g, log := newSender(t, twilioSettings(gw.URL), nil)
			res := send(g, hostile)
			if res.State != tc.state || res.Reason != tc.reason || gw.count() != tc.tries {
				t.Fatalf("%+v after %d requests; want %s %s after %d", res, gw.count(), tc.state, tc.reason, tc.tries)
			}
			noSecrets(t, log)
		})
	}
	t.Run("500 until the deadline", func(t *testing.T) {
		gw := startGateway(t, func(int, *http.Request, []byte) (int, string) { return 500, "down" })
		g, _ := newSender(t, twilioSettings(gw.URL), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		res := g.Send(ctx, hostile)
		if res.State != message.Failed || res.Reason != message.ReasonUnavailable || gw.count() < 2 || !strings.Contains(res.Detail, "500") {
			t.Fatalf("%+v after %d requests", res, gw.count())
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		g, _ := newSender(t, twilioSettings("http://"+addr), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if res := g.Send(ctx, hostile); res.State != message.Failed || res.Reason != message.ReasonUnavailable {
			t.Fatalf("%+v", res)
		}
	})
}

// receipts collects the Receipts a Sender reports.
type receipts struct {
	mu  sync.Mutex
	got []message.Receipt
}

func (r *receipts) add(rc message.Receipt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rc)
}
func (r *receipts) list() []message.Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message.Receipt(nil), r.got...)
}

// report is a report as the engine's route hands it over.
func report(method, target, contentType, body string, header map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func faultCode(err error) fault.Code {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// Twilio's documented example (https://www.twilio.com/docs/usage/security#validating-requests): auth token
// 12345, that URL and those parameters sign to RSOYDt4T1cUTdK1PDd93/VVr8B8=.
func TestTwilioSignatureVector(t *testing.T) {
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}}
	if got := TwilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params); got != "RSOYDt4T1cUTdK1PDd93/VVr8B8=" {
		t.Fatalf("signature %s", got)
	}
}

// Twilio status callbacks: signed form posts to the StatusCallback URL; delivered, undelivered and failed
// are receipts, queued and sent change nothing; a bad or missing signature is Forbidden, a report without
// a status InvalidRequest, and neither records anything.
func TestTwilioCallback(t *testing.T) {
	var rc receipts
	g, log := newSender(t, twilioSettings("http://unused"), rc.add)
	cbURL := "https://otp.example.com/base/callbacks/sms/otp_01JD3ABC~1"
	post := func(form url.Values, sig string) error {
		return g.Callback("otp_01JD3ABC~1", report("POST", "/callbacks/sms/otp_01JD3ABC~1", "application/x-www-form-urlencoded",
			form.Encode(), map[string]string{"X-Twilio-Signature": sig}))
	}
	status := func(s, code string) url.Values {
		f := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {s}, "AccountSid": {sid}, "SmsStatus": {s}, "ApiVersion": {"2010-04-01"}}
		if code != "" {
			f.Set("ErrorCode", code)
		}
		return f
	}
	for _, tc := range []struct {
		status, code string
		want         *message.Receipt
	}{
		{"queued", "", nil}, {"sent", "", nil},
		{"delivered", "", &message.Receipt{State: message.Delivered}},
		{"undelivered", "30003", &message.Receipt{State: message.Failed, Reason: message.ReasonUndelivered}},
		{"failed", "30007", &message.Receipt{State: message.Failed, Reason: message.ReasonRejected}},
	} {
		before := len(rc.list())
		f := status(tc.status, tc.code)
		if err := post(f, TwilioSignature(authToken, cbURL, f)); err != nil {
			t.Fatalf("%s: %v", tc.status, err)
		}
		got := rc.list()[before:]
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: receipts %v, want none", tc.status, got)
			}
			continue
		}
		if len(got) != 1 || got[0].State != tc.want.State || got[0].Reason != tc.want.Reason || got[0].Ref != "otp_01JD3ABC~1" {
			t.Errorf("%s: receipts %+v, want %+v", tc.status, got, tc.want)
		}
	}
	n := len(rc.list())
	f := status("delivered", "")
	for name, sig := range map[string]string{
		"none": "", "other token": TwilioSignature("other", cbURL, f), "other URL": TwilioSignature(authToken, cbURL+"x", f),
	} {
		if err := post(f, sig); faultCode(err) != fault.Forbidden {
			t.Errorf("signature %s: %v, want forbidden", name, err)
		}
	}
	tampered := status("delivered", "")
	sig := TwilioSignature(authToken, cbURL, tampered)
	tampered.Set("MessageStatus", "failed")
	if err := post(tampered, sig); faultCode(err) != fault.Forbidden {
		t.Errorf("tampered: %v", err)
	}
	garbage := url.Values{"hello": {"x"}}
	if err := post(garbage, TwilioSignature(authToken, cbURL, garbage)); faultCode(err) != fault.InvalidRequest {
		t.Errorf("no status: %v", err)
	}
	if err := g.Callback("otp_1", report("POST", "/callbacks/sms/otp_1", "text/plain", "%%%", nil)); faultCode(err) != fault.InvalidRequest {
		t.Errorf("garbage body: %v", err)
	}
	if err := g.Callback("../x y", report("POST", "/", "", "", nil)); faultCode(err) != fault.InvalidRequest {
		t.Errorf("bad ref: %v", err)
	}
	if len(rc.list()) != n {
		t.Errorf("refused reports recorded: %v", rc.list()[n:])
	}
	noSecrets(t, log)
}

// vonageSig computes Vonage's signature as its documentation describes it, apart from the code under test:
// sorted "&key=value" ('&' and '=' in values as '_'), then MD5 of it and the secret, or HMAC-SHA256.
func vonageSig(method string, p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	s := ""
	for _, k := range keys {
		s += "&" + k + "=" + strings.ReplaceAll(strings.ReplaceAll(p[k], "&", "_"), "=", "_")
	}
	if method == SigMD5Hash {
		sum := md5.Sum([]byte(s + sigSecret))
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, []byte(sigSecret))
	m.Write([]byte(s))
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// Vonage delivery receipts (https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts), by
// GET, form POST and JSON POST, signed (md5hash and sha256): the status mapped, a bad sig or an old
// timestamp refused.
func TestVonageCallback(t *testing.T) {
	now := time.Unix(1733400000, 0)
	for _, method := range []string{SigMD5Hash, SigSHA256} {
		t.Run(method, func(t *testing.T) {
			var rc receipts
			s := DefaultSettings
			s.Preset, s.APIKey, s.APISecret, s.SignatureSecret, s.SignatureMethod = PresetVonage, "abcd1234", apiSecret, sigSecret, method
			s.CallbackBaseURL = "https://otp.example.com"
			g, log := newSender(t, s, rc.add)
			g.now = func() time.Time { return now }
			dlr := func(status string, ts time.Time) map[string]string {
				p := map[string]string{"msisdn": "15551234567", "to": "Acme", "network-code": "12345", "messageId": "0A0000000123ABCD1",
					"price": "0.03", "status": status, "scts": "2001011400", "err-code": "0", "api-key": "abcd1234",
					"client-ref": "otp_01JD3ABC~1", "message-timestamp": "2020-01-01 12:00:00", "timestamp": strconv.FormatInt(ts.Unix(), 10), "nonce": "a&b=c"}
				p["sig"] = vonageSig(method, p)
				return p
			}
			deliver := func(via string, p map[string]string) error {
				q := url.Values{}
				for k, v := range p {
					q.Set(k, v)
				}
				switch via {
				case "GET":
					return g.Callback("otp_01JD3ABC~1", report("GET", "/callbacks/sms/otp_01JD3ABC~1?"+q.Encode(), "", "", nil))
				case "POST":
					return g.Callback("otp_01JD3ABC~1", report("POST", "/callbacks/sms/otp_01JD3ABC~1", "application/x-www-form-urlencoded", q.Encode(), nil))
				}
				b, _ := json.Marshal(p)
				return g.Callback("otp_01JD3ABC~1", report("POST", "/callbacks/sms/otp_01JD3ABC~1", "application/json", string(b), nil))
			}
			for i, tc := range []struct{ via, status, reason string }{
				{"GET", "accepted", "-"}, {"POST", "buffered", "-"},
				{"GET", "delivered", ""}, {"POST", "expired", message.ReasonExpired}, {"JSON", "failed", message.ReasonUndelivered},
				{"POST", "rejected", message.ReasonRejected},
			} {
				before := len(rc.list())
				if err := deliver(tc.via, dlr(tc.status, now)); err != nil {
					t.Fatalf("%d %s %s: %v", i, tc.via, tc.status, err)
				}
				got := rc.list()[before:]
				if tc.reason == "-" {
					if len(got) != 0 {
						t.Errorf("%s: %v, want nothing", tc.status, got)
					}
					continue
				}
				if len(got) != 1 || got[0].Reason != tc.reason || (tc.reason == "") != (got[0].State == message.Delivered) {
					t.Errorf("%s: %+v", tc.status, got)
				}
			}
			n := len(rc.list())
			bad := dlr("delivered", now)
			bad["status"] = "expired" // after signing
			if err := deliver("POST", bad); faultCode(err) != fault.Forbidden {
				t.Errorf("tampered: %v", err)
			}
			if err := deliver("GET", dlr("delivered", now.Add(-10*time.Minute))); faultCode(err) != fault.Forbidden {
				t.Errorf("old timestamp: %v", err)
			}
			nosig := dlr("delivered", now)
			delete(nosig, "sig")
			if err := deliver("GET", nosig); faultCode(err) != fault.Forbidden {
				t.Errorf("no sig: %v", err)
			}
			if len(rc.list()) != n {
				t.Errorf("refused receipts recorded")
			}
			noSecrets(t, log)
		})
	}
}

// A custom gateway's report: its URL's sig checked, callback_statuses applied.
func TestCustomCallback(t *testing.T) {
	var rc receipts
	s := DefaultSettings
	s.Preset, s.URL, s.Body = PresetCustom, "https://gw.example.com/send", `{"to":"{{.To}}"}`
	s.CallbackBaseURL, s.CallbackSecret, s.CallbackStatusField = "https://otp.example.com", cbSecret, "state"
	s.CallbackStatuses = map[string]string{"DELIVRD": StatusDelivered, "UNDELIV": StatusUndelivered, "ENROUTE": StatusIgnore}
	g, log := newSender(t, s, rc.add)
	ref := "otp_01JD3ABC~1"
	good := "/callbacks/sms/" + ref + "?sig=" + refSig(cbSecret, ref)
	if err := g.Callback(ref, report("POST", good, "application/json", `{"state":"ENROUTE"}`, nil)); err != nil || len(rc.list()) != 0 {
		t.Fatalf("enroute: %v %v", err, rc.list())
	}
	if err := g.Callback(ref, report("POST", good, "application/json", `{"state":"delivrd","id":7}`, nil)); err != nil || len(rc.list()) != 1 || rc.list()[0].State != message.Delivered {
		t.Fatalf("delivered: %v %v", err, rc.list())
	}
	if err := g.Callback(ref, report("GET", good+"&state=UNDELIV", "", "", nil)); err != nil || len(rc.list()) != 2 || rc.list()[1].Reason != message.ReasonUndelivered {
		t.Fatalf("undelivered: %v %v", err, rc.list())
	}
	other := "/callbacks/sms/" + ref + "?sig=" + refSig(cbSecret, "otp_other")
	if err := g.Callback(ref, report("POST", other, "application/json", `{"state":"DELIVRD"}`, nil)); faultCode(err) != fault.Forbidden {
		t.Errorf("another ref's sig: %v", err)
	}
	if err := g.Callback(ref, report("POST", good, "application/json", `{"state":`, nil)); faultCode(err) != fault.InvalidRequest {
		t.Errorf("broken JSON: %v", err)
	}
	if len(rc.list()) != 2 {
		t.Errorf("refused reports recorded")
	}
	noSecrets(t, log)
}

// BenchmarkSend sends through the Twilio preset to a local HTTP server answering 201: messages a second
// through the gateway sender (go test -run '^$' -bench Send -benchtime 5000x ./smsgw/).
func BenchmarkSend(b *testing.B) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.WriteHeader(201)
		io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}))
	defer srv.Close()
	g, err := New(twilioSettings(srv.URL), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := g.Send(context.Background(), hostile); res.State != message.Sent {
				b.Errorf("%+v", res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
