package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"flashotp/internal/peers"
)

// consoleToken is the admin token of the engines the browser tests run.
const consoleToken = "console-t0k"

// browser is a chromium tab on the console of an engine, and the engine's API.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the engine's http://host:port
	api  client
}

// tid selects the element with this data-testid (web/README.md lists them).
func tid(name string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + name + `"]`) }

// do runs steps within d, failing the test with what was being done.
func (b *browser) do(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.text("body"))
	}
}

// text is the text of the first element sel selects ("" if none within a second).
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return s
}

// eval evaluates JavaScript in the page, awaiting a promise, and returns its value.
func evalIn[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// openConsole serves the built binary with the admin token and the demo phone (every flash call rings and is
// missed) and opens its console in chromium at width × height.
func openConsole(t *testing.T, width, height int) *browser {
	t.Helper()
	config := strings.Replace(engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"), "http:\n", "http:\n  admin_token: "+consoleToken+"\n", 1)
	_, api := serve(t, config)
	b := &browser{t: t, ctx: peers.Browser(t, width, height), base: api.base, api: api}
	// A headless window is at least 500 px wide: a phone's width is emulated.
	b.do("open the console", 20*time.Second, chromedp.EmulateViewport(int64(width), int64(height)),
		chromedp.Navigate(b.base+"/console/"), chromedp.WaitVisible(tid("signin-form")))
	return b
}

// signInToken signs in with the admin token and waits for the Live page.
func (b *browser) signInToken() { b.t.Helper(); b.signIn(consoleToken) }

// signIn signs in with this admin token and waits for the Live page.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.do("sign in with the token", 10*time.Second,
		chromedp.Click(tid("signin-mode-token")),
		chromedp.SendKeys(tid("signin-token"), token),
		chromedp.Click(tid("signin-submit")),
		chromedp.WaitVisible(tid("operator-name")),
	)
}

// admin calls the engine's admin API with the token.
func (b *browser) admin(method, path, body string) answer {
	b.t.Helper()
	return b.api.do(method, path, body, "Authorization", "Bearer "+consoleToken)
}

