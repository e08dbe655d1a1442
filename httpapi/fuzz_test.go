package httpapi_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/internal/storetest"
	"flashotp/numberpool"
	"flashotp/otp"
)

// The fuzz targets of request decoding, one per JSON body the API reads: FuzzSendBody, FuzzVerifyBody,
// FuzzResendBody and FuzzAppBody (POST and PATCH /admin/apps), and FuzzTOTPEnrollBody and FuzzTOTPVerifyBody
// (fuzz_totp_test.go). Their seeds are in testdata/fuzz/<target>.
// checkBody holds every answer to what must hold whatever the body; each target adds what its route
// promises for a body it takes.

// specErrors is SPEC §4's error table, with docs/api.md's conflict for the admin routes: the codes each 4xx
// status may carry.
var specErrors = map[int][]string{
	http.StatusBadRequest:            {"invalid_request", "invalid_recipient"},
	http.StatusUnauthorized:          {"unauthorized"},
	http.StatusForbidden:             {"destination_blocked", "forbidden"},
	http.StatusNotFound:              {"not_found"},
	http.StatusConflict:              {"already_verified", "conflict"},
	http.StatusRequestEntityTooLarge: {"request_too_large"},
	http.StatusGone:                  {"max_attempts_reached", "expired", "undeliverable"},
	http.StatusUnprocessableEntity:   {"invalid_code"},
	http.StatusTooManyRequests:       {"rate_limited", "resend_too_soon"},
}

// attemptResults are the errors of a verify that was counted: every attempt on a verification is recorded
// (SPEC §4's verify table), so these answers change the store.
var attemptResults = []string{"invalid_code", "max_attempts_reached", "expired", "undeliverable", "already_verified"}

// checkBody sends body to method path with credentials a and checks what holds whatever the body: no 5xx
// (a panic fails the fuzz run by itself); an error answer has SPEC §4's shape and a code its status may
// carry, places no call, and changes nothing in the store or the pools, unless its code is one of counted.
// It returns the answer and whether the store changed.
func (e *env) checkBody(t *testing.T, method, path string, a auth, body []byte, counted ...string) (response, bool) {
	t.Helper()
	if len(body) > maxBodyBytes {
		t.Skip("over max_body_bytes a body is not decoded: TestBodyLimit covers it")
	}
	before, pools, offered := storetest.Snapshot(t, e.db), e.poolsSnapshot(t), e.dial.Offered()
	res := e.do(t, method, path, string(body), a)
	after := storetest.Snapshot(t, e.db)
	if res.status >= 500 {
		t.Fatalf("%s %s: status %d for body %q: %s", method, path, res.status, body, res.body)
	}
	if res.status < 400 {
		return res, !maps.Equal(before, after)
	}
	_, code := errorShape(t, res)
	if !slices.Contains(specErrors[res.status], code) {
		t.Fatalf("%s %s: %d %s for body %q: SPEC §4 gives %d only %q", method, path, res.status, res.body, body, res.status, specErrors[res.status])
	}
	if e.dial.Offered() != offered {
		t.Fatalf("%s %s: %s but the dialer was offered a call, body %q", method, path, res.body, body)
	}
	if slices.Contains(counted, code) {
		return res, !maps.Equal(before, after)
	}
	for _, name := range slices.Sorted(maps.Keys(before)) {
		if before[name] != after[name] {
			t.Fatalf("%s %s: %s but bucket %s changed, body %q", method, path, res.body, name, body)
		}
	}
	if p := e.poolsSnapshot(t); p != pools {
		t.Fatalf("%s %s: %s but the pools changed, body %q:\nbefore %s\nafter  %s", method, path, res.body, body, pools, p)
	}
	return res, false
}

