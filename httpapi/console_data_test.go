package httpapi_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"flashotp/fault"
	"flashotp/httpapi"
	"flashotp/internal/testwait"
	"flashotp/metrics"
)

// fakeTrunks are two trunks, "carrier" (up) and "backup" (down); a probe of backup answers 200 and brings
// it up.
type fakeTrunks struct {
	mu     sync.Mutex
	trunks []httpapi.TrunkStatus
	probed []string
}

var _ httpapi.Trunks = (*fakeTrunks)(nil)

func newFakeTrunks() *fakeTrunks {
	rtt := 12.5
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	return &fakeTrunks{trunks: []httpapi.TrunkStatus{
		{Name: "carrier", Address: "203.0.113.10:5060", Transport: "udp", Up: true, InFlight: 2, MaxCalls: 100, CPS: 1.5, MaxCPS: 20,
			Calls: httpapi.TrunkCalls{Missed: 40, Answered: 1, Failed: 3}, Failovers: 1},
		{Name: "backup", Address: "198.51.100.7:5061", Transport: "tls", OptionsRTTMS: &rtt, LastProbeAt: &at, LastProbeStatus: 503},
	}}
}

func (f *fakeTrunks) Trunks() []httpapi.TrunkStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]httpapi.TrunkStatus(nil), f.trunks...)
}

func (f *fakeTrunks) Probe(_ context.Context, name string) (httpapi.TrunkProbe, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.trunks {
		if f.trunks[i].Name == name {
			f.probed = append(f.probed, name)
			f.trunks[i].Up = true
			return httpapi.TrunkProbe{Up: true, RTTMS: 3.2, Status: 200}, nil
		}
	}
	return httpapi.TrunkProbe{}, fault.Errorf(fault.NotFound, "no such trunk: %q", name)
}

// fakeTries are webhook tries, newest first, as the webhook queue keeps them.
type fakeTries struct {
	mu    sync.Mutex
	tries []httpapi.WebhookTry
}

var _ httpapi.WebhookTries = (*fakeTries)(nil)

func (f *fakeTries) add(t httpapi.WebhookTry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries = append([]httpapi.WebhookTry{t}, f.tries...)
}

func (f *fakeTries) Tries(appID, verificationID string, limit int) []httpapi.WebhookTry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []httpapi.WebhookTry
	for _, t := range f.tries {
		if (appID == "" || t.AppID == appID) && (verificationID == "" || t.VerificationID == verificationID) {
			out = append(out, t)
		}
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// decodeJSON decodes res's body into v, or fails the test.
func decodeJSON(t *testing.T, res response, v any) {
	t.Helper()
	if err := json.Unmarshal(res.body, v); err != nil {
		t.Fatalf("body %s: %v", res.body, err)
	}
}

// wantStatus fails the test unless res has status.
func wantStatus(t *testing.T, what string, res response, status int) {
	t.Helper()
	if res.status != status {
		t.Fatalf("%s: %d %s, want %d", what, res.status, res.body, status)
	}
}

// The live figures: the samples the sampler took, oldest first, with the trunks; every data route wants a
// session.
func TestConsoleLive(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	e.live.Tick()
	e.clock.Advance(time.Second)
	e.metrics.Sent(time.Millisecond)
	e.metrics.Sent(time.Millisecond)
	e.metrics.CallEnded("carrier", "missed", "", false)
	e.live.Tick()
	res := e.do(t, "GET", "/console/api/live", "", s.get())
	wantStatus(t, "live", res, http.StatusOK)
	var live struct {
		Now     string
		Step15m int              `json:"step_15m"`
		Step24h int              `json:"step_24h"`
		M15     []metrics.Sample `json:"m15"`
		H24     []metrics.Sample `json:"h24"`
		Trunks  []struct {
			Name string
			Up   bool
		}
	}
	decodeJSON(t, res, &live)
	if live.Step15m != 1 || live.Step24h != 60 || len(live.M15) != 1 || live.M15[0].Sends != 2 || live.M15[0].Missed != 1 ||
		live.M15[0].T != e.clock.Now().Unix() || len(live.H24) != 0 || len(live.Trunks) != 2 || !live.Trunks[0].Up || live.Trunks[1].Up {
		t.Errorf("live %s", res.body)
	}
	if _, err := time.Parse(time.RFC3339, live.Now); err != nil {
		t.Errorf("now %q: %v", live.Now, err)
	}
	for _, path := range []string{"/console/api/live", "/console/api/live/stream", "/console/api/verifications", "/console/api/trunks",
		"/console/api/overview", "/console/api/reports", "/console/api/webhooks", "/console/api/templates/preview?app_id=demo&channel=sms"} {
		wantError(t, e.do(t, "GET", path, "", nil), http.StatusUnauthorized, "unauthorized")
	}
	wantError(t, e.do(t, "GET", "/console/api/live?x=1", "", s.get()), http.StatusBadRequest, "invalid_request")
}

// openStream opens the live stream on base with session s; it returns the response (its body the stream).
func openStream(t *testing.T, base string, s signedIn) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/console/api/live/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.get()(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// nextEvent reads the stream up to its next sample event and returns its data.
func nextEvent(t *testing.T, r *bufio.Reader) metrics.Sample {
	t.Helper()
	event := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "event: sample":
			event = "sample"
		case strings.HasPrefix(line, "data: ") && event == "sample":
			var smp metrics.Sample
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &smp); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
			return smp
		}
	}
}