// The console as a person uses it: sign in, watch a send made through the API appear on Live and in
// Verifications, open its timeline, reveal its number (audited), release a quarantined number, create an
// app and a key; then as a viewer be refused a change, lose a stale session, and see a change without the
// CSRF token and a forged cross-site POST refused.
func TestConsoleInBrowser(t *testing.T) {
	b := openConsole(t, 1280, 900)
	paint := evalIn[float64](b, `new Promise(done => new PerformanceObserver((list, obs) => {
		const e = list.getEntriesByName("first-contentful-paint")[0]; if (e) { obs.disconnect(); done(e.startTime) }
	}).observe({type: "paint", buffered: true}))`)
	t.Logf("first contentful paint of the sign-in page: %.0f ms after navigation began", paint)
	b.signInToken()
	if name := b.text(`[data-testid="operator-name"]`); name != "admin" {
		t.Errorf("signed in as %q, want admin", name)
	}

	// A send through the API shows on Live, then in Verifications.
	b.do("Live", 10*time.Second, chromedp.Click(tid("nav-live")), chromedp.WaitVisible(tid("live-sends")))
	sent := b.api.send(recipient)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	began := time.Now()
	b.do("the send on Live", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid="live-newest-row"][data-id="`+id+`"]`)))
	t.Logf("the send showed on Live %v after its 202", time.Since(began).Round(time.Millisecond))

	b.do("Verifications", 10*time.Second, chromedp.Click(tid("nav-verifications")), chromedp.WaitVisible(tid("verifications-table")))
	row := `[data-testid="verification-row"][data-id="` + id + `"]`
	b.do("the send in Verifications", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(row)))
	if masked := b.text(row + ` [data-testid="masked-number"]`); masked == "" || strings.Contains(masked, recipient[3:]) {
		t.Errorf("the list shows the number %q: want it masked", masked)
	}

	// Its timeline: the flash call's step, its events.
	b.do("the timeline", 10*time.Second, chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(tid("timeline")),
		chromedp.WaitVisible(tid("timeline-step")), chromedp.WaitVisible(tid("timeline-event")))
	if steps := b.text(`[data-testid="timeline-steps"]`); !strings.Contains(steps, "flashcall") {
		t.Errorf("timeline steps %q: want the flash call", steps)
	}
	b.do("reveal", 10*time.Second, chromedp.Click(tid("reveal")), chromedp.WaitVisible(tid("revealed-number")))
	if got := b.text(`[data-testid="revealed-number"]`); got != recipient {
		t.Errorf("revealed %q, want %s", got, recipient)
	}
	b.do("Audit", 10*time.Second, chromedp.Click(tid("nav-audit")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-row"]`)))
	if audit := b.text("main"); !strings.Contains(audit, "reveal") || !strings.Contains(audit, id) {
		t.Errorf("the audit page does not show the reveal of %s:\n%s", id, audit)
	}

	// An app and a key made in the console: each secret shown once, and it works on the API.
	b.do("create an app", 10*time.Second, chromedp.Click(tid("nav-apps")), chromedp.WaitVisible(tid("app-create-form")),
		chromedp.SendKeys(tid("app-create-id"), "shop"), chromedp.SendKeys(tid("app-create-pools"), "demo"),
		chromedp.Click(tid("app-create-submit")), chromedp.WaitVisible(tid("key-secret")))
	key, secret := b.text(`[data-testid="created-key"]`), b.text(`[data-testid="key-secret"]`)
	if a := b.api.do("GET", "/otp/list", "", "X-API-Key", key, "X-API-Secret", secret); a.status != 200 {
		t.Errorf("the key made in the console (%q): %d %s", key, a.status, a.raw)
	}
	b.do("create a key", 10*time.Second, chromedp.Navigate(b.base+"/console/apps/shop"), chromedp.WaitVisible(tid("keys-table")),
		chromedp.Click(tid("key-create")), chromedp.WaitVisible(tid("key-secret")))
	if keys := b.admin("GET", "/admin/apps/shop/keys", ""); strings.Count(keys.raw, `"key":`) != 2 {
		t.Errorf("keys of shop after New key: %s", keys.raw)
	}

	// A quarantined number released in the console: the caller ID is entered again (the store keeps only its
	// MAC), and the quarantine is gone.
	const quarantined = "+442079461234"
	if a := b.admin("POST", "/admin/pools/demo/quarantine", `{"cli":"`+quarantined+`","for":"2h","reason":"carrier complaint"}`); a.status != 200 {
		t.Fatalf("quarantine: %d %s", a.status, a.raw)
	}
	b.do("release", 10*time.Second, chromedp.Click(tid("nav-pools")), chromedp.WaitVisible(tid("pool-quarantined-row")),
		chromedp.Click(tid("pool-release")), chromedp.SendKeys(tid("pool-release-cli"), quarantined),
		chromedp.Click(tid("pool-release-confirm")), chromedp.WaitNotPresent(tid("pool-quarantined-row")))
	if pool := b.admin("GET", "/admin/pools/demo", ""); strings.Contains(pool.raw, "carrier complaint") {
		t.Errorf("still quarantined after the release: %s", pool.raw)
	}

	// Without the CSRF token, a change made from the page itself is refused.
	status := evalIn[float64](b, `fetch("/console/api/admin/pools/demo/quarantine", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"cli":"+442079461234"}'}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("a change without X-CSRF-Token: %v, want 403", status)
	}

	// A forged POST from another origin (a form on another port of this host: the same site, so the
	// SameSite cookie goes with it) is refused, and changes nothing.
	forger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="POST" enctype="text/plain" action="%s/console/api/admin/pools/demo/quarantine">`+
			`<input name='{"cli":"+442079461234","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`, b.base)
	}))
	t.Cleanup(forger.Close)
	b.do("the forged POST", 10*time.Second, chromedp.Navigate(forger.URL), chromedp.WaitVisible(chromedp.CSS("pre,body")))
	if body := b.text("body"); !strings.Contains(body, "forbidden") {
		t.Errorf("the forged POST was answered %q, want forbidden", body)
	}
	if pool := b.admin("GET", "/admin/pools/demo", ""); strings.Contains(pool.raw, `"cli"`) {
		t.Errorf("the forged POST quarantined a number: %s", pool.raw)
	}

	// A viewer reads but is refused a change; removed, its session is stale and the page goes back to
	// sign-in saying so.
	if a := b.admin("POST", "/admin/operators", `{"name":"vera","role":"viewer","password":"correct horse battery"}`); a.status != 201 {
		t.Fatalf("add a viewer: %d %s", a.status, a.raw)
	}
	b.do("sign out", 10*time.Second, chromedp.Navigate(b.base+"/console/live"), chromedp.WaitVisible(tid("sign-out")),
		chromedp.Click(tid("sign-out")), chromedp.WaitVisible(tid("signin-form")))
	b.do("sign in as a viewer", 10*time.Second, chromedp.Click(tid("signin-mode-password")),
		chromedp.SendKeys(tid("signin-username"), "vera"), chromedp.SendKeys(tid("signin-password"), "correct horse battery"),
		chromedp.Click(tid("signin-submit")), chromedp.WaitVisible(tid("operator-role")))
	if role := b.text(`[data-testid="operator-role"]`); role != "viewer" {
		t.Errorf("signed in as %q, want viewer", role)
	}
	b.do("a viewer on Pools", 10*time.Second, chromedp.Click(tid("nav-pools")), chromedp.WaitVisible(tid("pool")))
	if n := evalIn[float64](b, `document.querySelectorAll('[data-testid="pool-add-entry"],[data-testid="pool-quarantine"]').length`); n != 0 {
		t.Errorf("a viewer is offered %v change buttons", n)
	}
	status = evalIn[float64](b, `fetch("/console/api/session").then(r => r.json()).then(s => fetch("/console/api/admin/pools/demo/quarantine",
		{method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token}, body: '{"cli":"`+quarantined+`"}'})).then(r => r.status)`)
	if status != 403 {
		t.Errorf("a viewer's change with its CSRF token: %v, want 403", status)
	}
	if a := b.admin("DELETE", "/admin/operators/vera", ""); a.status != 204 {
		t.Fatalf("remove the viewer: %d %s", a.status, a.raw)
	}
	b.do("a stale session", 10*time.Second, chromedp.Click(tid("nav-verifications")), chromedp.WaitVisible(tid("signin-notice")))
}

