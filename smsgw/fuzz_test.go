package smsgw

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"flashotp/fault"
	"flashotp/message"
)

// FuzzCallback feeds reports of every shape to each preset: Callback never panics, refuses what it cannot
// read with a fault.Error, and records nothing unless the report was signed.
func FuzzCallback(f *testing.F) {
	f.Add("POST", "application/x-www-form-urlencoded", "MessageSid=SM1&MessageStatus=delivered", "otp_01J~1", "sig")
	f.Add("POST", "application/json", `{"messageId":"1","status":"delivered","sig":"00"}`, "otp_01J", "")
	f.Add("GET", "", "", "otp_01J", "x")
	f.Add("POST", "application/json", `{"status":[1,{"a":null}],"n":1e400}`, "a", "")
	f.Add("POST", "text/plain", "%zz", "../etc", "")
	f.Fuzz(func(t *testing.T, method, ct, body, ref, sig string) {
		if method != "GET" {
			method = "POST"
		}
		for _, preset := range []string{PresetTwilio, PresetVonage, PresetCustom} {
			s := DefaultSettings
			s.Preset, s.CallbackBaseURL = preset, "https://otp.example.com"
			s.AccountSID, s.AuthToken = "AC0123456789abcdef0123456789abcdef", "t"
			s.APIKey, s.APISecret, s.SignatureSecret = "k", "s", "sig"
			s.URL, s.Body, s.CallbackSecret = "https://gw.example.com", `{"to":"{{.To}}"}`, "c"
			if preset != PresetCustom {
				s.URL = ""
			}
			var got []message.Receipt
			g, err := New(s, func(r message.Receipt) { got = append(got, r) }, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(method, "/callbacks/sms/x?sig="+url.QueryEscape(sig), strings.NewReader(body))
			r.Header.Set("Content-Type", ct)
			r.Header.Set("X-Twilio-Signature", sig)
			err = g.Callback(ref, r)
			var fe *fault.Error
			if err != nil && !isFault(err, &fe) {
				t.Fatalf("%s: %v is not a fault.Error", preset, err)
			}
			if len(got) > 0 {
				t.Fatalf("%s: an unsigned report recorded %+v", preset, got)
			}
		}
	})
}

func isFault(err error, fe **fault.Error) bool {
	e, ok := err.(*fault.Error)
	*fe = e
	return ok
}

// FuzzCustomRender renders a custom JSON and form body with any values: the request is well formed and
// each value arrives as itself, in its own field.
func FuzzCustomRender(f *testing.F) {
	f.Add("+15551234567", "Acme\"&=", "a\nb\\c\u2028", "otp_1")
	f.Fuzz(func(t *testing.T, to, from, text, ref string) {
		for _, format := range []string{FormatJSON, FormatForm} {
			s := DefaultSettings
			s.Preset, s.BodyFormat, s.URL = PresetCustom, format, "https://gw.example.com/s/{{.From}}?to={{.To}}"
			s.Body = `{"to":"{{.To}}","from":"{{.From}}","text":"{{.Text}}","ref":"{{.Ref}}"}`
			if format == FormatForm {
				s.Body = `to={{.To}}&from={{.From}}&text={{.Text}}&ref={{.Ref}}`
			}
			c, err := compile(s)
			if err != nil {
				t.Fatal(err)
			}
			r, body, err := c.render(Vars{To: to, From: from, Text: text, Ref: ref})
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			u, err := url.Parse(r.url)
			if err != nil || u.Query().Get("to") != to || len(u.Query()) != 1 {
				t.Fatalf("url %q: %v", r.url, err)
			}
			got := map[string]string{}
			if format == FormatJSON {
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
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
			want := map[string]string{"to": to, "from": from, "text": text, "ref": ref}
			if format == FormatJSON {
				// encoding/json writes each byte of invalid UTF-8 as U+FFFD.
				for k, v := range want {
					b, _ := json.Marshal(v)
					json.Unmarshal(b, &v)
					want[k] = v
				}
			}
			if len(got) != 4 {
				t.Fatalf("%s: fields %v", format, got)
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s: %s = %q, want %q", format, k, got[k], v)
				}
			}
		}
	})
}