// The live stream sends each new sample as an event: one a second with a running sampler. Streams are
// capped (a clear 503 past the cap), end when the client goes (freeing their place), and end when the
// server shuts down, which does not wait for them.
func TestConsoleLiveStream(t *testing.T) {
	e := newEnv(t)
	m := metrics.New()
	live := metrics.NewSampler(m, nil)
	live.Start()
	defer live.Stop()
	cc := e.consoleConfig()
	cc.Data.Live, cc.Data.MaxStreams = live, 2
	e.srv = httpapi.New(httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: e.apps, AdminToken: adminToken, Pools: e.pools, Console: cc},
		e.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	base := e.listen(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)

	first := openStream(t, base, s)
	defer first.Body.Close()
	if first.StatusCode != http.StatusOK || first.Header.Get("Content-Type") != "text/event-stream" || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream: %d %v", first.StatusCode, first.Header)
	}
	r := bufio.NewReader(first.Body)
	m.Sent(time.Millisecond)
	start := time.Now()
	var smp metrics.Sample
	for smp.SendsTotal == 0 {
		smp = nextEvent(t, r)
		if time.Since(start) > 5*time.Second {
			t.Fatal("the send did not show in the stream within 5 s")
		}
	}
	next := nextEvent(t, r)
	if next.T <= smp.T {
		t.Errorf("samples at %d then %d: want one a second", smp.T, next.T)
	}

	second := openStream(t, base, s)
	third := openStream(t, base, s)
	body, _ := io.ReadAll(third.Body)
	third.Body.Close()
	if third.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many live streams") {
		t.Fatalf("a third stream past the cap of 2: %d %s", third.StatusCode, body)
	}
	second.Body.Close() // the client goes: its place is free once its next write fails
	testwait.For(t, 10*time.Second, "a stream's place after its client went", func() bool {
		res := openStream(t, base, s)
		if res.StatusCode == http.StatusOK {
			go func() { time.Sleep(100 * time.Millisecond); res.Body.Close() }() // left open: shutdown must end it
			return true
		}
		res.Body.Close()
		return false
	})

	start = time.Now()
	if err := e.srv.Shutdown(10 * time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %s with streams open", took)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, r); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was still open after shutdown")
	}
}

// sendAs sends a flash call for app with key and secret, and returns the verification's ID.
func (e *env) sendAs(t *testing.T, app, key, secret, to string) string {
	t.Helper()
	res := e.do(t, "POST", "/otp/send", sendBody(app, to), xAPI(key, secret))
	wantStatus(t, "send for "+app, res, http.StatusAccepted)
	var v struct {
		ID string `json:"verification_id"`
	}
	decodeJSON(t, res, &v)
	return v.ID
}

