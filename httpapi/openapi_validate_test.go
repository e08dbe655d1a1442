package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"
	"github.com/pquerna/otp/hotp"

	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/httpapi"
	"flashotp/limits"
	"flashotp/metrics"
)

// apiDoc loads the served OpenAPI document, checks it is a valid OpenAPI 3 document, and returns it with a
// router over its paths. It reads the document as strict OpenAPI 3.0.3 validators do (strictly), where
// kin-openapi alone is lenient.
func apiDoc(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(strictly(t, httpapi.OpenAPI))
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return doc, router
}

// strictly returns the document as a strict OpenAPI 3.0.3 validator reads it: "nullable" adds null only to
// the type given beside it (a nullable without a type, e.g. beside allOf or $ref, allows nothing more), and
// the siblings of a $ref are ignored. kin-openapi honours both where strict validators (openapi-core,
// openapi-schema-validator's OAS30Validator) do not, so without this a body they reject would pass here.
func strictly(t *testing.T, doc []byte) []byte {
	t.Helper()
	var raw any
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var walk func(x any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			if ref, ok := x["$ref"]; ok {
				return map[string]any{"$ref": ref}
			}
			if _, typed := x["type"]; !typed {
				delete(x, "nullable")
			}
			for k, v := range x {
				x[k] = walk(v)
			}
		case []any:
			for i, v := range x {
				x[i] = walk(v)
			}
		}
		return x
	}
	b, err := json.Marshal(walk(raw))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The document means the same to a strict OpenAPI 3.0 validator as to kin-openapi: every nullable schema