// FuzzSendBody: a 202 is for the authenticated app, to a recipient NormalizeRecipient keeps as it is, and
// the dialer got that one call.
func FuzzSendBody(f *testing.F) {
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		// Every send goes to a handful of recipients: past their cooldown, the pool has numbers for them again.
		e.clock.Advance(numberpool.DefaultCooldown + time.Second)
		before := e.dial.Offered()
		res, _ := e.checkBody(t, "POST", "/otp/send", demo, body)
		if res.status >= 400 {
			return
		}
		var v struct {
			Recipient string `json:"recipient"`
			AppID     string `json:"appid"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil || res.status != http.StatusAccepted {
			t.Fatalf("%d with body %s: %v", res.status, res.body, err)
		}
		if !e164.MatchString(v.Recipient) || v.AppID != "demo" {
			t.Fatalf("202 for body %q with recipient %q appid %q", body, v.Recipient, v.AppID)
		}
		if got, _, err := otp.NormalizeRecipient(v.Recipient); err != nil || got != v.Recipient {
			t.Fatalf("202 with recipient %q that NormalizeRecipient gives %q, %v", v.Recipient, got, err)
		}
		if e.dial.Offered() != before+1 || e.dial.Last(t).To != v.Recipient {
			t.Fatalf("202 for %q but the dialer got %+v", v.Recipient, e.dial.Last(t))
		}
	})
}

// pending is the verification a verify or resend body may name: "{id}", "{code}" and "{cli}" in a body
// become its ID, its code and its call's whole CLI, so that bodies get past the lookup to the verify or
// resend itself. Its call was missed and its resend cooldown is over. A body that changed the store (an
// attempt, a resend) used it up: the next body gets a new one.
type pending struct {
	id, cli string
	used    bool
}

// ready makes a new verification if there is none or it was used.
func (p *pending) ready(t *testing.T, e *env) {
	t.Helper()
	if p.id != "" && !p.used {
		return
	}
	// A day on, the verifications before have expired and the pool has numbers for the recipient again.
	e.clock.Advance(numberpool.DefaultCooldown + time.Second)
	p.id, p.cli = e.send(t)
	now := e.clock.Now()
	e.svc.CallEnded(p.id, "phone", p.cli, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true,
		StartedAt: now, RingingAt: now.Add(40 * time.Millisecond), EndedAt: now.Add(3 * time.Second)})
	e.clock.Advance(31 * time.Second) // past the resend cooldown
	p.used = false
}

// fill puts the verification into body's placeholders.
func (p *pending) fill(body []byte) []byte {
	return []byte(strings.NewReplacer("{id}", p.id, "{code}", codeOf(p.cli), "{cli}", p.cli).Replace(string(body)))
}

// FuzzVerifyBody: a 200 approves the pending verification, the only one a body can reach.
func FuzzVerifyBody(f *testing.F) {
	e := newEnv(f)
	var p pending
	f.Fuzz(func(t *testing.T, body []byte) {
		p.ready(t, e)
		res, changed := e.checkBody(t, "POST", "/otp/verify", demo, p.fill(body), attemptResults...)
		p.used = changed
		if res.status >= 400 {
			return
		}
		var v struct {
			ID     string `json:"verification_id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil || res.status != http.StatusOK || v.ID != p.id || v.Status != "approved" {
			t.Fatalf("verify of %s answered %d %s for body %q (%v)", p.id, res.status, res.body, body, err)
		}
	})
}

// FuzzResendBody: a 202 is the pending verification's first resend, and the dialer got its call.
func FuzzResendBody(f *testing.F) {
	e := newEnv(f)
	var p pending
	f.Fuzz(func(t *testing.T, body []byte) {
		p.ready(t, e)
		before := e.dial.Offered()
		res, changed := e.checkBody(t, "POST", "/otp/resend", demo, p.fill(body))
		p.used = changed
		if res.status >= 400 {
			return
		}
		var v struct {
			ID      string `json:"verification_id"`
			Resends int    `json:"resends"`
		}
		if err := json.Unmarshal(res.body, &v); err != nil || res.status != http.StatusAccepted || v.ID != p.id || v.Resends != 1 {
			t.Fatalf("resend of %s answered %d %s for body %q (%v)", p.id, res.status, res.body, body, err)
		}
		if e.dial.Offered() != before+1 || e.dial.Last(t).To != recipient {
			t.Fatalf("202 for a resend but the dialer got %+v", e.dial.Last(t))
		}
	})
}

// FuzzAppBody sends each body as an app's settings to both routes that read them: POST /admin/apps, which
// makes an app, and PATCH /admin/apps/fuzz, which changes one. What a body made or changed is undone, so
// every body finds the same apps.
func FuzzAppBody(f *testing.F) {
	e := newEnv(f)
	const fuzzApp = `{"id":"fuzz","pools":["demo"]}`
	if res := e.do(f, "POST", "/admin/apps", fuzzApp, admin); res.status != http.StatusCreated {
		f.Fatalf("create the app fuzz: %d %s", res.status, res.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, _ := e.checkBody(t, "POST", "/admin/apps", admin, body)
		if res.status < 400 {
			var c struct {
				App struct{ ID string } `json:"app"`
			}
			if err := json.Unmarshal(res.body, &c); err != nil || res.status != http.StatusCreated {
				t.Fatalf("create answered %d %s for body %q (%v)", res.status, res.body, body, err)
			}
			if del := e.do(t, "DELETE", "/admin/apps/"+url.PathEscape(c.App.ID), "", admin); del.status != http.StatusNoContent {
				t.Fatalf("delete app %q made from body %q: %d %s", c.App.ID, body, del.status, del.body)
			}
		}
		res, _ = e.checkBody(t, "PATCH", "/admin/apps/fuzz", admin, body)
		if res.status < 400 {
			var a struct{ ID string }
			if err := json.Unmarshal(res.body, &a); err != nil || res.status != http.StatusOK || a.ID != "fuzz" {
				t.Fatalf("update answered %d %s for body %q (%v)", res.status, res.body, body, err)
			}
			del, made := e.do(t, "DELETE", "/admin/apps/fuzz", "", admin), e.do(t, "POST", "/admin/apps", fuzzApp, admin)
			if del.status != http.StatusNoContent || made.status != http.StatusCreated {
				t.Fatalf("make the app fuzz again: %d %s, %d %s", del.status, del.body, made.status, made.body)
			}
		}
	})
}