type consoleItem struct {
	ID        string `json:"verification_id"`
	App       string `json:"app_id"`
	Recipient string `json:"recipient"`
	Status    string `json:"status"`
}

type consolePage struct {
	Items      []consoleItem `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

// The verifications of every app, merged newest first, with their recipients masked; a cursor walks
// them; app_id and the API's filters narrow them.
func TestConsoleVerifications(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	var ids []string // oldest first
	for i, app := range []string{"demo", "other", "demo", "other", "demo"} {
		key, secret := demoKey, demoSecret
		if app == "other" {
			key, secret = otherKey, otherSecret
		}
		ids = append(ids, e.sendAs(t, app, key, secret, []string{"+14155552671", "+447400123456"}[i%2]))
		e.clock.Advance(time.Second)
	}
	list := func(query string) consolePage {
		t.Helper()
		res := e.do(t, "GET", "/console/api/verifications"+query, "", s.get())
		wantStatus(t, query, res, http.StatusOK)
		var p consolePage
		decodeJSON(t, res, &p)
		return p
	}
	all := list("")
	if len(all.Items) != 5 || all.NextCursor != "" {
		t.Fatalf("every app's: %+v", all)
	}
	for i, it := range all.Items {
		if it.ID != ids[4-i] {
			t.Errorf("item %d is %s, want %s (newest first)", i, it.ID, ids[4-i])
		}
		if want := map[bool]string{true: "+14•••••••71", false: "+44••••••••56"}[i%2 == 0]; it.Recipient != want {
			t.Errorf("item %d recipient %q, want %q", i, it.Recipient, want)
		}
		if want := map[bool]string{true: "demo", false: "other"}[i%2 == 0]; it.App != want {
			t.Errorf("item %d app %q, want %q", i, it.App, want)
		}
	}
	var walked []string
	for cursor := ""; ; {
		p := list("?limit=2&cursor=" + cursor)
		for _, it := range p.Items {
			walked = append(walked, it.ID)
		}
		if p.NextCursor == "" || len(walked) > 10 {
			break
		}
		cursor = p.NextCursor
	}
	if strings.Join(walked, ",") != strings.Join([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}, ",") {
		t.Errorf("pages of 2: %v", walked)
	}
	if p := list("?app_id=other"); len(p.Items) != 2 || p.Items[0].ID != ids[3] || p.Items[1].ID != ids[1] {
		t.Errorf("app other: %+v", p)
	}
	if p := list("?recipient=%2B447400123456&status=pending&channel=flashcall"); len(p.Items) != 2 {
		t.Errorf("by recipient: %+v", p)
	}
	if p := list("?channel=sms"); len(p.Items) != 0 {
		t.Errorf("sms: %+v", p)
	}
	if p := list("?until=" + e.clock.Now().Add(-3*time.Second).Format(time.RFC3339)); len(p.Items) != 2 || p.Items[0].ID != ids[1] {
		t.Errorf("until: %+v", p)
	}
	wantError(t, e.do(t, "GET", "/console/api/verifications?app_id=nope", "", s.get()), http.StatusNotFound, "not_found")
	for _, q := range []string{"?appid=demo", "?limit=0", "?limit=501", "?status=lost", "?channel=fax", "?since=yesterday", "?cursor=otp_x"} {
		wantError(t, e.do(t, "GET", "/console/api/verifications"+q, "", s.get()), http.StatusBadRequest, "invalid_request")
	}
}

// One verification's timeline: itself (masked), its events, its verify attempts and its webhook tries,
// oldest first. Reveal shows the number in the clear, to a viewer too, and writes so to the audit log.
func TestConsoleTimelineAndReveal(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	id, cli := e.send(t)
	e.clock.Advance(time.Second)
	wrong := wrongCode(cli[len(cli)-4:])
	e.do(t, "POST", "/otp/verify", verifyBody("demo", id, wrong), demo)
	e.hooks.add(httpapi.WebhookTry{At: e.clock.Now(), AppID: "demo", VerificationID: id, Event: "call_missed", URL: "https://example.com/hook", Status: 500, Outcome: "retry", Try: 1, Error: "answered 500"})
	e.hooks.add(httpapi.WebhookTry{At: e.clock.Now().Add(time.Second), AppID: "demo", VerificationID: id, Event: "call_missed", URL: "https://example.com/hook", Status: 200, Outcome: "delivered", Try: 2})
	e.hooks.add(httpapi.WebhookTry{At: e.clock.Now(), AppID: "demo", VerificationID: "otp_another", Event: "approved", Outcome: "delivered", Try: 1})

	res := e.do(t, "GET", "/console/api/verifications/"+id, "", s.get())
	wantStatus(t, "timeline", res, http.StatusOK)
	var tl struct {
		Verification consoleItem
		Events       []struct {
			Type      string
			Recipient string
			At        time.Time
		}
		Attempts []struct{ Result string }
		Webhooks []struct {
			Event, Outcome string
			Try, Status    int
		}
	}
	decodeJSON(t, res, &tl)
	if tl.Verification.ID != id || tl.Verification.App != "demo" || tl.Verification.Recipient != "+14•••••••71" {
		t.Errorf("verification %+v", tl.Verification)
	}
	if len(tl.Events) < 2 || tl.Events[0].Type != "send_requested" || tl.Events[len(tl.Events)-1].Type != "verify_failed" {
		t.Errorf("events %s", res.body)
	}
	for _, ev := range tl.Events {
		if strings.Contains(ev.Recipient, "4155552") {
			t.Errorf("an event shows the number: %+v", ev)
		}
	}
	if len(tl.Attempts) != 1 || tl.Attempts[0].Result != "invalid_code" {
		t.Errorf("attempts %+v", tl.Attempts)
	}
	if len(tl.Webhooks) != 2 || tl.Webhooks[0].Try != 1 || tl.Webhooks[1].Outcome != "delivered" || tl.Webhooks[1].Status != 200 {
		t.Errorf("webhooks %+v", tl.Webhooks)
	}
	if strings.Contains(string(res.body), "4155552") {
		t.Errorf("the timeline shows the number: %s", res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/verifications/otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ", "", s.get()), http.StatusNotFound, "not_found")
	wantError(t, e.do(t, "GET", "/console/api/verifications/nope", "", s.get()), http.StatusBadRequest, "invalid_request")

	// Reveal: a POST with the CSRF token, which a viewer may make.
	wantError(t, e.do(t, "POST", "/console/api/verifications/"+id+"/reveal", "", s.get()), http.StatusForbidden, "forbidden")
	res = e.do(t, "POST", "/console/api/verifications/"+id+"/reveal", "", s.change())
	wantStatus(t, "reveal", res, http.StatusOK)
	if string(res.body) != `{"email":"","recipient":"+14155552671"}` || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("reveal: %s %v", res.body, res.header)
	}
	if _, err := e.accounts.Add(t.Context(), "vera", "viewer", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	viewer := e.signIn(t, `{"username":"vera","password":"correct horse battery"}`)
	wantStatus(t, "a viewer's reveal", e.do(t, "POST", "/console/api/verifications/"+id+"/reveal", "", viewer.change()), http.StatusOK)
	wantError(t, e.do(t, "POST", "/console/api/verifications/otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ/reveal", "", s.change()), http.StatusNotFound, "not_found")
	res = e.do(t, "GET", "/console/api/audit", "", s.get())
	var audit struct {
		Items []struct{ Operator, Action, Target string }
	}
	decodeJSON(t, res, &audit)
	var reveals []string
	for _, it := range audit.Items {
		if it.Action == "reveal" {
			reveals = append(reveals, it.Operator+" "+it.Target)
		}
	}
	if strings.Join(reveals, ",") != "vera "+id+",admin "+id {
		t.Errorf("reveals in the audit log: %v, want vera's then admin's of %s", reveals, id)
	}
}

// Trunks as the dialer tells them; a probe (an admin's, audited) answers how the OPTIONS went.
func TestConsoleTrunks(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	res := e.do(t, "GET", "/console/api/trunks", "", s.get())
	wantStatus(t, "trunks", res, http.StatusOK)
	want := `{"trunks":[{"name":"carrier","address":"203.0.113.10:5060","transport":"udp","up":true,"options_rtt_ms":null,"last_probe_at":null,` +
		`"last_probe_status":0,"last_probe_error":"","in_flight":2,"max_calls":100,"cps":1.5,"max_cps":20,"calls":{"missed":40,"answered":1,"failed":3},"failovers":1},` +
		`{"name":"backup","address":"198.51.100.7:5061","transport":"tls","up":false,"options_rtt_ms":12.5,"last_probe_at":"2025-03-14T09:00:00Z",` +
		`"last_probe_status":503,"last_probe_error":"","in_flight":0,"max_calls":0,"cps":0,"max_cps":0,"calls":{"missed":0,"answered":0,"failed":0},"failovers":0}]}`
	if string(res.body) != want {
		t.Errorf("trunks\n got %s\nwant %s", res.body, want)
	}
	res = e.do(t, "POST", "/console/api/trunks/backup/probe", "", s.change())
	wantStatus(t, "probe", res, http.StatusOK)
	if string(res.body) != `{"up":true,"rtt_ms":3.2,"status":200,"error":""}` || !e.trunks.Trunks()[1].Up {
		t.Errorf("probe: %s", res.body)
	}
	wantError(t, e.do(t, "POST", "/console/api/trunks/nope/probe", "", s.change()), http.StatusNotFound, "not_found")
	if _, err := e.accounts.Add(t.Context(), "vera", "viewer", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	viewer := e.signIn(t, `{"username":"vera","password":"correct horse battery"}`)
	wantError(t, e.do(t, "POST", "/console/api/trunks/backup/probe", "", viewer.change()), http.StatusForbidden, "forbidden")
	if len(e.trunks.probed) != 1 {
		t.Errorf("probed %v, want backup once", e.trunks.probed)
	}
	audit, err := e.audit.List(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range audit.Items {
		found = found || it.Action == "POST /console/api/trunks/{name}/probe" && it.Target == "backup" && it.Operator == "admin"
	}
	if !found {
		t.Errorf("no audit entry of the probe: %+v", audit.Items)
	}
}

// A template preview renders the app's template as a send would, with the code 123456.
func TestConsoleTemplatePreview(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	preview := func(q string) (response, map[string]string) {
		res := e.do(t, "GET", "/console/api/templates/preview?"+q, "", s.get())
		var out map[string]string
		if res.status == http.StatusOK {
			decodeJSON(t, res, &out)
		}
		return res, out
	}
	res, out := preview("app_id=demo&channel=sms")
	wantStatus(t, "sms", res, http.StatusOK)
	if !strings.HasPrefix(out["text"], "123456 is your demo") || out["locale"] != "en" || out["subject"] != "" {
		t.Errorf("sms preview %s", res.body)
	}
	res, out = preview("app_id=demo&channel=sms&locale=pt-BR")
	wantStatus(t, "sms pt-BR", res, http.StatusOK)
	if out["locale"] != "pt" || !strings.Contains(out["text"], "123456") {
		t.Errorf("sms pt-BR preview %s", res.body)
	}
	res, out = preview("app_id=demo&channel=email&locale=es")
	wantStatus(t, "email", res, http.StatusOK)
	if !strings.HasPrefix(out["subject"], "123456 ") || !strings.Contains(out["html"], "<") || !strings.Contains(out["html"], "123456") || !strings.Contains(out["text"], "\n123456\n") {
		t.Errorf("email preview %s", res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/templates/preview?app_id=nope&channel=sms", "", s.get()), http.StatusNotFound, "not_found")
	for _, q := range []string{"channel=sms", "app_id=demo&channel=voice", "app_id=demo&channel=flashcall", "app_id=demo", "app_id=demo&channel=sms&locale=zz_",
		"app_id=demo&channel=sms&code=1"} {
		wantError(t, e.do(t, "GET", "/console/api/templates/preview?"+q, "", s.get()), http.StatusBadRequest, "invalid_request")
	}
}

// The last webhook tries, newest first, of every app or one.
func TestConsoleWebhooks(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	for i, app := range []string{"demo", "other", "demo"} {
		e.hooks.add(httpapi.WebhookTry{At: e.clock.Now().Add(time.Duration(i) * time.Second), AppID: app, VerificationID: "otp_" + app, Event: "call_missed", Outcome: "delivered", Try: 1, Status: 200})
	}
	var page struct{ Items []httpapi.WebhookTry }
	res := e.do(t, "GET", "/console/api/webhooks?app_id=demo", "", s.get())
	wantStatus(t, "webhooks", res, http.StatusOK)
	decodeJSON(t, res, &page)
	if len(page.Items) != 2 || page.Items[0].AppID != "demo" || !page.Items[0].At.After(page.Items[1].At) {
		t.Errorf("demo's: %s", res.body)
	}
	res = e.do(t, "GET", "/console/api/webhooks?limit=1", "", s.get())
	decodeJSON(t, res, &page)
	if len(page.Items) != 1 || page.Items[0].VerificationID != "otp_demo" {
		t.Errorf("limit 1: %s", res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/webhooks?app_id=nope", "", s.get()), http.StatusNotFound, "not_found")
	wantError(t, e.do(t, "GET", "/console/api/webhooks?limit=1001", "", s.get()), http.StatusBadRequest, "invalid_request")
}

// Reports of one app or summed over every app, as JSON or as a CSV attachment.
func TestConsoleReports(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	e.sendAs(t, "demo", demoKey, demoSecret, recipient)
	e.sendAs(t, "other", otherKey, otherSecret, "+447400123456")
	e.sendAs(t, "other", otherKey, otherSecret, "+447400123457")
	var rep struct {
		GroupBy string `json:"group_by"`
		Rows    []struct {
			Key  string
			Sent int
		}
	}
	res := e.do(t, "GET", "/console/api/reports?group_by=country", "", s.get())
	wantStatus(t, "reports", res, http.StatusOK)
	decodeJSON(t, res, &rep)
	if rep.GroupBy != "country" || len(rep.Rows) != 2 || rep.Rows[0].Key != "GB" || rep.Rows[0].Sent != 2 || rep.Rows[1].Key != "US" || rep.Rows[1].Sent != 1 {
		t.Errorf("every app's by country: %s", res.body)
	}
	res = e.do(t, "GET", "/console/api/reports?app_id=demo", "", s.get())
	decodeJSON(t, res, &rep)
	if rep.GroupBy != "day" || len(rep.Rows) != 1 || rep.Rows[0].Key != "2025-03-14" || rep.Rows[0].Sent != 1 {
		t.Errorf("demo's by day: %s", res.body)
	}
	res = e.do(t, "GET", "/console/api/reports?group_by=channel&format=csv&since=2025-03-01&until=2025-03-31", "", s.get())
	wantStatus(t, "csv", res, http.StatusOK)
	if res.header.Get("Content-Type") != "text/csv; charset=utf-8" || res.header.Get("Content-Disposition") != `attachment; filename="flashotp-report-by-channel.csv"` {
		t.Errorf("csv headers %v", res.header)
	}
	records, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
	if err != nil {
		t.Fatalf("csv %q: %v", res.body, err)
	}
	if len(records) != 2 || strings.Join(records[0], ",") != "key,sent,missed,answered,failed,approved,conversion_rate,p50_post_dial_delay_ms" ||
		strings.Join(records[1], ",") != "flashcall,3,0,0,0,0,0," {
		t.Errorf("csv %q", records)
	}
	wantError(t, e.do(t, "GET", "/console/api/reports?app_id=nope", "", s.get()), http.StatusNotFound, "not_found")
	for _, q := range []string{"?group_by=week", "?format=xml", "?since=x", "?appid=demo"} {
		wantError(t, e.do(t, "GET", "/console/api/reports"+q, "", s.get()), http.StatusBadRequest, "invalid_request")
	}
}

func TestConsoleOverview(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	res := e.do(t, "GET", "/console/api/overview", "", s.get())
	wantStatus(t, "overview", res, http.StatusOK)
	var o struct {
		Version, Node string
		Uptime        int64 `json:"uptime_s"`
		Apps, Pools   int
		Trunks        int
		Channels      []string
	}
	decodeJSON(t, res, &o)
	if o.Version != "test" || o.Node != "node-1" || o.Uptime < 3599 || o.Apps != 3 || o.Pools < 3 || o.Trunks != 2 || strings.Join(o.Channels, ",") != "flashcall,sms" {
		t.Errorf("overview %s", res.body)
	}
}

// The console's data routes in statusProbes. The live stream's probe is one its query refuses: a stream
// that reaches the engine never ends, and the probes read whole answers.
func init() {
	for op, p := range map[string]struct{ path, body string }{
		"GET /console/api/live":                       {"/console/api/live", ""},
		"GET /console/api/live/stream":                {"/console/api/live/stream?probe=1", ""},
		"GET /console/api/verifications":              {"/console/api/verifications", ""},
		"GET /console/api/verifications/{id}":         {"/console/api/verifications/otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ", ""},
		"POST /console/api/verifications/{id}/reveal": {"/console/api/verifications/otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ/reveal", ""},
		"GET /console/api/trunks":                     {"/console/api/trunks", ""},
		"POST /console/api/trunks/{name}/probe":       {"/console/api/trunks/carrier/probe", ""},
		"GET /console/api/templates/preview":          {"/console/api/templates/preview?app_id=demo&channel=sms", ""},
		"GET /console/api/webhooks":                   {"/console/api/webhooks", ""},
		"GET /console/api/reports":                    {"/console/api/reports", ""},
		"GET /console/api/overview":                   {"/console/api/overview", ""},
	} {
		statusProbes[op] = p
	}
	// The document's text/event-stream is a string: its events, as read.
	openapi3filter.RegisterBodyDecoder("text/event-stream", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

// consoleDataCalls makes TestResponsesMatchOpenAPI's calls of the console's data routes with session s;
// id is a verification of demo's.
func consoleDataCalls(t *testing.T, v *validator, e *env, s signedIn, id string) {
	t.Helper()
	e.live.Tick()
	e.clock.Advance(time.Second)
	e.metrics.Sent(time.Millisecond)
	e.metrics.Ringing("carrier", 40*time.Millisecond, -1)
	e.metrics.StepEnded("flashcall", "delivered")
	e.live.Tick()
	e.clock.Advance(time.Minute)
	e.live.Tick() // a quiet second in the next minute: the first minute is closed, its quantiles null
	v.call("GET", "/console/api/live", "", s.get(), 200)
	v.call("GET", "/console/api/live?x=1", "", s.get(), 400)

	// The stream, over a socket: its first lines, then the client goes.
	base, ok := e.bases[e.srv]
	if !ok {
		base = e.listen(t)
		e.bases[e.srv] = base
	}
	stream := openStream(t, base, s)
	r := bufio.NewReader(stream.Body)
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\n\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		head.WriteString(line)
	}
	stream.Body.Close()
	v.validate("GET", "/console/api/live/stream", "", s.get(), response{stream.StatusCode, stream.Header, []byte(head.String())})

	v.call("GET", "/console/api/verifications", "", s.get(), 200)
	v.call("GET", "/console/api/verifications?app_id=demo&limit=1&channel=flashcall&status=pending&since=2025-03-01&recipient=%2B14155552671", "", s.get(), 200)
	v.call("GET", "/console/api/verifications?app_id=nope", "", s.get(), 404)
	v.call("GET", "/console/api/verifications?limit=0", "", s.get(), 400)
	e.hooks.add(httpapi.WebhookTry{At: e.clock.Now(), AppID: "demo", VerificationID: id, Event: "call_missed", URL: "https://example.com/hook", Status: 500, Outcome: "retry", Try: 1, Error: "answered 500"})
	v.call("GET", "/console/api/verifications/"+id, "", s.get(), 200)
	v.call("GET", "/console/api/verifications/otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ", "", s.get(), 404)
	v.call("GET", "/console/api/verifications/nope", "", s.get(), 400)
	v.call("POST", "/console/api/verifications/"+id+"/reveal", "", s.change(), 200)
	v.call("POST", "/console/api/verifications/"+id+"/reveal", "", s.get(), 403)
	v.call("GET", "/console/api/trunks", "", s.get(), 200)
	v.call("POST", "/console/api/trunks/backup/probe", "", s.change(), 200)
	v.call("POST", "/console/api/trunks/nope/probe", "", s.change(), 404)
	v.call("GET", "/console/api/templates/preview?app_id=demo&channel=email&locale=fr", "", s.get(), 200)
	v.call("GET", "/console/api/templates/preview?app_id=demo&channel=sms", "", s.get(), 200)
	v.call("GET", "/console/api/templates/preview?app_id=demo&channel=voice", "", s.get(), 400)
	v.call("GET", "/console/api/templates/preview?app_id=nope&channel=sms", "", s.get(), 404)
	v.call("GET", "/console/api/webhooks?app_id=demo&limit=5", "", s.get(), 200)
	v.call("GET", "/console/api/webhooks?limit=0", "", s.get(), 400)
	v.call("GET", "/console/api/reports?group_by=trunk", "", s.get(), 200)
	v.call("GET", "/console/api/reports?app_id=demo&format=csv&since=2025-03-01&until=2025-03-31", "", s.get(), 200)
	v.call("GET", "/console/api/reports?format=xml", "", s.get(), 400)
	v.call("GET", "/console/api/overview", "", s.get(), 200)
}

// A send is told on the stream as an event of its own, not only with the next sample: with no sampler
// running, the send events are all the stream carries. Sends in a burst are told together.
func TestConsoleLiveStreamSends(t *testing.T) {
	e := newEnv(t)
	m := metrics.New()
	live := metrics.NewSampler(m, nil) // never started: no sample comes
	cc := e.consoleConfig()
	cc.Data.Live, cc.Data.Sends = live, m
	e.srv = httpapi.New(httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: e.apps, AdminToken: adminToken, Pools: e.pools, Console: cc},
		e.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	base := e.listen(t)
	res := openStream(t, base, e.signIn(t, `{"token":"`+adminToken+`"}`))
	defer res.Body.Close()
	lines := make(chan string, 64)
	go func() {
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- strings.TrimRight(line, "\n")
		}
	}()
	// sendsTold waits for the next send event and returns its sends_total, calling poke every 50 ms meanwhile.
	sendsTold := func(poke func()) uint64 {
		t.Helper()
		event := ""
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatal("the stream ended")
				}
				if line == "event: send" {
					event = "send"
				} else if data, ok := strings.CutPrefix(line, "data: "); ok && event == "send" {
					var got struct {
						SendsTotal uint64 `json:"sends_total"`
					}
					if err := json.Unmarshal([]byte(data), &got); err != nil {
						t.Fatalf("send event %q: %v", data, err)
					}
					return got.SendsTotal
				}
			case <-tick.C:
				poke()
			case <-deadline:
				t.Fatal("no send event within 5 s")
			}
		}
	}
	// The stream waits for sends once it has written its first lines: send until it tells one.
	sendsTold(func() { m.Sent(time.Millisecond) })
	total, _ := m.NextSend()
	for range 5 {
		m.Sent(time.Millisecond)
	}
	// Five sends within the 100 ms a stream holds back after an event: one or two events tell them all.
	for got := uint64(0); got < total+5; {
		got = sendsTold(func() {})
	}
}