// has its type beside it, no $ref has siblings; and it names no fixed host, so a tool reading it from an
// engine aims at that engine.
func TestOpenAPIStrict(t *testing.T) {
	var raw struct {
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL       string         `json:"url"`
			Variables map[string]any `json:"variables"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI, &raw); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw.OpenAPI, "3.0.") {
		t.Errorf("openapi %q: the document is written for 3.0 (nullable); a 3.1 one writes type: [..., null]", raw.OpenAPI)
	}
	if len(raw.Servers) == 0 {
		t.Error("no servers")
	}
	for _, s := range raw.Servers {
		u, err := url.Parse(s.URL)
		if err != nil {
			t.Errorf("server %q: %v", s.URL, err)
			continue
		}
		if u.Host != "" && !strings.Contains(s.URL, "{") {
			t.Errorf("server %q: a fixed host; want a relative URL or a templated one", s.URL)
		}
	}
	var doc any
	if err := json.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, x any)
	walk = func(path string, x any) {
		switch x := x.(type) {
		case map[string]any:
			if _, ok := x["nullable"]; ok {
				if _, typed := x["type"]; !typed {
					t.Errorf("%s: nullable without a type beside it: strict validators allow no null here", path)
				}
			}
			if _, ok := x["$ref"]; ok && len(x) > 1 {
				t.Errorf("%s: $ref with siblings: OpenAPI 3.0 ignores them", path)
			}
			for k, v := range x {
				walk(path+"/"+k, v)
			}
		case []any:
			for i, v := range x {
				walk(fmt.Sprintf("%s/%d", path, i), v)
			}
		}
	}
	walk("#", doc)
}

// validator makes requests to the API and checks each answer (status, headers, body) against the document.
type validator struct {
	t      *testing.T
	e      *env
	doc    *openapi3.T
	router routers.Router
	base   string           // the document's server URL: the router matches its host
	seen   map[string][]int // "GET /otp/status" (the document's path) → the statuses validated
}

func newValidator(t *testing.T, e *env) *validator {
	doc, router := apiDoc(t)
	return &validator{t: t, e: e, doc: doc, router: router, base: strings.TrimSuffix(doc.Servers[0].URL, "/"), seen: map[string][]int{}}
}

var validationOptions = &openapi3filter.Options{
	IncludeResponseStatus: true, // a status the document does not list is a mismatch
	MultiError:            true,
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc, // the server checks credentials; the document only names them
}

// call makes a request to v's env, wants status, and validates the answer.
func (v *validator) call(method, path, body string, a auth, status int) response {
	v.t.Helper()
	return v.callOn(v.e, method, path, body, a, status)
}

// callOn is call on another env (another server over the same engine).
func (v *validator) callOn(e *env, method, path, body string, a auth, status int) response {
	v.t.Helper()
	res := e.do(v.t, method, path, body, a)
	if res.status != status {
		v.t.Errorf("%s %s: status %d, want %d; body %s", method, path, res.status, status, res.body)
	}
	v.validate(method, path, body, a, res)
	return res
}

// validate checks res, the answer to method path, against the document; for a success it also checks the
// request, so the document's request schemas are known to take what the server takes.
func (v *validator) validate(method, path, body string, a auth, res response) {
	v.t.Helper()
	if err := v.check(method, path, body, a, res); err != nil {
		v.t.Errorf("%s %s → %d: %v\nbody: %s", method, path, res.status, err, res.body)
	}
}

func (v *validator) check(method, path, body string, a auth, res response) error {
	req := httptest.NewRequest(method, v.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if a != nil {
		a(req)
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return err
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions}
	if res.status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return err
		}
	}
	key := method + " " + route.Path
	v.seen[key] = append(v.seen[key], res.status)
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(res.body)),
		Options:                validationOptions,
	})
}

// field reads one top-level field of a JSON body.
func field(t *testing.T, body []byte, name string, dst any) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if err := json.Unmarshal(m[name], dst); err != nil {
		t.Fatalf("body %s: %s: %v", body, name, err)
	}
}

func errorCode(t *testing.T, res response) string {
	t.Helper()
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(res.body, &b); err != nil {
		t.Fatalf("error body %s: %v", res.body, err)
	}
	return b.Error.Code
}

// Every route of the document, driven for real through the server and its engine, answers as the document
// says: statuses, headers (Retry-After) and bodies, on success and on errors.
func TestResponsesMatchOpenAPI(t *testing.T) {
	e := newEnv(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: e.apps, AdminToken: adminToken, Pools: e.pools, Metrics: metrics.New(), Backup: snapshots(e.db), SMSReports: &fakeReports{},
		TOTP: e.totp, Console: e.consoleConfig()}
	e.srv = httpapi.New(cfg, e.svc, log) // newEnv's server, with metrics on
	v := newValidator(t, e)
	q := url.QueryEscape

	// Health, metrics and the document.
	v.call("GET", "/healthz", "", nil, 200)
	v.call("GET", "/readyz", "", nil, 200)
	v.call("GET", "/openapi.json", "", nil, 200)
	v.call("GET", "/metrics", "", nil, 200)
	notReady := *e
	notReadyCfg := cfg
	notReadyCfg.Ready = func() error { return errors.New("every trunk is down") }
	notReady.srv = httpapi.New(notReadyCfg, e.svc, log)
	v.callOn(&notReady, "GET", "/readyz", "", nil, 503)
	callWhatsApp(t, v, e, cfg, log) // the webhook, on a server with the channel

	// An SMS gateway's delivery reports.
	v.call("POST", "/callbacks/sms/otp_01J~1", `{"status":"delivered"}`, nil, 204)
	v.call("GET", "/callbacks/sms/otp_01J~1?status=delivered", "", nil, 204)
	v.call("POST", "/callbacks/sms/forged", `{"status":"delivered"}`, nil, 403)
	v.call("POST", "/callbacks/sms/otp_01J~1", `{"status":`, nil, 400)

	// Send, and a verification whose call has not started: its call's times and delay are null.
	res := v.call("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","reference":"order-42"}`, demo, 202)
	var id string
	field(t, res.body, "verification_id", &id)
	cli := e.dial.Last(t).CLI
	v.call("GET", "/otp/status?verification_id="+id, "", demo, 200)
	v.call("POST", "/otp/send", sendBody("demo", "+1415"), demo, 400)
	v.call("POST", "/otp/send", sendBody("other", recipient), demo, 403)
	v.call("POST", "/otp/send", sendBody("demo", recipient), nil, 401)
	v.call("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall","reference":"`+strings.Repeat("x", maxBodyBytes)+`"}`, demo, 413)
	e.dial.Refuse(fault.Errorf(fault.Unavailable, "no capacity for the call: %w", dialer.ErrQueueFull))
	v.call("POST", "/otp/send", sendBody("demo", "+14155552673"), demo, 503)
	e.dial.Refuse(nil)

	// Verify: a wrong code, then errors of the request.
	res = v.call("POST", "/otp/verify", verifyBody("demo", id, wrongCode(codeOf(cli))), demo, 422)
	if code := errorCode(t, res); code != "invalid_code" {
		t.Errorf("wrong code: %s, want invalid_code", code)
	}
	v.call("POST", "/otp/verify", `{"appid":"demo","otp_code":"1234"}`, demo, 400)
	v.call("POST", "/otp/verify", `{"appid":"demo","recipient":"+14155552679","otp_code":"1234"}`, demo, 404)
	v.call("POST", "/otp/verify", verifyBody("demo", id, codeOf(cli)), nil, 401)

	// Resend: refused while the call is in flight and within the cooldown, then taken once the call ended
	// and the cooldown passed.
	resend := `{"appid":"demo","verification_id":"` + id + `"}`
	res = v.call("POST", "/otp/resend", resend, demo, 429)
	if code := errorCode(t, res); code != "resend_too_soon" {
		t.Errorf("resend of a call in flight: %s, want resend_too_soon", code)
	}
	start := e.clock.Now()
	e.svc.CallEnded(id, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true,
		StartedAt: start, RingingAt: start.Add(41 * time.Millisecond), EndedAt: start.Add(3 * time.Second)})
	e.clock.Advance(31 * time.Second)
	res = v.call("POST", "/otp/resend", `{"appid":"demo","verification_id":"`+id+`","channel":"flashcall"}`, demo, 202)
	var resends int
	field(t, res.body, "resends", &resends)
	if resends != 1 {
		t.Errorf("resend answer %s: want resends 1", res.body)
	}
	cli = e.dial.Last(t).CLI
	v.call("POST", "/otp/resend", `{"appid":"demo","verification_id":"otp_`+ulid.Make().String()+`"}`, demo, 404)
	v.call("POST", "/otp/resend", `{"appid":"demo"}`, demo, 400)
	start = e.clock.Now()
	e.svc.CallEnded(id, "phone", cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true,
		StartedAt: start, RingingAt: start.Add(60 * time.Millisecond), EndedAt: start.Add(3 * time.Second)})

	// Verify by recipient: approved, then already used.
	res = v.call("POST", "/otp/verify", `{"appid":"demo","recipient":"+14155552671","otp_code":"`+codeOf(cli)+`"}`, demo, 200)
	var status string
	field(t, res.body, "status", &status)
	if status != "approved" {
		t.Errorf("verify by recipient: %s, want approved", res.body)
	}
	v.call("POST", "/otp/verify", verifyBody("demo", id, codeOf(cli)), demo, 409)
	v.call("POST", "/otp/resend", resend, demo, 409)

	// A call that failed before it rang: undeliverable.
	res = v.call("POST", "/otp/send", sendBody("demo", "+14155552672"), demo, 202)
	var failedID string
	field(t, res.body, "verification_id", &failedID)
	e.svc.CallEnded(failedID, "phone", e.dial.Last(t).CLI, call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486,
		StartedAt: e.clock.Now(), EndedAt: e.clock.Now().Add(time.Second)})
	v.call("POST", "/otp/verify", verifyBody("demo", failedID, "1234"), demo, 410)

	// Status, with each kind of credentials.
	v.call("GET", "/otp/status?verification_id="+id, "", demo, 200)
	v.call("GET", "/otp/status?appid=demo&verification_id="+failedID, "", basic(demoKey, demoSecret), 200)
	v.call("GET", "/otp/status?verification_id="+id, "", bearer(b64(demoKey+":"+demoSecret)), 200)
	now := time.Now() // the app registry checks tokens on the real clock
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: demoKey,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(30 * time.Minute))}).SignedString([]byte(demoSecret))
	if err != nil {
		t.Fatal(err)
	}
	v.call("GET", "/otp/status?verification_id="+id, "", bearer(token), 200)
	v.call("GET", "/otp/status?verification_id=otp_"+ulid.Make().String(), "", demo, 404)
	v.call("GET", "/otp/status", "", demo, 400)
	v.call("GET", "/otp/status?appid=other&verification_id="+id, "", demo, 403)
	v.call("GET", "/otp/status?verification_id="+id, "", nil, 401)

	// List, one page at a time.
	res = v.call("GET", "/otp/list?limit=1", "", demo, 200)
	var next string
	field(t, res.body, "next_cursor", &next)
	if next == "" {
		t.Errorf("list?limit=1 of two verifications: %s, want a next_cursor", res.body)
	}
	v.call("GET", "/otp/list?limit=1&cursor="+next, "", demo, 200)
	v.call("GET", "/otp/list?recipient="+q(recipient)+"&status=approved&channel=flashcall&since=2025-03-14&until="+q(e.clock.Now().Add(time.Hour).Format(time.RFC3339)), "", demo, 200)
	v.call("GET", "/otp/list?status=lost", "", demo, 400)
	v.call("GET", "/otp/list?nope=1", "", demo, 400)
	v.call("GET", "/otp/list", "", nil, 401)

	// Logs.
	res = v.call("GET", "/otp/logs?limit=3", "", demo, 200)
	field(t, res.body, "next_cursor", &next)
	if next == "" {
		t.Errorf("logs?limit=3: %s, want a next_cursor", res.body)
	}
	v.call("GET", "/otp/logs?cursor="+next, "", demo, 200)
	v.call("GET", "/otp/logs?verification_id="+id+"&type=call_missed", "", demo, 200)
	v.call("GET", "/otp/logs?recipient="+q(recipient), "", demo, 200)
	v.call("GET", "/otp/logs?type=lost", "", demo, 400)
	v.call("GET", "/otp/logs", "", nil, 401)

	// Rate limits.
	v.call("GET", "/otp/rate-limits?recipient="+q(recipient), "", demo, 200)
	v.call("GET", "/otp/rate-limits", "", demo, 200)
	v.call("GET", "/otp/rate-limits?recipient=abc", "", demo, 400)
	v.call("GET", "/otp/rate-limits?appid=other", "", demo, 403)

	// Attempts.
	res = v.call("GET", "/otp/attempts?verification_id="+id, "", demo, 200)
	var attempts []json.RawMessage
	field(t, res.body, "items", &attempts)
	if len(attempts) != 3 {
		t.Errorf("attempts of %s: %s, want the wrong code, the approval and the code used again", id, res.body)
	}
	v.call("GET", "/otp/attempts?recipient="+q(recipient)+"&limit=10", "", demo, 200)
	v.call("GET", "/otp/attempts?verification_id=otp_"+ulid.Make().String(), "", demo, 404)
	v.call("GET", "/otp/attempts", "", demo, 400)

	// Reports: the day's row has a median post-dial delay; a report of no rows.
	res = v.call("GET", "/otp/reports?group_by=day", "", demo, 200)
	var rows []struct {
		P50 *float64 `json:"p50_post_dial_delay_ms"`
	}
	field(t, res.body, "rows", &rows)
	if len(rows) != 1 || rows[0].P50 == nil {
		t.Errorf("reports by day: %s, want one row with a p50_post_dial_delay_ms", res.body)
	}
	other := xAPI(otherKey, otherSecret)
	res = v.call("POST", "/otp/send", sendBody("other", "+33612345678"), other, 202)
	var otherID string
	field(t, res.body, "verification_id", &otherID)
	e.svc.CallEnded(otherID, "phone", e.dial.Last(t).CLI, call.Result{State: call.StateFailed, Reason: call.ReasonNotFound, SIPCode: 404,
		StartedAt: e.clock.Now(), EndedAt: e.clock.Now().Add(time.Second)})
	res = v.call("GET", "/otp/reports?appid=other", "", other, 200) // no call rang: the median is null
	field(t, res.body, "rows", &rows)
	if len(rows) != 1 || rows[0].P50 != nil {
		t.Errorf("reports of other: %s, want one row with p50_post_dial_delay_ms null", res.body)
	}
	v.call("GET", "/otp/reports?group_by=trunk", "", demo, 200)
	v.call("GET", "/otp/reports?group_by=country&since=2025-03-01&until=2025-03-31", "", demo, 200)
	v.call("GET", "/otp/reports?since=2024-01-01&until=2024-01-02", "", demo, 200)
	v.call("GET", "/otp/reports?group_by=month", "", demo, 400)
	v.call("GET", "/otp/reports", "", nil, 401)

	// Admin: apps and their keys, pools and operators, through the token and through a console session.
	adminCalls := func(pre string, as auth) {
		// Admin: apps and their keys.
		v.call("GET", pre+"/admin/apps", "", as, 200)
		v.call("GET", pre+"/admin/apps", "", nil, 401)
		res := v.call("POST", pre+"/admin/apps", `{"id":"fresh","pools":["demo"],"ttl":"10m","allowed_countries":["US"],`+
			`"rate_limits":{"recipient":{"limit":1,"window":"10m"}},"webhook_url":"https://example.com/hook",`+
			`"pre_send_hook":{"url":"https://example.com/pre-send"}}`, as, 201)
		var created struct {
			Key struct{ Key, Secret string } `json:"key"`
		}
		if err := json.Unmarshal(res.body, &created); err != nil || created.Key.Key == "" || created.Key.Secret == "" {
			t.Fatalf("create app: %s: want a key and its secret (%v)", res.body, err)
		}
		fresh := xAPI(created.Key.Key, created.Key.Secret)
		v.call("POST", pre+"/admin/apps", `{"id":"fresh","pools":["demo"]}`, as, 409)
		v.call("POST", pre+"/admin/apps", `{"id":"bad id","pools":["demo"]}`, as, 400)
		v.call("POST", pre+"/admin/apps", `{"id":"x","colour":"red"}`, as, 400)
		// The new app's key works, and its recipient limit (1 per 10m) answers 429 with Retry-After.
		v.call("POST", "/otp/send", sendBody("fresh", "+14155552674"), fresh, 202)
		res = v.call("POST", "/otp/send", sendBody("fresh", "+14155552674"), fresh, 429)
		if code := errorCode(t, res); code != "rate_limited" {
			t.Errorf("send over the recipient limit: %s, want rate_limited", code)
		}
		v.call("GET", "/otp/rate-limits?appid=fresh&recipient="+q("+14155552674"), "", fresh, 200)
		v.call("GET", pre+"/admin/apps/fresh", "", as, 200)
		v.call("GET", pre+"/admin/apps/nope", "", as, 404)
		res = v.call("PATCH", pre+"/admin/apps/fresh", `{"max_attempts":3,"pre_send_hook":null,"resend_cooldown":"1m"}`, as, 200)
		var hook json.RawMessage
		field(t, res.body, "pre_send_hook", &hook)
		if string(hook) != "null" {
			t.Errorf("PATCH pre_send_hook null: %s", res.body)
		}
		v.call("PATCH", pre+"/admin/apps/fresh", `{"ttl":"1h"}`, as, 400)
		// SPEC section 8's settings (channels, workflow, locale, android_app_hash, templates, code_lengths).
		v.call("PATCH", pre+"/admin/apps/fresh", `{"channels":["flashcall","sms","voice"],"workflow":[{"channel":"flashcall","timeout":"20s"},`+
			`{"channel":"sms","timeout":"1m"},{"channel":"voice"}],"locale":"pt-BR","android_app_hash":"FA+9qCX9VSu",`+
			`"templates":{"sms":{"fr":"{{.Code}} est votre code {{.App}}.","pt-BR":"{{.Code}} é o seu código"}},"code_lengths":{"sms":8}}`, as, 200)
		v.call("PATCH", pre+"/admin/apps/fresh", `{"templates":{"sms":null}}`, as, 200)
		res = v.call("PATCH", pre+"/admin/apps/fresh", `{"templates":{"sms":{"fr":"Votre code {{.App}}"}}}`, as, 400)
		if msg := string(res.body); !strings.Contains(msg, "templates.sms.fr") || !strings.Contains(msg, "does not print {{.Code}}") {
			t.Errorf("a template without the code: %s, want it named", res.body)
		}
		v.call("PATCH", pre+"/admin/apps/fresh", `{"channels":["inbound"]}`, as, 400)
		v.call("PATCH", pre+"/admin/apps/fresh", `{"channels":["flashcall"],"workflow":[]}`, as, 200)
		v.call("PATCH", pre+"/admin/apps/demo", `{"max_attempts":3}`, as, 409)
		v.call("PATCH", pre+"/admin/apps/nope", `{"max_attempts":3}`, as, 404)
		v.call("GET", pre+"/admin/apps", "", as, 200)
		v.call("GET", pre+"/admin/apps/fresh/keys", "", as, 200)
		v.call("GET", pre+"/admin/apps/nope/keys", "", as, 404)
		res = v.call("POST", pre+"/admin/apps/fresh/keys", "", as, 201)
		var key string
		field(t, res.body, "key", &key)
		v.call("POST", pre+"/admin/apps/nope/keys", "", as, 404)
		v.call("POST", pre+"/admin/apps/fresh/keys/"+key+"/rotate", "", as, 200)
		v.call("POST", pre+"/admin/apps/demo/keys/"+demoKey+"/rotate", "", as, 409)
		v.call("POST", pre+"/admin/apps/fresh/keys/nope/rotate", "", as, 404)
		v.call("POST", pre+"/admin/apps/fresh/webhook-secret", "", as, 200)
		v.call("POST", pre+"/admin/apps/demo/webhook-secret", "", as, 409)
		v.call("POST", pre+"/admin/apps/nope/webhook-secret", "", as, 404)
		v.call("DELETE", pre+"/admin/apps/fresh/keys/"+key, "", as, 200)
		v.call("DELETE", pre+"/admin/apps/demo/keys/"+demoKey, "", as, 409)
		v.call("DELETE", pre+"/admin/apps/fresh/keys/nope", "", as, 404)
		v.call("GET", pre+"/admin/apps/fresh/keys", "", as, 200) // rotated_at and revoked_at
		v.call("DELETE", pre+"/admin/apps/demo", "", as, 409)
		v.call("DELETE", pre+"/admin/apps/fresh", "", as, 204)
		v.call("DELETE", pre+"/admin/apps/fresh", "", as, 404)

		// Admin: pools.
		v.call("POST", pre+"/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"trunks":["carrier-fr"],"enabled":true}],"cooldown":"1h"}`, as, 201)
		v.call("POST", pre+"/admin/pools", `{"name":"live","entries":[{"numbers":["+33198766XXXX"]}]}`, as, 409)
		v.call("POST", pre+"/admin/pools", `{"name":"x","entries":[{"numbers":["nope"]}]}`, as, 400)
		v.call("PUT", pre+"/admin/pools/live", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}],"quarantine_codes":[403,603]}`, as, 200)
		v.call("PUT", pre+"/admin/pools/demo", `{"entries":[{"numbers":["+44207947XXXX"]}]}`, as, 409)
		v.call("POST", pre+"/admin/pools/live/entries", `{"numbers":["+4930123XXXXX"],"countries":["DE"],"weight":2}`, as, 201)
		v.call("POST", pre+"/admin/pools/nope/entries", `{"numbers":["+4930123XXXXX"]}`, as, 404)
		v.call("GET", pre+"/admin/pools/live/entries", "", as, 200)
		v.call("GET", pre+"/admin/pools/nope/entries", "", as, 404)
		v.call("DELETE", pre+"/admin/pools/live/entries/e2", "", as, 204)
		v.call("DELETE", pre+"/admin/pools/live/entries/e2", "", as, 404)
		v.call("POST", pre+"/admin/pools/live/quarantine", `{"cli":"+331987651234","for":"2h","reason":"carrier complaint"}`, as, 200)
		v.call("POST", pre+"/admin/pools/live/quarantine", `{"entry":"e1"}`, as, 200)
		v.call("POST", pre+"/admin/pools/live/quarantine", `{"cli":"+442079461234"}`, as, 404)
		v.call("GET", pre+"/admin/pools", "", as, 200) // with uses and quarantines
		v.call("GET", pre+"/admin/pools/live", "", as, 200)
		v.call("GET", pre+"/admin/pools/nope", "", as, 404)
		v.call("POST", pre+"/admin/pools/live/release", `{"entry":"e1"}`, as, 204)
		v.call("POST", pre+"/admin/pools/live/release", `{"entry":"e1"}`, as, 404)
		v.call("DELETE", pre+"/admin/pools/live", "", as, 204)
		v.call("DELETE", pre+"/admin/pools/live", "", as, 404)
		v.call("DELETE", pre+"/admin/pools/demo", "", as, 409)
		v.call("GET", pre+"/admin/pools", "", nil, 401)
		v.call("POST", pre+"/admin/operators", `{"name":"olga","role":"viewer","password":"correct horse battery"}`, as, 201)
		v.call("POST", pre+"/admin/operators", `{"name":"olga","role":"viewer","password":"correct horse battery"}`, as, 409)
		v.call("POST", pre+"/admin/operators", `{"name":"olga","role":"viewer","password":"short"}`, as, 400)
		v.call("GET", pre+"/admin/operators", "", as, 200)
		v.call("DELETE", pre+"/admin/operators/olga", "", as, 204)
		v.call("DELETE", pre+"/admin/operators/olga", "", as, 404)
	}
	adminCalls("", admin)
	res = v.call("POST", "/console/api/session", `{"token":"`+adminToken+`"}`, nil, 200)
	session := e.signIn(t, `{"token":"`+adminToken+`"}`)
	v.call("GET", "/console/api/session", "", session.get(), 200)
	v.call("GET", "/console/api/session", "", nil, 401)
	v.call("POST", "/console/api/session", `{"token":"nope"}`, nil, 401)
	v.call("POST", "/console/api/session", `{}`, nil, 400)
	e.clock.Advance(11 * time.Minute) // past the app's recipient limit of one send in 10 minutes
	adminCalls("/console/api", session.change())
	v.call("POST", "/console/api/admin/pools/demo/quarantine", `{"entry":"e1"}`, session.get(), 403) // no CSRF token
	v.call("GET", "/console/api/audit?limit=5", "", session.get(), 200)
	v.call("GET", "/console/api/audit?limit=0", "", session.get(), 400)
	consoleDataCalls(t, v, e, session, id)
	v.call("DELETE", "/console/api/session", "", session.change(), 204)
	v.call("DELETE", "/console/api/session", "", session.change(), 401)

	// Authenticator codes: enroll, verify (approved, replayed, wrong, not enrolled), delete.
	res = v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice@example.com"}`, demo, 201)
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("enroll answer: Cache-Control %q, want no-store", cc)
	}
	var secret string
	field(t, res.body, "secret", &secret)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice@example.com"}`, demo, 409)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"alice@example.com","type":"hotp","digits":8,"replace":true}`, demo, 201)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"bob","type":"sms"}`, demo, 400)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"bob\u0007"}`, demo, 400)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"bob","extra":1}`, demo, 400)
	v.call("POST", "/otp/totp/enroll", `{"appid":"other","user":"bob"}`, demo, 403)
	v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"bob"}`, nil, 401)
	res = v.call("POST", "/otp/totp/enroll", `{"appid":"demo","user":"bob"}`, demo, 201)
	field(t, res.body, "secret", &secret)
	totpCode, err := hotp.GenerateCode(secret, uint64(e.clock.Now().Unix()/30))
	if err != nil {
		t.Fatal(err)
	}
	res = v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob","otp_code":"`+totpCode+`"}`, demo, 200)
	field(t, res.body, "status", &status)
	if status != "approved" {
		t.Errorf("totp verify: %s, want approved", res.body)
	}
	res = v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob","otp_code":"`+totpCode+`"}`, demo, 409)
	if code := errorCode(t, res); code != "already_verified" {
		t.Errorf("replayed totp code: %s, want already_verified", code)
	}
	v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob","otp_code":"`+wrongCode(totpCode)+`"}`, demo, 422)
	v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"carol","otp_code":"123456"}`, demo, 404)
	v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob","otp_code":"12345"}`, demo, 400)
	v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob"}`, demo, 400)
	v.call("POST", "/otp/totp/delete", `{"appid":"demo","user":"bob"}`, demo, 204)
	v.call("POST", "/otp/totp/delete", `{"appid":"demo","user":"bob"}`, demo, 404)
	v.call("POST", "/otp/totp/verify", `{"appid":"demo","user":"bob","otp_code":"`+totpCode+`"}`, demo, 404)

	// Admin: the store's backup.
	v.call("GET", "/admin/store/backup", "", admin, 200)
	v.call("GET", "/admin/store/backup", "", nil, 401)

	// Admin: profiles.
	v.call("GET", "/admin/debug/pprof/heap", "", admin, 200)
	v.call("GET", "/admin/debug/pprof/profile?seconds=1", "", admin, 200)
	v.call("GET", "/admin/debug/pprof/trace?seconds=1", "", admin, 200)
	v.call("GET", "/admin/debug/pprof/heap", "", nil, 401)

	// Every operation of the document was validated on success, and every /otp one on an error too.
	for _, path := range v.doc.Paths.InMatchingOrder() {
		for method := range v.doc.Paths.Value(path).Operations() {
			key := method + " " + path
			statuses := v.seen[key]
			if !slices.ContainsFunc(statuses, func(s int) bool { return s < 300 }) {
				t.Errorf("%s: no success answer validated (got %v)", key, statuses)
			}
			if strings.HasPrefix(path, "/otp/") && !slices.ContainsFunc(statuses, func(s int) bool { return s >= 400 }) {
				t.Errorf("%s: no error answer validated (got %v)", key, statuses)
			}
		}
	}
}