// FuzzPoolBody sends each body to every admin pool route that reads one: POST /admin/pools (create), PUT
// /admin/pools/live (replace), POST /admin/pools/live/entries (add an entry), then
// POST /admin/pools/live/quarantine and .../release. The pool live is one of demo's, so a change to it is
// checked against demo's code space. A 2xx answer must be what the registry now holds. What a body made or
// changed is undone, and every body must leave the pools and the store as it found them: quarantine and
// release take the same body, so a body that quarantined something releases it, and only such a body may.
func FuzzPoolBody(f *testing.F) {
	e := newEnv(f)
	const live = `{"name":"live","entries":[{"numbers":["+33198765XXXX"],"countries":["FR"],"enabled":true}]}`
	if res := e.do(f, "POST", "/admin/pools", live, admin); res.status != http.StatusCreated {
		f.Fatalf("create the pool live: %d %s", res.status, res.body)
	}
	pools, stored := e.poolsSnapshot(f), storetest.Snapshot(f, e.db)
	// saved checks that a success answered status with what the registry holds now.
	saved := func(t *testing.T, route string, res response, status int, held any, body []byte) {
		t.Helper()
		want, err := json.Marshal(held)
		if err != nil || res.status != status || !bytes.Equal(res.body, want) {
			t.Fatalf("%s answered %d %s for body %q; want %d %s (%v)", route, res.status, res.body, body, status, want, err)
		}
	}
	// undo sends a request that puts back what a body changed.
	undo := func(t *testing.T, method, path, reqBody string, status int, body []byte) {
		t.Helper()
		if res := e.do(t, method, path, reqBody, admin); res.status != status {
			t.Fatalf("undo body %q: %s %s: %d %s, want %d", body, method, path, res.status, res.body, status)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, _ := e.checkBody(t, "POST", "/admin/pools", admin, body)
		if res.status < 400 {
			var made struct{ Name string }
			if err := json.Unmarshal(res.body, &made); err != nil {
				t.Fatalf("create answered %d %s for body %q: %v", res.status, res.body, body, err)
			}
			p, ok := e.pools.Pool(made.Name)
			if !ok || p.FromConfig {
				t.Fatalf("create answered %s for body %q, but the registry has %+v (%v)", res.body, body, p, ok)
			}
			saved(t, "create", res, http.StatusCreated, p, body)
			undo(t, "DELETE", "/admin/pools/"+url.PathEscape(made.Name), "", http.StatusNoContent, body)
		}

		res, _ = e.checkBody(t, "PUT", "/admin/pools/live", admin, body)
		if res.status < 400 {
			p, _ := e.pools.Pool("live")
			saved(t, "replace", res, http.StatusOK, p, body)
			undo(t, "PUT", "/admin/pools/live", live, http.StatusOK, body)
		}

		res, _ = e.checkBody(t, "POST", "/admin/pools/live/entries", admin, body)
		if res.status < 400 {
			p, _ := e.pools.Pool("live")
			added := p.Entries[len(p.Entries)-1]
			if len(p.Entries) != 2 || added.ID == "" || added.FromConfig {
				t.Fatalf("add entry answered %s for body %q, but live has %+v", res.body, body, p.Entries)
			}
			saved(t, "add entry", res, http.StatusCreated, added, body)
			undo(t, "DELETE", "/admin/pools/live/entries/"+url.PathEscape(added.ID), "", http.StatusNoContent, body)
		}

		quarantined, _ := e.checkBody(t, "POST", "/admin/pools/live/quarantine", admin, body)
		if quarantined.status < 400 {
			var q numberpool.Quarantine
			err := json.Unmarshal(quarantined.body, &q)
			if err != nil || quarantined.status != http.StatusOK || !q.Manual || q.Pool != "live" || q.Entry != "e1" || q.Reason == "" ||
				!q.Since.Equal(e.clock.Now()) || !q.Until.After(q.Since) || (q.CLI != "" && !strings.HasSuffix(q.CLI, "****")) {
				t.Fatalf("quarantine answered %d %s for body %q (%v)", quarantined.status, quarantined.body, body, err)
			}
		}
		released, _ := e.checkBody(t, "POST", "/admin/pools/live/release", admin, body)
		if quarantined.status < 400 && released.status != http.StatusNoContent || quarantined.status >= 400 && released.status < 400 {
			t.Fatalf("body %q: quarantine answered %d %s, then release %d %s", body, quarantined.status, quarantined.body, released.status, released.body)
		}

		if p, s := e.poolsSnapshot(t), storetest.Snapshot(t, e.db); p != pools || !maps.Equal(s, stored) {
			t.Fatalf("body %q left the pools or the store changed:\nbefore %s\nafter  %s", body, pools, p)
		}
	})
}
