package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"flashotp/httpapi"
	"flashotp/numberpool"
	"flashotp/store"
)

var admin = bearer(adminToken)

// poolsSnapshot is what the registry shows, to compare before and after a request that must change nothing.
func (e *env) poolsSnapshot(t testing.TB) string {
	t.Helper()
	reports, apps := e.pools.Pools()
	b, err := json.Marshal(struct {
		R []numberpool.Report
		A []numberpool.AppSpace
	}{reports, apps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// adminRoutes is one request to every admin route, each of which would change or show something.
var adminRoutes = []struct{ method, path, body string }{
	{"GET", "/admin/pools", ""},
	{"GET", "/admin/pools/demo", ""},
	{"GET", "/admin/store/backup", ""},
	{"POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}]}`},
	{"PUT", "/admin/pools/live", `{"entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}]}`},
	{"DELETE", "/admin/pools/live", ""},
	{"GET", "/admin/pools/demo/entries", ""},
	{"POST", "/admin/pools/live/entries", `{"numbers":["+33198765XXXX"]}`},
	{"DELETE", "/admin/pools/demo/entries/e1", ""},
	{"POST", "/admin/pools/demo/quarantine", `{"entry":"e1"}`},
	{"POST", "/admin/pools/demo/release", `{"entry":"e1"}`},
	{"GET", "/admin/nope", ""},
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	auths := []struct {
		name string
		auth auth
	}{
		{"none", nil},
		{"wrong token", bearer("t0k0")},
		{"token prefix", bearer("t0")},
		{"empty bearer", bearer("")},
		{"token without scheme", func(r *http.Request) { r.Header.Set("Authorization", adminToken) }},
		{"token as basic", basic(adminToken, "")},
		{"token in X-API-Key", xAPI(adminToken, adminToken)},
		{"an app's credentials", demo},
		{"an app's bearer", bearer(b64(demoKey + ":" + demoSecret))},
	}
	before := e.poolsSnapshot(t)
	for _, r := range adminRoutes {
		for _, a := range auths {
			t.Run(r.method+" "+r.path+"/"+a.name, func(t *testing.T) {
				wantError(t, e.do(t, r.method, r.path, r.body, a.auth), http.StatusUnauthorized, "unauthorized")
			})
		}
	}
	if after := e.poolsSnapshot(t); after != before {
		t.Errorf("unauthorized requests changed the pools:\nbefore %s\nafter  %s", before, after)
	}
	// The right token opens them.
	if res := e.do(t, "GET", "/admin/pools", "", admin); res.status != http.StatusOK {
		t.Errorf("GET /admin/pools with the token: %d %s", res.status, res.body)
	}
}

// An authentication scheme is case-insensitive (RFC 9110 section 11.1), as /otp/* already treats it.
func TestAdminAuthSchemeCase(t *testing.T) {
	e := newEnv(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(scheme, func(t *testing.T) {
			res := e.do(t, "GET", "/admin/pools", "", func(r *http.Request) { r.Header.Set("Authorization", scheme+" "+adminToken) })
			if res.status != http.StatusOK {
				t.Errorf("Authorization: %s <token>: %d %s, want 200", scheme, res.status, res.body)
			}
		})
	}
}

// Without a token (or without pools to manage) the admin API does not exist. Without a token its routes
// say so (admin_disabled, naming the setting), so that a client can tell the operator what to set.
func TestAdminOff(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	off := newEnvWith(t, "")
	noPools := newEnv(t)
	noPools.srv = httpapi.New(httpapi.Config{MaxBodyBytes: maxBodyBytes, AdminToken: adminToken}, noPools.svc, log)
	for name, e := range map[string]*env{"no token": off, "no pools": noPools} {
		for _, r := range append(adminRoutes, struct{ method, path, body string }{"GET", "/ADMIN/pools", ""}) {
			for _, a := range []auth{nil, admin, bearer("")} {
				t.Run(name+"/"+r.method+" "+r.path, func(t *testing.T) {
					res := e.do(t, r.method, r.path, r.body, a)
					if name == "no pools" {
						wantError(t, res, http.StatusNotFound, "not_found")
						return
					}
					wantError(t, res, http.StatusNotFound, "admin_disabled")
					if !strings.Contains(string(res.body), "http.admin_token") {
						t.Errorf("the answer does not name the setting: %s", res.body)
					}
				})
			}
		}
	}
	// Only /admin and below: a path that merely starts with the same letters is an unknown route.
	wantError(t, off.do(t, "GET", "/administrator", "", nil), http.StatusNotFound, "not_found")
}

type poolsAnswer struct {
	Pools []struct {
		Name       string                           `json:"name"`
		FromConfig bool                             `json:"from_config"`
		Cooldown   string                           `json:"cooldown"`
		Entries    []numberpool.Entry               `json:"entries"`
		Uses       map[string]uint64                `json:"entry_uses"`
		Quarantine map[string]numberpool.Quarantine `json:"quarantine"`
	} `json:"pools"`
	Apps []numberpool.AppSpace `json:"apps"`
}

func (e *env) listPools(t testing.TB) poolsAnswer {
	t.Helper()
	e.checkRegistry(t, "GET /admin/pools")
	res := e.do(t, "GET", "/admin/pools", "", admin)
	if res.status != http.StatusOK {
		t.Fatalf("GET /admin/pools: %d %s", res.status, res.body)
	}
	var a poolsAnswer
	if err := json.Unmarshal(res.body, &a); err != nil {
		t.Fatalf("GET /admin/pools: %v: %s", err, res.body)
	}
	return a
}

func TestAdminListPools(t *testing.T) {
	e := newEnv(t)
	e.send(t)
	a := e.listPools(t)
	var names []string
	for _, p := range a.Pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "demo,other,short" {
		t.Fatalf("pools = %v, want demo, other, short", names)
	}
	demoPool := a.Pools[0]
	if !demoPool.FromConfig || demoPool.Cooldown != "24h0m0s" || len(demoPool.Entries) != 1 ||
		demoPool.Entries[0].ID != "e1" || demoPool.Entries[0].Numbers[0] != "+44207946XXXX" || !demoPool.Entries[0].Enabled {
		t.Errorf("pool demo = %+v", demoPool)
	}
	if demoPool.Uses["e1"] != 1 {
		t.Errorf("entry_uses of demo = %v, want e1: 1 after one send", demoPool.Uses)
	}
	if len(a.Apps) != 3 {
		t.Fatalf("apps = %+v, want demo, other, short", a.Apps)
	}
	for _, app := range a.Apps {
		if app.CodeLength != 4 || app.Spaces["*"].Codes != 10000 || len(app.Spaces) != 1 {
			t.Errorf("app %s: %+v, want 10000 codes at 4 digits for any destination", app.App, app)
		}
	}
	if a.Apps[0].App != "demo" || a.Apps[0].Spaces["*"].Bits != 13.3 || strings.Join(a.Apps[0].Pools, ",") != "demo,live" {
		t.Errorf("app demo = %+v, want 13.3 bits from pools demo, live", a.Apps[0])
	}
}

// An entry for GB made through the admin API serves British recipients ("UK" is refused: TestAdminBadBodies).
func TestAdminPoolGBEntry(t *testing.T) {
	e := newEnv(t)
	if res := e.do(t, "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+44113496XXXX"],"countries":["GB"]}]}`, admin); res.status != http.StatusCreated {
		t.Fatalf("create a GB pool: %d %s", res.status, res.body)
	}
	for _, recipient := range []string{"+447400123456", "+442079460000"} {
		if res := e.do(t, "POST", "/otp/send", sendBody("demo", recipient), demo); res.status != http.StatusAccepted {
			t.Fatalf("send to %s: %d %s", recipient, res.status, res.body)
		}
		if cli := e.dial.Last(t).CLI; !strings.HasPrefix(cli, "+44113496") {
			t.Errorf("send to %s: CLI %s, want the GB entry's +44113496…", recipient, cli)
		}
	}
}

// The life of a pool made through the admin API, step by step on one engine.
func TestAdminPoolLifecycle(t *testing.T) {
	e := newEnv(t)
	n := 0
	// sendFR sends to a French recipient and returns the CLI the dialer got.
	sendFR := func(t *testing.T) string {
		t.Helper()
		e.checkRegistry(t, "send")
		n++
		res := e.do(t, "POST", "/otp/send", sendBody("demo", fmt.Sprintf("+336123456%02d", n)), demo)
		if res.status != http.StatusAccepted {
			t.Fatalf("send: %d %s", res.status, res.body)
		}
		return e.dial.Last(t).CLI
	}
	steps := []struct {
		name, method, path, body string
		status                   int
		code                     string                          // error code; "" for success
		check                    func(t *testing.T, body []byte) // for success
	}{
		{name: "create", method: "POST", path: "/admin/pools",
			body:   `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"trunks":["carrier-fr"],"enabled":true}],"cooldown":"1h"}`,
			status: 201, check: func(t *testing.T, body []byte) {
				var p numberpool.Pool
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatal(err)
				}
				if p.Name != "live" || p.FromConfig || p.Cooldown != numberpool.Duration(time.Hour) || len(p.Entries) != 1 ||
					p.Entries[0].ID != "e1" || p.Entries[0].Weight != 1 || !p.Entries[0].Enabled || p.QuarantineAfter != numberpool.DefaultQuarantineAfter {
					t.Errorf("created %s", body)
				}
				if cli := sendFR(t); !strings.HasPrefix(cli, "+33198765") || e.dial.Last(t).Trunks[0] != "carrier-fr" {
					t.Errorf("FR send after create: CLI %s on %v, want +33198765… on carrier-fr", cli, e.dial.Last(t).Trunks)
				}
			}},
		{name: "create again", method: "POST", path: "/admin/pools",
			body:   `{"name":"live","entries":[{"numbers":["+33198766XXXX"],"enabled":true}]}`,
			status: 409, code: "conflict"},
		{name: "add entry", method: "POST", path: "/admin/pools/live/entries",
			body:   `{"numbers":["+4930123XXXXX"],"countries":["DE"],"weight":2}`,
			status: 201, check: func(t *testing.T, body []byte) {
				var got numberpool.Entry
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if got.ID != "e2" || got.Weight != 2 || !got.Enabled || got.Countries[0] != "DE" {
					t.Errorf("added %s, want e2, enabled, weight 2", body)
				}
			}},
		{name: "list entries", method: "GET", path: "/admin/pools/live/entries", status: 200, check: func(t *testing.T, body []byte) {
			var got struct{ Entries []numberpool.Entry }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Entries) != 2 || got.Entries[0].ID != "e1" || got.Entries[1].ID != "e2" || got.Entries[1].Numbers[0] != "+4930123XXXXX" {
				t.Errorf("entries %s, want e1 and e2", body)
			}
		}},
		{name: "entry that would leave FR below the minimum", method: "PUT", path: "/admin/pools/live",
			body:   `{"entries":[{"numbers":["+33198765000","+33198765001"],"countries":["FR"],"enabled":true}]}`,
			status: 409, code: "conflict"},
		{name: "remove entry", method: "DELETE", path: "/admin/pools/live/entries/e2", status: 204, check: func(t *testing.T, _ []byte) {
			if p := e.listPools(t).Pools; len(p) != 4 || p[1].Name != "live" || len(p[1].Entries) != 1 {
				t.Errorf("pools after removing e2: %+v", p)
			}
		}},
		{name: "remove it again", method: "DELETE", path: "/admin/pools/live/entries/e2", status: 404, code: "not_found"},
		{name: "entries of no pool", method: "GET", path: "/admin/pools/nope/entries", status: 404, code: "not_found"},
		{name: "add to no pool", method: "POST", path: "/admin/pools/nope/entries", body: `{"numbers":["+4930123XXXXX"]}`, status: 404, code: "not_found"},
		{name: "add to a config pool", method: "POST", path: "/admin/pools/demo/entries", body: `{"numbers":["+44207947XXXX"]}`, status: 201},
		{name: "remove what was added to a config pool", method: "DELETE", path: "/admin/pools/demo/entries/e2", status: 204},
		{name: "replace a config pool", method: "PUT", path: "/admin/pools/demo", body: `{"entries":[{"numbers":["+44207947XXXX"],"enabled":true}]}`, status: 409, code: "conflict"},
		{name: "delete a config pool", method: "DELETE", path: "/admin/pools/demo", status: 409, code: "conflict"},
		{name: "remove a config pool's entry", method: "DELETE", path: "/admin/pools/demo/entries/e1", status: 409, code: "conflict"},
		{name: "replace", method: "PUT", path: "/admin/pools/live",
			body:   `{"name":"live","entries":[{"numbers":["+33198766XXXX"],"countries":["FR"],"enabled":true}]}`,
			status: 200, check: func(t *testing.T, body []byte) {
				if cli := sendFR(t); !strings.HasPrefix(cli, "+33198766") {
					t.Errorf("FR send after replace: CLI %s, want +33198766…", cli)
				}
			}},
		{name: "replace under another name", method: "PUT", path: "/admin/pools/live",
			body: `{"name":"dead","entries":[{"numbers":["+33198766XXXX"],"enabled":true}]}`, status: 400, code: "invalid_request"},
		{name: "quarantine a CLI", method: "POST", path: "/admin/pools/live/quarantine",
			body: `{"cli":"+331987661234","for":"2h","reason":"carrier complaint"}`, status: 200, check: func(t *testing.T, body []byte) {
				var q numberpool.Quarantine
				if err := json.Unmarshal(body, &q); err != nil {
					t.Fatal(err)
				}
				if !q.Manual || q.Reason != "carrier complaint" || !q.Until.Equal(e.clock.Now().Add(2*time.Hour)) {
					t.Errorf("quarantine %s, want manual, for 2h, with the reason", body)
				}
				if got, ok := e.listPools(t).Pools[1].Quarantine["cli:+33198766****"]; !ok || got.Reason != "carrier complaint" {
					t.Errorf("GET /admin/pools does not show the quarantine: %+v", e.listPools(t).Pools[1].Quarantine)
				}
			}},
		{name: "quarantine the entry", method: "POST", path: "/admin/pools/live/quarantine", body: `{"entry":"e1"}`, status: 200, check: func(t *testing.T, _ []byte) {
			if cli := sendFR(t); !strings.HasPrefix(cli, "+44207946") {
				t.Errorf("FR send with live/e1 quarantined: CLI %s, want the general +44207946…", cli)
			}
		}},
		{name: "quarantine a CLI of another pool", method: "POST", path: "/admin/pools/live/quarantine", body: `{"cli":"+442079461234"}`, status: 404, code: "not_found"},
		{name: "release the entry", method: "POST", path: "/admin/pools/live/release", body: `{"entry":"e1"}`, status: 204, check: func(t *testing.T, _ []byte) {
			if cli := sendFR(t); !strings.HasPrefix(cli, "+33198766") {
				t.Errorf("FR send after release: CLI %s, want +33198766…", cli)
			}
		}},
		{name: "release the CLI", method: "POST", path: "/admin/pools/live/release", body: `{"cli":"+331987661234"}`, status: 204, check: func(t *testing.T, _ []byte) {
			if q := e.listPools(t).Pools[1].Quarantine; len(q) != 0 {
				t.Errorf("quarantine after the releases: %+v", q)
			}
		}},
		{name: "release it again", method: "POST", path: "/admin/pools/live/release", body: `{"cli":"+331987661234"}`, status: 404, code: "not_found"},
		{name: "delete", method: "DELETE", path: "/admin/pools/live", status: 204, check: func(t *testing.T, _ []byte) {
			if cli := sendFR(t); !strings.HasPrefix(cli, "+44207946") {
				t.Errorf("FR send after delete: CLI %s, want the general +44207946…", cli)
			}
		}},
		{name: "delete again", method: "DELETE", path: "/admin/pools/live", status: 404, code: "not_found"},
		{name: "entries of the deleted pool", method: "GET", path: "/admin/pools/live/entries", status: 404, code: "not_found"},
	}
	for _, s := range steps {
		res := e.do(t, s.method, s.path, s.body, admin)
		e.checkRegistry(t, s.name)
		if s.code != "" {
			t.Run(s.name, func(t *testing.T) { wantError(t, res, s.status, s.code) })
			continue
		}
		if res.status != s.status {
			t.Fatalf("%s: %s %s: %d %s, want %d", s.name, s.method, s.path, res.status, res.body, s.status)
		}
		if s.check != nil {
			t.Run(s.name, func(t *testing.T) { s.check(t, res.body) })
		}
	}
}

// Entries are enabled unless the body says otherwise, whichever route makes them (docs/pools.md: enabled
// defaults to true).
func TestAdminEntriesEnabledByDefault(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"create", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"]}]}`, 201},
		{"replace", "PUT", "/admin/pools/live", `{"entries":[{"numbers":["+33198765XXXX"],"countries":["FR"]}]}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.do(t, tt.method, tt.path, tt.body, admin)
			if res.status != tt.status {
				t.Fatalf("%s %s: %d %s", tt.method, tt.path, res.status, res.body)
			}
			var p numberpool.Pool
			if err := json.Unmarshal(res.body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Entries) != 1 || !p.Entries[0].Enabled {
				t.Errorf("entry made without \"enabled\" is disabled: %s", res.body)
			}
		})
	}
	t.Run("disabled when asked", func(t *testing.T) {
		e := newEnv(t)
		res := e.do(t, "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"enabled":false}]}`, admin)
		var p numberpool.Pool
		if err := json.Unmarshal(res.body, &p); err != nil || res.status != 201 || p.Entries[0].Enabled {
			t.Errorf("POST with enabled false: %d %s", res.status, res.body)
		}
		res = e.do(t, "POST", "/admin/pools/live/entries", `{"numbers":["+33198766XXXX"],"enabled":false}`, admin)
		var got numberpool.Entry
		if err := json.Unmarshal(res.body, &got); err != nil || res.status != 201 || got.Enabled {
			t.Errorf("POST entry with enabled false: %d %s", res.status, res.body)
		}
	})
}