// The validation TestResponsesMatchOpenAPI relies on does catch answers unlike the document: a body of the
// wrong shape, an undocumented field or status, a null where none is allowed, a 429 without Retry-After.
func TestOpenAPIValidationCatchesMismatches(t *testing.T) {
	e := newEnv(t)
	v := newValidator(t, e)
	id, _ := e.send(t)
	good := e.do(t, "GET", "/otp/status?verification_id="+id, "", demo)
	if err := v.check("GET", "/otp/status?verification_id="+id, "", demo, good); err != nil {
		t.Fatalf("the real answer does not validate: %v\n%s", err, good.body)
	}
	var verification map[string]any
	if err := json.Unmarshal(good.body, &verification); err != nil {
		t.Fatal(err)
	}
	changed := func(fn func(m map[string]any)) []byte {
		m := map[string]any{}
		for k, x := range verification {
			m[k] = x
		}
		fn(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for name, res := range map[string]response{
		"missing field":     {200, jsonHeader, changed(func(m map[string]any) { delete(m, "resends") })},
		"undocumented":      {200, jsonHeader, changed(func(m map[string]any) { m["code"] = "1234" })},
		"wrong type":        {200, jsonHeader, changed(func(m map[string]any) { m["attempts"] = "0" })},
		"null status":       {200, jsonHeader, changed(func(m map[string]any) { m["status"] = nil })},
		"unknown status":    {200, jsonHeader, changed(func(m map[string]any) { m["status"] = "lost" })},
		"undocumented code": {418, jsonHeader, []byte(`{"error":{"code":"internal","message":"x"}}`)},
		"429 without Retry-After": {429, jsonHeader,
			[]byte(`{"error":{"code":"rate_limited","message":"x","retry_after":3}}`)},
		"error of another shape": {404, jsonHeader, []byte(`{"error":"not found"}`)},
	} {
		if err := v.check("GET", "/otp/status?verification_id="+id, "", demo, res); err == nil {
			t.Errorf("%s: validates, want a mismatch: %s", name, res.body)
		}
	}
}

// statusProbes is one request per operation of the document (key: the method and the document's path), that
// gets past the request's own checks and so reaches the engine.
var statusProbes = map[string]struct{ path, body string }{
	"GET /admin/operators":                    {"/admin/operators", ""},
	"POST /admin/operators":                   {"/admin/operators", `{"name":"probe","role":"viewer","password":"correct horse battery"}`},
	"DELETE /admin/operators/{name}":          {"/admin/operators/probe", ""},
	"POST /console/api/session":               {"/console/api/session", `{"token":"` + adminToken + `"}`},
	"GET /console/api/session":                {"/console/api/session", ""},
	"DELETE /console/api/session":             {"/console/api/session", ""},
	"GET /console/api/audit":                  {"/console/api/audit", ""},
	"POST /otp/send":                          {"/otp/send", sendBody("demo", recipient)},
	"POST /otp/verify":                        {"/otp/verify", `{"appid":"demo","recipient":"+14155552671","otp_code":"1234"}`},
	"POST /otp/resend":                        {"/otp/resend", `{"appid":"demo","verification_id":"otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ"}`},
	"GET /otp/status":                         {"/otp/status?verification_id=otp_01JD3ZZZZZZZZZZZZZZZZZZZZZ", ""},
	"GET /otp/list":                           {"/otp/list", ""},
	"GET /otp/logs":                           {"/otp/logs", ""},
	"GET /otp/rate-limits":                    {"/otp/rate-limits?recipient=%2B14155552671", ""},
	"GET /otp/attempts":                       {"/otp/attempts?recipient=%2B14155552671", ""},
	"GET /otp/reports":                        {"/otp/reports", ""},
	"POST /otp/totp/enroll":                   {"/otp/totp/enroll", `{"appid":"demo","user":"probe"}`},
	"POST /otp/totp/verify":                   {"/otp/totp/verify", `{"appid":"demo","user":"probe","otp_code":"123456"}`},
	"POST /otp/totp/delete":                   {"/otp/totp/delete", `{"appid":"demo","user":"probe"}`},
	"GET /healthz":                            {"/healthz", ""},
	"GET /readyz":                             {"/readyz", ""},
	"GET /metrics":                            {"/metrics", ""},
	"GET /openapi.json":                       {"/openapi.json", ""},
	"GET /callbacks/whatsapp":                 {"/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=t&hub.challenge=1", ""},
	"POST /callbacks/whatsapp":                {"/callbacks/whatsapp", `{"object":"whatsapp_business_account","entry":[]}`},
	"GET /admin/apps":                         {"/admin/apps", ""},
	"POST /admin/apps":                        {"/admin/apps", `{"id":"fresh","pools":["demo"]}`},
	"GET /admin/apps/{id}":                    {"/admin/apps/other", ""},
	"PATCH /admin/apps/{id}":                  {"/admin/apps/other", `{"max_attempts":3}`},
	"DELETE /admin/apps/{id}":                 {"/admin/apps/other", ""},
	"GET /admin/apps/{id}/keys":               {"/admin/apps/other/keys", ""},
	"POST /admin/apps/{id}/keys":              {"/admin/apps/other/keys", ""},
	"POST /admin/apps/{id}/keys/{key}/rotate": {"/admin/apps/other/keys/" + otherKey + "/rotate", ""},
	"DELETE /admin/apps/{id}/keys/{key}":      {"/admin/apps/other/keys/" + otherKey, ""},
	"POST /admin/apps/{id}/webhook-secret":    {"/admin/apps/other/webhook-secret", ""},
	"GET /admin/pools":                        {"/admin/pools", ""},
	"GET /admin/pools/{name}":                 {"/admin/pools/demo", ""},
	"GET /admin/store/backup":                 {"/admin/store/backup", ""},
	"POST /admin/pools":                       {"/admin/pools", `{"name":"live2","entries":[{"numbers":["+33198765XXXX"]}]}`},
	"PUT /admin/pools/{name}":                 {"/admin/pools/live", `{"entries":[{"numbers":["+33198765XXXX"]}]}`},
	"DELETE /admin/pools/{name}":              {"/admin/pools/live", ""},
	"GET /admin/pools/{name}/entries":         {"/admin/pools/demo/entries", ""},
	"POST /admin/pools/{name}/entries":        {"/admin/pools/live/entries", `{"numbers":["+4930123XXXXX"]}`},
	"DELETE /admin/pools/{name}/entries/{id}": {"/admin/pools/live/entries/e1", ""},
	"POST /admin/pools/{name}/quarantine":     {"/admin/pools/demo/quarantine", `{"entry":"e1"}`},
	"POST /admin/pools/{name}/release":        {"/admin/pools/demo/release", `{"entry":"e1"}`},
	"GET /admin/debug/pprof/profile":          {"/admin/debug/pprof/profile?seconds=1", ""},
	"GET /admin/debug/pprof/trace":            {"/admin/debug/pprof/trace?seconds=1", ""},
	"GET /admin/debug/pprof/{profile}":        {"/admin/debug/pprof/heap", ""},
	"POST /callbacks/sms/{ref}":               {"/callbacks/sms/otp_01J~1", `{"status":"delivered"}`},
	"GET /callbacks/sms/{ref}":                {"/callbacks/sms/otp_01J~1?status=delivered", ""},
}

// The console's admin routes are the admin API's, probed alike.
func init() {
	for op, p := range statusProbes {
		method, path, _ := strings.Cut(op, " ")
		if strings.HasPrefix(path, "/admin/") && !strings.HasPrefix(path, "/admin/store/") && !strings.HasPrefix(path, "/admin/debug/") {
			p.path = "/console/api" + p.path
			statusProbes[method+" /console/api"+path] = p
		}
	}
}

// credentialsFor returns the credentials a path's routes take.
func credentialsFor(path string, session signedIn) auth {
	switch {
	case strings.HasPrefix(path, "/otp/"):
		return demo
	case strings.HasPrefix(path, "/admin/"):
		return admin
	case strings.HasPrefix(path, "/console/api/"):
		return session.change()
	}
	return nil
}

// Every operation of the document, driven into the errors any route can meet (no credentials, an address
// throttled for failed authentications, a body over the limit, a failing store), answers only statuses the
// document lists for it, in the shape and with the headers (Retry-After) it lists; a method a path does not
// take answers 405 method_not_allowed with the path's methods in Allow.
func TestEveryStatusIsDocumented(t *testing.T) {
	e := newEnv(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: e.apps, AdminToken: adminToken, Pools: e.pools, Metrics: metrics.New(),
		AuthFailures: limits.Rule{Scope: "auth_failures", Limit: 1_000_000, Window: time.Hour}, Backup: snapshots(e.db), TOTP: e.totp,
		Console: e.consoleConfig()}
	e.srv = httpapi.New(cfg, e.svc, log)
	session := e.signIn(t, `{"token":"`+adminToken+`"}`) // both servers' session: they share the console's
	credentialsFor := func(path string) auth { return credentialsFor(path, session) }
	throttled := *e // another server, whose limit one failed authentication fills
	cfg.AuthFailures.Limit = 1
	throttled.srv = httpapi.New(cfg, e.svc, log)
	if res := throttled.do(t, "GET", "/otp/list", "", xAPI(demoKey, "wrong")); res.status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d, want 401", res.status)
	}
	v := newValidator(t, e)

	// documented says whether the document lists status for method path, with a Retry-After header when the
	// answer has one.
	documented := func(op, fault string, res response) {
		t.Helper()
		method, path, _ := strings.Cut(op, " ")
		ref := v.doc.Paths.Value(path).GetOperation(method).Responses.Status(res.status)
		if ref == nil || ref.Value == nil {
			t.Errorf("%s, %s: answers %d, which the document does not list; body %s", op, fault, res.status, res.body)
			return
		}
		if res.header.Get("Retry-After") != "" && ref.Value.Headers["Retry-After"] == nil {
			t.Errorf("%s, %s: %d has Retry-After, which the document does not list", op, fault, res.status)
		}
	}
	var ops []string
	for _, path := range v.doc.Paths.InMatchingOrder() {
		item := v.doc.Paths.Value(path)
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
		// A method the path does not take.
		var allow []string
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if item.GetOperation(m) != nil || (m == "HEAD" && item.Get != nil) {
				allow = append(allow, m)
			}
		}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(allow, m) {
				continue
			}
			probe := strings.NewReplacer("{id}", "x", "{name}", "demo", "{key}", "k", "{profile}", "heap", "{ref}", "otp_01J").Replace(path)
			res := e.do(t, m, probe, "", credentialsFor(path))
			if res.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405; body %s", m, path, res.status, res.body)
				continue
			}
			if code := errorCode(t, res); code != "method_not_allowed" {
				t.Errorf("%s %s: code %q, want method_not_allowed", m, path, code)
			}
			got := strings.Split(res.header.Get("Allow"), ", ")
			if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(allow))) {
				t.Errorf("%s %s: Allow %v, want %v", m, path, got, allow)
			}
		}
	}
	slices.Sort(ops)
	for _, op := range ops {
		if _, ok := statusProbes[op]; !ok {
			t.Errorf("%s: no probe in statusProbes", op)
		}
	}
	for op := range statusProbes {
		if !slices.Contains(ops, op) {
			t.Errorf("%s: probed but not in the document", op)
		}
	}

	probe := func(srv *env, op, fault, body string, a auth) response {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		p := statusProbes[op]
		if body == "" {
			body = p.body
		}
		res := srv.do(t, method, p.path, body, a)
		documented(op, fault, res)
		if err := v.check(method, p.path, body, a, res); err != nil && res.status >= 300 {
			t.Errorf("%s, %s: %d does not match the document: %v; body %s", op, fault, res.status, err, res.body)
		}
		return res
	}
	tooLarge := `{"reference":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	for _, op := range ops {
		path := statusProbes[op].path
		probe(e, op, "no credentials", "", nil)
		probe(&throttled, op, "throttled", "", credentialsFor(path))
		if res := probe(e, op, "a body over the limit", tooLarge, credentialsFor(path)); res.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a body over the limit: %d, want 413", op, res.status)
		}
	}
	// The store fails under every call, as bbolt's does once it lost its map of the file on a failing disk.
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if res := probe(e, op, "a failing store", "", credentialsFor(statusProbes[op].path)); res.status == http.StatusInternalServerError {
			t.Errorf("%s on a failing store: 500, want 503 unavailable; body %s", op, res.body)
		}
	}
}
