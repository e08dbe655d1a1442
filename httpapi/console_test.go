package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// consoleFiles stand in for web/dist: the routes serve whatever the build put there.
var consoleFiles = fstest.MapFS{
	"index.html":         {Data: []byte(`<!doctype html><div id="app"></div><script src="/console/assets/app-1a2b.js"></script>`)},
	"assets/app-1a2b.js": {Data: []byte(`console.log("console")`)},
}

// signedIn is a console session: its cookie and CSRF token.
type signedIn struct {
	cookie, csrf, role string
}

// get and change are requests of the session: change carries the CSRF token.
func (s signedIn) get() auth {
	return func(r *http.Request) { r.Header.Set("Cookie", "flashotp_console="+s.cookie) }
}

func (s signedIn) change() auth {
	return func(r *http.Request) {
		r.Header.Set("Cookie", "flashotp_console="+s.cookie)
		r.Header.Set("X-CSRF-Token", s.csrf)
	}
}

// signIn signs in with body and fails the test unless it worked.
func (e *env) signIn(t testing.TB, body string) signedIn {
	t.Helper()
	res := e.do(t, "POST", "/console/api/session", body, nil)
	if res.status != http.StatusOK {
		t.Fatalf("sign in %s: %d %s", body, res.status, res.body)
	}
	var got struct {
		Operator struct{ Name, Role string }
		CSRF     string `json:"csrf_token"`
	}
	if err := json.Unmarshal(res.body, &got); err != nil || got.CSRF == "" {
		t.Fatalf("sign-in answer %s: %v", res.body, err)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "flashotp_console" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("sign in: no flashotp_console cookie in %v", res.header)
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/console" || cookie.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not Secure over plain HTTP", cookie)
	}
	return signedIn{cookie: cookie.Value, csrf: got.CSRF, role: got.Operator.Role}
}

func TestConsoleSignIn(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	if s.role != "admin" {
		t.Errorf("token sign-in role %q, want admin", s.role)
	}
	if res := e.do(t, "GET", "/console/api/session", "", s.get()); res.status != http.StatusOK || !strings.Contains(string(res.body), s.csrf) {
		t.Errorf("GET session: %d %s, want the session with its CSRF token", res.status, res.body)
	}
	for _, c := range []struct{ name, body, code string }{
		{"wrong token", `{"token":"nope"}`, "unauthorized"},
		{"token prefix", `{"token":"t0"}`, "unauthorized"},
		{"unknown operator", `{"username":"ghost","password":"long enough password"}`, "unauthorized"},
		{"nothing", `{}`, "invalid_request"},
		{"both", `{"token":"t0k","username":"a","password":"b"}`, "invalid_request"},
		{"unknown field", `{"tokn":"t0k"}`, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status := http.StatusUnauthorized
			if c.code == "invalid_request" {
				status = http.StatusBadRequest
			}
			wantError(t, e.do(t, "POST", "/console/api/session", c.body, nil), status, c.code)
		})
	}
	// A form, which any site can make a browser post, is refused: sign-in takes JSON only.
	form := func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }
	wantError(t, e.do(t, "POST", "/console/api/session", `{"token":"t0k"}`, form), http.StatusBadRequest, "invalid_request")
	crossSite := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }
	wantError(t, e.do(t, "POST", "/console/api/session", `{"token":"t0k"}`, crossSite), http.StatusForbidden, "forbidden")

	if res := e.do(t, "DELETE", "/console/api/session", "", s.change()); res.status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", res.status, res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/session", "", s.get()), http.StatusUnauthorized, "unauthorized")
	entries := e.auditActions(t)
	if strings.Join(entries, ",") != "sign_out,sign_in" {
		t.Errorf("audit log %v, want sign_out, sign_in", entries)
	}
}

// auditActions are the audit log's actions, newest first.
func (e *env) auditActions(t testing.TB) []string {
	t.Helper()
	page, err := e.audit.List(t.Context(), "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range page.Items {
		out = append(out, it.Action)
	}
	return out
}