func TestAdminBadBodies(t *testing.T) {
	const fr = `{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}`
	tests := []struct {
		name, method, path, body string
		wantIn                   string // what the message must name
	}{
		{"pool: not JSON", "POST", "/admin/pools", `{"name":`, "JSON"},
		{"pool: not an object", "POST", "/admin/pools", `["live"]`, "JSON object"},
		{"pool: empty body", "POST", "/admin/pools", ``, "JSON"},
		{"pool: no name", "POST", "/admin/pools", `{"entries":[` + fr + `]}`, "name"},
		{"pool: no entries", "POST", "/admin/pools", `{"name":"live"}`, "entries"},
		{"pool: empty entries", "POST", "/admin/pools", `{"name":"live","entries":[]}`, "entries"},
		{"pool: unknown field", "POST", "/admin/pools", `{"name":"live","entries":[` + fr + `],"colour":"red"}`, "colour"},
		{"pool: trailing data", "POST", "/admin/pools", `{"name":"live","entries":[` + fr + `]} {}`, "JSON object"},
		{"pool: bad name", "POST", "/admin/pools", `{"name":"a b","entries":[` + fr + `]}`, "name"},
		{"pool: bad numbers", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33abc"]}]}`, "numbers"},
		{"pool: bad range", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198769999-+33198760000"]}]}`, "numbers"},
		{"pool: numbers not a list", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":"+33198765XXXX"}]}`, "numbers"},
		{"pool: bad country", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["France"]}]}`, "countries"},
		{"pool: UK", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+44113496XXXX"],"countries":["UK"]}]}`, "countries[0]: want an ISO 3166-1 alpha-2 country code such as GB or US, got \"UK\" (UK is not the code of any country's numbers; did you mean GB?)"},
		{"pool: ZZ", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR","ZZ"]}]}`, `countries[1]: want an ISO 3166-1 alpha-2 country code such as GB or US, got "ZZ"`},
		{"entry: UK", "POST", "/admin/pools/demo/entries", `{"numbers":["+44113496XXXX"],"countries":["UK"]}`, "did you mean GB"},
		{"pool: bad weight", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"weight":5000}]}`, "weight"},
		{"pool: bad trunk", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"trunks":["a b"]}]}`, "trunks"},
		{"pool: bad cooldown", "POST", "/admin/pools", `{"name":"live","entries":[` + fr + `],"cooldown":"soon"}`, "duration"},
		{"pool: cooldown a number", "POST", "/admin/pools", `{"name":"live","entries":[` + fr + `],"cooldown":3600}`, "duration"},
		{"pool: bad quarantine code", "POST", "/admin/pools", `{"name":"live","entries":[` + fr + `],"quarantine_codes":[200]}`, "quarantine_codes"},
		{"pool: enabled a string", "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"enabled":"yes"}]}`, "enabled"},
		{"replace: no entries", "PUT", "/admin/pools/live", `{"name":"live"}`, "entries"},
		{"entry: no numbers", "POST", "/admin/pools/demo/entries", `{}`, "numbers"},
		{"entry: null numbers", "POST", "/admin/pools/demo/entries", `{"numbers":null}`, "numbers"},
		{"entry: unknown field", "POST", "/admin/pools/demo/entries", `{"numbers":["+44207947XXXX"],"prefix":"+44"}`, "prefix"},
		{"quarantine: neither cli nor entry", "POST", "/admin/pools/demo/quarantine", `{}`, "cli or entry"},
		{"quarantine: both", "POST", "/admin/pools/demo/quarantine", `{"cli":"+442079461234","entry":"e1"}`, "cli or entry"},
		{"quarantine: not a number", "POST", "/admin/pools/demo/quarantine", `{"cli":"abc"}`, "abc"},
		{"quarantine: bad for", "POST", "/admin/pools/demo/quarantine", `{"cli":"+442079461234","for":"2 hours"}`, "duration"},
		{"quarantine: not JSON", "POST", "/admin/pools/demo/quarantine", `cli=+442079461234`, "JSON"},
		{"release: neither", "POST", "/admin/pools/demo/release", `{}`, "cli or entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.poolsSnapshot(t)
			inner := wantError(t, e.do(t, tt.method, tt.path, tt.body, admin), http.StatusBadRequest, "invalid_request")
			var msg string
			if err := json.Unmarshal(inner["message"], &msg); err != nil || !strings.Contains(msg, tt.wantIn) {
				t.Errorf("message %s does not name %q", inner["message"], tt.wantIn)
			}
			if after := e.poolsSnapshot(t); after != before {
				t.Errorf("a refused request changed the pools:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// poolNames returns the registry's pool names. A registry whose map keys changed under it panics in Pools;
// that is returned as an error here rather than crashing the test.
func (e *env) poolNames() (names []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Pools panicked: %v", r)
		}
	}()
	reports, _ := e.pools.Pools()
	for _, r := range reports {
		names = append(names, r.Name)
	}
	return names, nil
}

// checkRegistry sends requests of no consequence, then looks at the registry from the test: a pool name
// that came from a request buffer fasthttp reuses shows as a failure here rather than as a crash in a later
// handler (buffers are pooled, hence a few requests).
func (e *env) checkRegistry(t testing.TB, when string) {
	t.Helper()
	for range 4 {
		e.do(t, "GET", "/healthz", "", nil)
	}
	names, err := e.poolNames()
	if err != nil || !slices.IsSorted(names) ||
		slices.ContainsFunc(names, func(n string) bool { return !slices.Contains([]string{"demo", "live", "other", "short"}, n) }) {
		t.Fatalf("before %s: the registry's pools are %q, %v (see TestAdminKeepsNoRequestMemory)", when, names, err)
	}
}

// fiber's c.Params point into the request's buffer, which the next request reuses: a pool name the registry
// keeps must be a copy, or the pool's name (its map key) turns into whatever the next request's path holds.
func TestAdminKeepsNoRequestMemory(t *testing.T) {
	e := newEnv(t)
	if res := e.do(t, "POST", "/admin/pools", `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}]}`, admin); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	// want does one request that must succeed; a failure means the registry lost the pool "live".
	want := func(method, path, body string, status int) bool {
		t.Helper()
		if res := e.do(t, method, path, body, admin); res.status != status {
			names, err := e.poolNames()
			t.Errorf("%s %s: %d %s, want %d (pools now %q, %v)", method, path, res.status, res.body, status, names, err)
			return false
		}
		return true
	}
	for i := range 30 {
		// Between changes, requests that only look a pool up, so a corrupt registry cannot crash the server.
		ok := want("POST", "/admin/pools/live/entries", fmt.Sprintf(`{"numbers":["+4930%03dXXXXX"],"countries":["DE"]}`, i), 201) &&
			want("POST", "/admin/pools/zzzz/release", `{"entry":"e1"}`, 404) &&
			want("DELETE", "/admin/pools/live/entries/e2", "", 204) &&
			want("POST", "/admin/pools/yyyy/release", `{"entry":"e1"}`, 404) &&
			want("PUT", "/admin/pools/live", `{"entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}]}`, 200) &&
			want("POST", "/admin/pools/xxxx/release", `{"entry":"e1"}`, 404)
		if !ok {
			break
		}
	}
	if names, err := e.poolNames(); err != nil || strings.Join(names, ",") != "demo,live,other,short" {
		t.Fatalf("pools = %q, %v; want demo, live, other, short", names, err)
	}
	if res := e.do(t, "GET", "/admin/pools/live/entries", "", admin); res.status != 200 {
		t.Errorf("GET /admin/pools/live/entries: %d %s", res.status, res.body)
	}
}

// GET /admin/store/backup streams the store's copy over a real socket; a copy that fails midway ends the
// connection, so the client sees a body cut short, never one that ends normally.
func TestAdminBackup(t *testing.T) {
	e := newEnv(t)
	e.send(t)
	res := e.doHTTP(t, e.listen(t), "GET", "/admin/store/backup", "", admin)
	var want bytes.Buffer
	if _, err := e.db.Backup(&want); err != nil {
		t.Fatal(err)
	}
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/octet-stream" || !bytes.Equal(res.body, want.Bytes()) {
		t.Fatalf("backup: %d %s, %d bytes; want %d bytes as Backup writes them", res.status, res.header.Get("Content-Type"), len(res.body), want.Len())
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, res.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckBackup(path); err != nil {
		t.Fatalf("the copy: %v", err)
	}
	if err := os.WriteFile(path, res.body[:len(res.body)-4096], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckBackup(path); err == nil {
		t.Fatal("CheckBackup took a copy cut short")
	}

	failing := newEnv(t)
	failing.srv = httpapi.New(httpapi.Config{MaxBodyBytes: maxBodyBytes, Apps: failing.apps, AdminToken: adminToken, Pools: failing.pools,
		Backup: func() (httpapi.Snapshot, error) { return failingSnapshot{}, nil }}, failing.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	req, err := http.NewRequest("GET", failing.listen(t)+"/admin/store/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin(req)
	// The connection may end before the status line got out, or within the body; never at a normal end.
	ans, err := http.DefaultClient.Do(req)
	if err == nil {
		defer ans.Body.Close()
		if n, err := io.Copy(io.Discard, ans.Body); err == nil {
			t.Fatalf("a copy that failed after %d bytes read as a whole body", n)
		}
	}
}

// failingSnapshot is a copy whose disk fails after 64 KiB of 1 MiB.
type failingSnapshot struct{}

func (failingSnapshot) Size() int64  { return 1 << 20 }
func (failingSnapshot) Close() error { return nil }
func (failingSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(bytes.Repeat([]byte{1}, 64<<10))
	if err != nil {
		return int64(n), err
	}
	return int64(n), errors.New("read error on the disk")
}

// An app's template that does not print the code, or any other bad channel setting, is refused through the
// admin API with 400 invalid_request naming the app, the channel and the locale; nothing is stored.
func TestAdminAppTemplates(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ name, method, path, body, wantIn string }{
		{"create: no code", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"channels":["flashcall","sms"],` +
			`"templates":{"sms":{"en":"{{.Code}} is your code","fr":"Votre code {{.App}} expire dans {{.Minutes}} minutes"}}}`,
			`templates.sms.fr: app \"shop\", channel sms, locale fr: does not print {{.Code}}`},
		{"create: other field", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"templates":{"sms":{"de":"{{.Code}} {{.Phone}}"}}}`,
			`templates.sms.de: app \"shop\", channel sms, locale de: not a usable template: .Phone is not a field`},
		{"create: inbound", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"channels":["inbound"]}`,
			`inbound_pool: channel inbound needs the pool of numbers the users call`},
		{"create: inbound pool missing", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"channels":["inbound"],"inbound_pool":"nope"}`,
			`inbound_pool: no pool \"nope\"`},
		{"create: workflow", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"workflow":[{"channel":"sms"}]}`,
			`workflow[0].channel: \"sms\" is not one of the app's channels (flashcall)`},
		{"create: locale", "POST", "/admin/apps", `{"id":"shop","pools":["demo"],"locale":"zz"}`, `locale: \"zz\": want a BCP 47 language tag`},
		{"update: no code", "PATCH", "/admin/apps/kept", `{"templates":{"sms":{"pt-BR":"Seu código chegou"}}}`,
			`templates.sms.pt-BR: app \"kept\", channel sms, locale pt-BR: does not print {{.Code}}`},
		{"update: code length", "PATCH", "/admin/apps/kept", `{"code_lengths":{"sms":12}}`, `code_lengths.sms: want 4 to 10, got 12`},
	}
	if res := e.do(t, "POST", "/admin/apps", `{"id":"kept","pools":["demo"],"templates":{"sms":{"pt-BR":"{{.Code}} é o seu código"}}}`, admin); res.status != 201 {
		t.Fatalf("create kept: %d %s", res.status, res.body)
	}
	before := e.do(t, "GET", "/admin/apps", "", admin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.path, tt.body, admin)
			wantError(t, res, http.StatusBadRequest, "invalid_request")
			if !bytes.Contains(res.body, []byte(tt.wantIn)) {
				t.Errorf("%s does not name %s", res.body, tt.wantIn)
			}
			if after := e.do(t, "GET", "/admin/apps", "", admin); !bytes.Equal(after.body, before.body) {
				t.Errorf("a refused request changed the apps:\nbefore %s\nafter  %s", before.body, after.body)
			}
		})
	}
}