// screenshotsDir is where make screenshots has the console's pages written (FLASHOTP_SCREENSHOTS), or "".
func screenshotsDir() string { return os.Getenv("FLASHOTP_SCREENSHOTS") }

// shoot writes a full-page screenshot of what the browser shows as dir/name.png.
func (b *browser) shoot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, lossless
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// consolePages are the console's pages as a person reaches them, by their path under /console/; {id} is a
// verification's ID.
var consolePages = []struct{ name, path string }{
	{"live", "live"},
	{"verifications", "verifications"},
	{"verification", "verifications/{id}"},
	{"trunks", "trunks"},
	{"pools", "pools"},
	{"apps", "apps"},
	{"app", "apps/demo"},
	{"reports", "reports"},
	{"audit", "audit"},
}

// Every page loads at a desktop's and at a phone's width without an error, on an engine with something to
// show: flash calls, an SMS and a voice call, a quarantined number, an operator's changes. Under make
// screenshots (FLASHOTP_SCREENSHOTS=dir) each is also written to dir as <page>-<width>.png.
func TestConsolePages(t *testing.T) {
	dir := screenshotsDir()
	for _, width := range []int{1280, 390} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			b := openConsole(t, width, 900)
			if dir != "" {
				b.shoot(dir, fmt.Sprintf("signin-%d", width))
			}
			b.signInToken()
			var id string
			for _, to := range []string{recipient, "+33612345678", "+447911123456"} {
				sent := b.api.send(to)
				if sent.status != 202 {
					t.Fatalf("send: %d %s", sent.status, sent.raw)
				}
				id = sent.body["verification_id"].(string)
			}
			b.api.waitCall(id)
			if a := b.admin("POST", "/admin/pools/demo/quarantine", `{"cli":"+442079461234","for":"2h","reason":"carrier complaint"}`); a.status != 200 {
				t.Fatalf("quarantine: %d %s", a.status, a.raw)
			}
			for _, p := range consolePages {
				url := b.base + "/console/" + strings.Replace(p.path, "{id}", id, 1)
				b.do(p.name, 20*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main h1")),
					chromedp.WaitNotPresent(tid("loading")))
				if banner := b.text(`[data-testid="error-banner"]`); banner != "" {
					t.Errorf("%s at %d px: error %q", p.name, width, banner)
				}
				if dir != "" {
					b.do(p.name+": charts drawn", 5*time.Second, chromedp.Sleep(700*time.Millisecond))
					b.shoot(dir, fmt.Sprintf("%s-%d", p.name, width))
				}
			}
		})
	}
}
