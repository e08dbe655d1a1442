package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"flashotp/fault"
	"flashotp/httpapi"
)

// fakeReports is an SMSReports that keeps what the route hands it: it refuses the ref "forged" (a bad
// signature) and a body that is not JSON.
type fakeReports struct {
	mu   sync.Mutex
	seen []string // method ref query body
}

var _ httpapi.SMSReports = (*fakeReports)(nil)

func (f *fakeReports) Callback(ref string, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if ref == "forged" {
		return fault.Errorf(fault.Forbidden, "bad signature")
	}
	if len(body) > 0 && !json.Valid(body) {
		return fault.Errorf(fault.InvalidRequest, "not a report")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, r.Method+" "+ref+" "+r.URL.RawQuery+" "+r.Header.Get("X-Twilio-Signature")+" "+string(body))
	return nil
}

// The report route hands the gateway the request as it came (method, ref, query, headers, body), answers
// 204, and the gateway's refusals as 403 and 400; an engine without a gateway answers 404; a body over
// http.max_body_bytes is 413 before the gateway sees it.
func TestSMSReportsRoute(t *testing.T) {
	e := newEnv(t)
	reports := &fakeReports{}
	e.srv = httpapi.New(httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: e.apps, SMSReports: reports}, e.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sig := func(r *http.Request) { r.Header.Set("X-Twilio-Signature", "c2ln") }
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/callbacks/sms/otp_01J~1", `{"status":"delivered"}`, 204},
		{"GET", "/callbacks/sms/otp_01J%7E2?status=delivered&sig=ab", "", 204},
		{"POST", "/callbacks/sms/forged", `{"status":"delivered"}`, 403},
		{"POST", "/callbacks/sms/otp_01J", `{"status":`, 400},
		{"POST", "/callbacks/sms/otp_01J", `{"x":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413},
		{"DELETE", "/callbacks/sms/otp_01J", "", 405},
	} {
		if a := e.do(t, tc.method, tc.path, tc.body, sig); a.status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.status)
		}
	}
	want := []string{`POST otp_01J~1  c2ln {"status":"delivered"}`, `GET otp_01J~2 status=delivered&sig=ab c2ln `}
	if strings.Join(reports.seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("the gateway got\n%s\nwant\n%s", strings.Join(reports.seen, "\n"), strings.Join(want, "\n"))
	}
	none := newEnv(t)
	if a := none.do(t, "POST", "/callbacks/sms/otp_01J", `{}`, nil); a.status != 404 {
		t.Errorf("no gateway: %d %s", a.status, a.body)
	}
}