func TestConsoleSessionExpires(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	e.clock.Advance(29 * time.Minute)
	if res := e.do(t, "GET", "/console/api/session", "", s.get()); res.status != http.StatusOK {
		t.Fatalf("after 29 minutes: %d %s", res.status, res.body)
	}
	e.clock.Advance(30 * time.Minute) // unused for 30 minutes
	wantError(t, e.do(t, "GET", "/console/api/session", "", s.get()), http.StatusUnauthorized, "unauthorized")

	s = e.signIn(t, `{"token":"`+adminToken+`"}`)
	for range 12 * 4 { // used every 15 minutes, it still ends 12 hours after sign-in
		e.clock.Advance(15 * time.Minute)
		e.do(t, "GET", "/console/api/session", "", s.get())
	}
	wantError(t, e.do(t, "GET", "/console/api/session", "", s.get()), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do(t, "GET", "/console/api/session", "", nil), http.StatusUnauthorized, "unauthorized")
}

func TestConsoleCSRFAndRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.signIn(t, `{"token":"`+adminToken+`"}`)
	add := `{"name":"vera","role":"viewer","password":"correct horse battery"}`
	// Without the session's CSRF token a change is refused, and nothing is made.
	wantError(t, e.do(t, "POST", "/console/api/admin/operators", add, admin.get()), http.StatusForbidden, "forbidden")
	forged := func(r *http.Request) {
		r.Header.Set("Cookie", "flashotp_console="+admin.cookie)
		r.Header.Set("X-CSRF-Token", admin.csrf[:len(admin.csrf)-1]+"x")
	}
	wantError(t, e.do(t, "POST", "/console/api/admin/operators", add, forged), http.StatusForbidden, "forbidden")
	crossOrigin := func(r *http.Request) {
		admin.change()(r)
		r.Header.Set("Origin", "https://evil.example")
	}
	wantError(t, e.do(t, "POST", "/console/api/admin/operators", add, crossOrigin), http.StatusForbidden, "forbidden")
	if ops := e.accounts.List(); len(ops) != 0 {
		t.Fatalf("refused requests made operators %v", ops)
	}
	if res := e.do(t, "POST", "/console/api/admin/operators", add, admin.change()); res.status != http.StatusCreated {
		t.Fatalf("add operator: %d %s", res.status, res.body)
	}

	viewer := e.signIn(t, `{"username":"vera","password":"correct horse battery"}`)
	if viewer.role != "viewer" {
		t.Fatalf("role %q, want viewer", viewer.role)
	}
	if res := e.do(t, "GET", "/console/api/admin/pools", "", viewer.get()); res.status != http.StatusOK {
		t.Errorf("a viewer reads the pools: %d %s", res.status, res.body)
	}
	before := e.poolsSnapshot(t)
	wantError(t, e.do(t, "POST", "/console/api/admin/pools/demo/quarantine", `{"entry":"e1"}`, viewer.change()), http.StatusForbidden, "forbidden")
	wantError(t, e.do(t, "POST", "/console/api/admin/apps", `{"id":"x","pools":["demo"]}`, viewer.change()), http.StatusForbidden, "forbidden")
	if after := e.poolsSnapshot(t); after != before {
		t.Errorf("a viewer's refused change changed the pools")
	}
	// The database and the profiles are the token's alone, for viewers and admins alike.
	wantError(t, e.do(t, "GET", "/console/api/admin/store/backup", "", admin.get()), http.StatusNotFound, "not_found")
	wantError(t, e.do(t, "GET", "/console/api/admin/debug/pprof/", "", admin.get()), http.StatusNotFound, "not_found")

	// An admin's change is audited: who, what, to what, the body with its secrets cut.
	if res := e.do(t, "POST", "/console/api/admin/pools/demo/quarantine", `{"entry":"e1"}`, admin.change()); res.status != http.StatusOK {
		t.Fatalf("quarantine: %d %s", res.status, res.body)
	}
	page, err := e.audit.List(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := page.Items[0]
	if got.Operator != "admin" || got.Action != "POST /admin/pools/{name}/quarantine" || got.Target != "/admin/pools/demo/quarantine" || got.Detail != `{"entry":"e1"}` || got.IP == "" || got.Status != 200 {
		t.Errorf("audit entry %+v", got)
	}
	var addEntry string
	for _, it := range page.Items {
		if it.Action == "POST /admin/operators" {
			addEntry = it.Detail
		}
	}
	if strings.Contains(addEntry, "correct horse") || !strings.Contains(addEntry, `"password":"[redacted]"`) {
		t.Errorf("the operator's password in the audit log: %q", addEntry)
	}

	// Removing an operator ends its sessions.
	if res := e.do(t, "DELETE", "/console/api/admin/operators/vera", "", admin.change()); res.status != http.StatusNoContent {
		t.Fatalf("remove operator: %d %s", res.status, res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/admin/pools", "", viewer.get()), http.StatusUnauthorized, "unauthorized")
}

func TestConsoleAuditRoute(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(t, `{"token":"`+adminToken+`"}`)
	for range 3 {
		e.do(t, "POST", "/console/api/admin/pools/demo/quarantine", `{"entry":"e1"}`, s.change())
		e.do(t, "POST", "/console/api/admin/pools/demo/release", `{"entry":"e1"}`, s.change())
	}
	var page struct {
		Items []struct {
			ID, Action string
		}
		NextCursor string `json:"next_cursor"`
	}
	res := e.do(t, "GET", "/console/api/audit?limit=4", "", s.get())
	if err := json.Unmarshal(res.body, &page); err != nil || len(page.Items) != 4 || page.NextCursor == "" {
		t.Fatalf("audit page: %d %s", res.status, res.body)
	}
	if page.Items[0].Action != "POST /admin/pools/{name}/release" {
		t.Errorf("newest entry %+v, want the last release", page.Items[0])
	}
	res = e.do(t, "GET", "/console/api/audit?limit=4&cursor="+page.NextCursor, "", s.get())
	if err := json.Unmarshal(res.body, &page); err != nil || len(page.Items) != 3 || page.NextCursor != "" || page.Items[2].Action != "sign_in" {
		t.Errorf("second page: %s", res.body)
	}
	wantError(t, e.do(t, "GET", "/console/api/audit?limit=0", "", s.get()), http.StatusBadRequest, "invalid_request")
	wantError(t, e.do(t, "GET", "/console/api/audit?cursor=nope", "", s.get()), http.StatusBadRequest, "invalid_request")
}

func TestConsoleFiles(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ path, want, ctype, cache string }{
		{"/console/", `<div id="app">`, "text/html", "no-cache"},
		{"/console", `<div id="app">`, "text/html", "no-cache"},
		{"/console/verifications/otp_01", `<div id="app">`, "text/html", "no-cache"}, // a page of the app's router
		{"/console/assets/app-1a2b.js", `console.log`, "javascript", "immutable"},
	} {
		res := e.do(t, "GET", c.path, "", nil)
		if res.status != http.StatusOK || !strings.Contains(string(res.body), c.want) || !strings.Contains(res.header.Get("Content-Type"), c.ctype) ||
			!strings.Contains(res.header.Get("Cache-Control"), c.cache) {
			t.Errorf("GET %s: %d %v %s", c.path, res.status, res.header, res.body)
		}
		if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
	wantError(t, e.do(t, "GET", "/console/api/nope", "", nil), http.StatusUnauthorized, "unauthorized")
}

func TestOperatorsAdmin(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ body, want string }{
		{`{"name":"Bob","role":"viewer","password":"correct horse battery"}`, "name"},
		{`{"name":"admin","role":"viewer","password":"correct horse battery"}`, "name"},
		{`{"name":"bob","role":"root","password":"correct horse battery"}`, "role"},
		{`{"name":"bob","role":"viewer","password":"short"}`, "password"},
		{`{"name":"bob","role":"viewer"}`, "password"},
	} {
		inner := wantError(t, e.do(t, "POST", "/admin/operators", c.body, admin), http.StatusBadRequest, "invalid_request")
		if !strings.Contains(string(inner["message"]), c.want) {
			t.Errorf("%s: message %s, want it to name %s", c.body, inner["message"], c.want)
		}
	}
	if res := e.do(t, "POST", "/admin/operators", `{"name":"bob","role":"admin","password":"correct horse battery"}`, admin); res.status != http.StatusCreated {
		t.Fatalf("add: %d %s", res.status, res.body)
	}
	wantError(t, e.do(t, "POST", "/admin/operators", `{"name":"bob","role":"viewer","password":"correct horse battery"}`, admin), http.StatusConflict, "conflict")
	res := e.do(t, "GET", "/admin/operators", "", admin)
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"name":"bob","role":"admin"`) || strings.Contains(string(res.body), "hash") {
		t.Errorf("list: %d %s", res.status, res.body)
	}
	wantError(t, e.do(t, "POST", "/console/api/session", `{"username":"bob","password":"correct horse batter"}`, nil), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do(t, "DELETE", "/admin/operators/nobody", "", admin), http.StatusNotFound, "not_found")
}
