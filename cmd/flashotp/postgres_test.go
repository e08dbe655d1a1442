package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/internal/peers"
	"flashotp/internal/storetest"
	"flashotp/internal/testwait"
	"flashotp/numberpool"
	"flashotp/store/postgres"
)

// pgEngineConfig is engineConfig (for `flashotp serve`) on the PostgreSQL database dsn as engine node,
// with a lease of 2s.
func pgEngineConfig(t *testing.T, dsn, trunk, node string) string {
	return regexp.MustCompile(`store:\n  path: [^\n]*\n`).ReplaceAllString(engineConfig(t.TempDir(), trunk, ""),
		"store:\n  driver: postgres\n  dsn: "+dsn+"\n  secret_key: "+strings.Repeat("5e", 16)+"\nnode:\n  id: "+node+"\n  lease: 2s\n")
}

// runPhoneMain is startPhoneMain with a stop of the test's own: it stops the engine and returns what Run
// returned (once; the test's end stops it too, if the test did not).
func runPhoneMain(t *testing.T, cfg configs.Config) (client, *phoneLog, func() error) {
	t.Helper()
	m := NewMain(cfg, quietLog())
	phone := &phoneLog{}
	m.PhoneOut = phone
	stop := runUntilStopped(t, m)
	return client{t, "http://" + m.HTTPAddr}, phone, stop
}

// onPostgres points cfg's store at the database dsn, with the server key every engine of it shares.
func onPostgres(cfg configs.Config, dsn string) configs.Config {
	cfg.Store = configs.Store{Driver: configs.StorePostgres, DSN: dsn, SecretKey: strings.Repeat("5e", 16)}
	return cfg
}

// Two engines on one PostgreSQL database: a send on the first, its flash call from the first's trunk; the
// wrong code and then the right one verified on the second, which has never seen the verification, and the
// status (one wrong attempt) answered alike by both.
func TestPostgresAnyEngineAnswers(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "flashotp")
	a, phone := startPhoneMain(t, onPostgres(phoneConfig(t), dsn))
	b := client{t, "http://" + startMain(t, onPostgres(testConfig(t, "127.0.0.1:9"), dsn)).HTTPAddr}

	sent := a.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	cli := a.lastCLI(phone, id, "+14155552671")
	code := cli[len(cli)-4:]
	wrong := "0000"
	if code == wrong {
		wrong = "1111"
	}
	if v := b.verify(id, wrong); v.status != 422 {
		t.Errorf("a wrong code on the other engine: %d %s", v.status, v.raw)
	}
	if v := b.verify(id, code); v.status != 200 || v.body["status"] != "approved" {
		t.Fatalf("the right code on the other engine: %d %s", v.status, v.raw)
	}
	for name, c := range map[string]client{"first": a, "second": b} {
		s := c.do("GET", "/otp/status?verification_id="+id, "")
		if s.status != 200 || s.body["status"] != "approved" || s.body["attempts"] != float64(1) {
			t.Errorf("status on the %s engine: %d %s", name, s.status, s.raw)
		}
	}
}

// A bbolt file moved into PostgreSQL with `flashotp store migrate`: the pending code verifies on an engine
// on the new store, the verification that had ended keeps its status and attempts, and its events are
// there.
func TestMigrateBoltToPostgres(t *testing.T) {
	pg := peers.StartPostgres(t)
	cfg := phoneConfig(t)
	c, phone, stop := runPhoneMain(t, cfg)
	send := func(to string) (id, code string) {
		a := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+to+`","channel":"flashcall"}`)
		if a.status != 202 {
			t.Fatalf("send: %d %s", a.status, a.raw)
		}
		id = a.body["verification_id"].(string)
		cli := c.lastCLI(phone, id, to)
		return id, cli[len(cli)-4:]
	}
	pending, pendingCode := send("+14155552671")
	ended, endedCode := send("+14155552672")
	wrong := map[bool]string{true: "1111", false: "0000"}[pendingCode == "0000"]
	if v := c.verify(pending, wrong); v.status != 422 {
		t.Fatalf("wrong code: %d %s", v.status, v.raw)
	}
	if v := c.verify(ended, endedCode); v.status != 200 {
		t.Fatalf("right code: %d %s", v.status, v.raw)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	dsn := pg.CreateDB(t, "migrated")
	var out, errOut bytes.Buffer
	if err := migrate(context.Background(), cfg.Store.Path, "", dsn, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "2 verifications, 2 verify attempts") {
		t.Errorf("migrate said %q", out.String())
	}
	if err := migrate(context.Background(), cfg.Store.Path, "", dsn, &out, &errOut); err == nil {
		t.Error("a second migrate into the same database was not refused")
	}
	key, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.Store.Path), "flashotp.key"))
	if err != nil {
		t.Fatal(err)
	}
	pgCfg := onPostgres(testConfig(t, "127.0.0.1:9"), dsn)
	pgCfg.Store.SecretKey = strings.TrimSpace(string(key))
	b := client{t, "http://" + startMain(t, pgCfg).HTTPAddr}
	if s := b.do("GET", "/otp/status?verification_id="+ended, ""); s.body["status"] != "approved" {
		t.Errorf("the ended verification on PostgreSQL: %d %s", s.status, s.raw)
	}
	if v := b.verify(pending, pendingCode); v.status != 200 || v.body["status"] != "approved" {
		t.Fatalf("the pending code on PostgreSQL: %d %s", v.status, v.raw)
	}
	if s := b.do("GET", "/otp/status?verification_id="+pending, ""); s.body["attempts"] != float64(1) {
		t.Errorf("attempts of the migrated verification: %s", s.raw)
	}
	logs := b.do("GET", "/otp/logs?verification_id="+pending, "")
	if logs.status != 200 || !strings.Contains(logs.raw, "send_requested") || !strings.Contains(logs.raw, "call_missed") {
		t.Errorf("events of the migrated verification: %d %s", logs.status, logs.raw)
	}
}

// The round trips a flash call costs on PostgreSQL, from the send to its outcome stored, counted by the
// store (flashotp_store_round_trips_total). With the app's rate limits off: the recipient's recent calls
// (two statements: read, and written back if unchanged, so that the cooldown holds across engines), the
// send's transaction (its BEGIN and read in one pipeline, its writes and COMMIT in another), the outcome's
// read (two: the snapshot's BEGIN with the read, its COMMIT) and its transaction (two): eight, and the
// engine's own writes spread over the sends (report counts every second, its lease every 2.5 s). The
// default limits add
// their checks across engines (limits.Shared): the send's checks together (two: the keys locked and
// counted, the events and COMMIT), the client's (two), the failed verifications' count (one).
func TestPostgresRoundTripsPerSend(t *testing.T) {
	pg := peers.StartPostgres(t)
	for _, tc := range []struct {
		name   string
		limits map[string]apps.Limit
		most   float64
	}{
		{"limits off", map[string]apps.Limit{"recipient": {}, "app": {}, "client": {}, "prefix": {}, "failed_verifications": {}}, 10},
		{"default limits", nil, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := onPostgres(phoneConfig(t), pg.CreateDB(t, fmt.Sprintf("trips%d", int(tc.most))))
			cfg.Apps[0].RateLimits = tc.limits
			c, phone := startPhoneMain(t, cfg)
			const sends = 20
			const delivered = `flashotp_steps_ended_total{channel="flashcall",state="delivered"}`
			before, ended := c.metric("flashotp_store_round_trips_total"), c.metric(delivered)
			for i := range sends {
				a := c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":"+1415555%04d","channel":"flashcall"}`, 2000+i))
				if a.status != 202 {
					t.Fatalf("send: %d %s", a.status, a.raw)
				}
			}
			// A step is counted ended once its outcome is stored (nothing else here reads the store: no status
			// is polled while it is measured).
			if !testwait.Until(10*time.Second, func() bool { return c.metric(delivered)-ended >= sends }) {
				t.Fatalf("outcomes not stored: %v of %d", c.metric(delivered)-ended, sends)
			}
			for i := range sends {
				if len(phone.clis(fmt.Sprintf("+1415555%04d", 2000+i))) != 1 {
					t.Errorf("the phone did not see the call to +1415555%04d", 2000+i)
				}
			}
			perSend := (c.metric("flashotp_store_round_trips_total") - before) / sends
			t.Logf("%.1f round trips per send, from the send to its outcome stored", perSend)
			if perSend > tc.most {
				t.Errorf("%.1f round trips per send, want at most %v", perSend, tc.most)
			}
		})
	}
}

// An engine killed with calls in flight: once its lease runs out, another engine on the database ends its
// calls as failed, interrupted (the dead engine's own restart would have), and leaves its own calls alone.
func TestPostgresDeadEngineTakenOver(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "takeover")
	// A trunk that never answers: calls stay in flight for the whole dial_timeout.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	config := strings.Replace(pgEngineConfig(t, dsn, silent.LocalAddr().String(), "engine-a"), "dial_timeout: 3s", "dial_timeout: 60s", 1)
	a, ca := serve(t, config)

	bCfg := onPostgres(testConfig(t, silent.LocalAddr().String()), dsn)
	bCfg.Dialer.DialTimeout = time.Minute
	bCfg.Node = configs.Node{ID: "engine-b", Lease: 2 * time.Second}
	b := client{t, "http://" + startMain(t, bCfg).HTTPAddr}

	send := func(c client, to string) string {
		s := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+to+`","channel":"flashcall"}`)
		if s.status != 202 {
			t.Fatalf("send: %d %s", s.status, s.raw)
		}
		return s.body["verification_id"].(string)
	}
	var ofA []string
	for i := range 3 {
		ofA = append(ofA, send(ca, fmt.Sprintf("+1415555%04d", 3000+i)))
	}
	ofB := send(b, "+14155553100")
	call := func(id string) map[string]any {
		s := b.do("GET", "/otp/status?verification_id="+id, "")
		if s.status != 200 {
			t.Fatalf("status: %d %s", s.status, s.raw)
		}
		return s.body["call"].(map[string]any)
	}
	for _, id := range ofA {
		if st := call(id)["state"]; st != "queued" && st != "dialing" {
			t.Fatalf("before the kill, %s's call is %v", id, st)
		}
	}
	a.kill(syscall.SIGKILL)
	if !testwait.Until(20*time.Second, func() bool {
		for _, id := range ofA {
			if call(id)["state"] != "failed" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the dead engine's calls were not ended: %v", call(ofA[0]))
	}
	for _, id := range ofA {
		if c := call(id); c["reason"] != "interrupted" {
			t.Errorf("%s ended %v, want failed, interrupted", id, c)
		}
	}
	if st := call(ofB)["state"]; st == "failed" {
		t.Errorf("the live engine's own call was ended too: %v", call(ofB))
	}
}

// The database gone (its server killed): /readyz fails, a send and a verify are refused as unavailable
// (503, never 500), the status of a stored verification too, and the engine keeps serving; at its stop it
// says the report counts could not be stored.
func TestPostgresUnreachable(t *testing.T) {
	pg := peers.StartPostgres(t)
	c, phone, stop := runPhoneMain(t, onPostgres(phoneConfig(t), pg.CreateDB(t, "gone")))
	sent := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	c.lastCLI(phone, id, "+14155552671")
	pg.Kill()
	if r := c.do("GET", "/readyz", ""); r.status != 503 {
		t.Errorf("/readyz with the database gone: %d %s", r.status, r.raw)
	}
	for name, a := range map[string]answer{
		"send":   c.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552672","channel":"flashcall"}`),
		"verify": c.verify(id, "1234"),
		"status": c.do("GET", "/otp/status?verification_id="+id, ""),
	} {
		if a.status != 503 || errCode(a) != "unavailable" {
			t.Errorf("%s with the database gone: %d %s, want 503 unavailable", name, a.status, a.raw)
		}
	}
	if r := c.do("GET", "/healthz", ""); r.status != 200 {
		t.Errorf("/healthz: %d (the engine itself is alive)", r.status)
	}
	if err := stop(); err == nil || !strings.Contains(err.Error(), "report counts") {
		t.Errorf("the stop said %v, want the report counts it could not store", err)
	}
}

// Three engine processes on a primary with a synchronous standby (the multi-host DSN of a failover), one
// phone as the trunk of all three (rate limits off), one webhook receiver for the app.
//   - Sends spread over the three, each code verified on another engine than its send's: every code verifies.
//   - Then, killRounds times, the engines under load and one of them, at random, killed with SIGKILL and
//     started again; in one round, at random, the primary killed with SIGKILL too and the standby promoted.
//     Afterwards every send that was answered 202 is there, with its call ended (by its engine's restart,
//     or by another engine once the lease ran out), no two verifications of one recipient mixed up, and the
//     webhook of each call's outcome delivered at least once.
func TestPostgresThreeEngines(t *testing.T) {
	const killRounds = 20
	primary := peers.StartPostgres(t)
	primary.CreateDB(t, "three")
	standby := primary.StartStandby(t)
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/three?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.Port, standby.Port)
	failover := rand.IntN(killRounds)
	phoneAddr, phone := startPhone(t)
	recv := &webhookReceiver{t: t, secret: "whsec-three-0123456789", up: true, events: map[string][]string{}, seen: map[string]bool{}}
	hooks := httptest.NewServer(recv)
	t.Cleanup(hooks.Close)
	configs := make([]string, 3)
	procs := make([]*proc, 3)
	clients := make([]client, 3)
	for i := range 3 {
		configs[i] = strings.Replace(withoutLimits(pgEngineConfig(t, dsn, phoneAddr, fmt.Sprintf("engine-%d", i))),
			"    api_secret: demo-secret\n", fmt.Sprintf("    api_secret: demo-secret\n    webhook_url: %s\n    webhook_secret: %s\n", hooks.URL, recv.secret), 1) +
			"webhooks: {retry_min: 50ms, retry_max: 500ms, timeout: 2s}\n"
		procs[i], clients[i] = serve(t, configs[i])
	}
	// cliOf waits for the phone's missed call to recipient and returns its CLI.
	cliOf := func(recipient string) string {
		var cli string
		testwait.For(t, 10*time.Second, "the call to "+recipient, func() bool {
			for _, m := range missedLine.FindAllStringSubmatch(phone.stdout.String(), -1) {
				if m[2] == recipient {
					cli = m[1]
				}
			}
			return cli != ""
		})
		return cli
	}
	for i := range 12 {
		to := fmt.Sprintf("+1415555%04d", 4000+i)
		sent := clients[i%3].do("POST", "/otp/send", `{"appid":"demo","recipient":"`+to+`","channel":"flashcall"}`)
		if sent.status != 202 {
			t.Fatalf("send on engine %d: %d %s", i%3, sent.status, sent.raw)
		}
		cli := cliOf(to)
		if v := clients[(i+1)%3].verify(sent.body["verification_id"].(string), cli[len(cli)-4:]); v.status != 200 || v.body["status"] != "approved" {
			t.Errorf("code of a send on engine %d verified on engine %d: %d %s", i%3, (i+1)%3, v.status, v.raw)
		}
	}

	var mu sync.Mutex
	acked := map[string]string{} // verification ID → recipient
	var seq atomic.Int64
	for round := range killRounds {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					to := fmt.Sprintf("+1415%07d", 5_000_000+seq.Add(1))
					if a, ok := clients[w%3].trySend(to); ok && a.status == 202 {
						mu.Lock()
						acked[a.body["verification_id"].(string)] = to
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
		victim := rand.IntN(3)
		procs[victim].kill(syscall.SIGKILL)
		if round == failover {
			primary.Kill()
			standby.Promote(t)
		}
		time.Sleep(200 * time.Millisecond)
		close(stop)
		wg.Wait()
		procs[victim], clients[victim] = superviseServe(t, configs[victim])
	}
	if len(acked) < 10*killRounds {
		t.Fatalf("only %d sends acknowledged across %d rounds: the load was too light to mean anything", len(acked), killRounds)
	}
	// Every acknowledged send is stored, and its call ends: missed (the phone rang), or failed, interrupted
	// (its engine died with it in flight).
	ended := map[string]int{}
	for id, to := range acked {
		var call map[string]any
		if !testwait.Until(20*time.Second, func() bool {
			s := clients[2].do("GET", "/otp/status?verification_id="+id, "")
			if s.status != 200 {
				t.Fatalf("acknowledged verification %s: %d %s", id, s.status, s.raw)
			}
			if s.body["recipient"] != to {
				t.Fatalf("verification %s is for %v, was sent to %s", id, s.body["recipient"], to)
			}
			call = s.body["call"].(map[string]any)
			return call["state"] == "missed" || call["state"] == "failed"
		}) {
			t.Errorf("verification %s: its call never ended: %v", id, call)
			continue
		}
		ended[fmt.Sprint(call["state"], "/", call["reason"])]++
	}
	// Each call's outcome was posted to the receiver at least once, whichever engine delivered it.
	outcomeHook := func(id string) bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return slices.ContainsFunc(recv.events[id], func(e string) bool { return e == "call_missed" || e == "call_failed" })
	}
	missing := 0
	for id := range acked {
		if !testwait.Until(30*time.Second, func() bool { return outcomeHook(id) }) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged sends never had their call's outcome posted as a webhook", missing, len(acked))
	}
	t.Logf("%d acknowledged sends over %d kills of an engine and one of the primary (round %d); their calls ended: %v; %d webhook deliveries received",
		len(acked), killRounds, failover+1, ended, len(recv.seen))
}

// A primary with a synchronous standby, the engine on both through a multi-host DSN
// (target_session_attrs=read-write). Under load the primary is killed with SIGKILL and the standby promoted:
// sends meanwhile are answered 202 or 503, never anything else; the engine carries on on the new primary
// within seconds, and every send answered 202, before, during and after, is there.
func TestPostgresFailover(t *testing.T) {
	primary := peers.StartPostgres(t)
	primary.CreateDB(t, "failover")
	standby := primary.StartStandby(t)
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/failover?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.Port, standby.Port)
	cfg := onPostgres(phoneConfig(t), dsn)
	cfg.Apps[0].RateLimits = map[string]apps.Limit{"recipient": {}, "app": {}, "client": {}, "prefix": {}}
	c, _ := startPhoneMain(t, cfg)

	var mu sync.Mutex
	var acked []string
	var refused int
	var seq atomic.Int64
	load := func(d time.Duration) {
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(end) {
					a, ok := c.trySend(fmt.Sprintf("+1415%07d", 6_000_000+seq.Add(1)))
					mu.Lock()
					switch {
					case ok && a.status == 202:
						acked = append(acked, a.body["verification_id"].(string))
					case ok && a.status == 503:
						refused++
					case ok:
						t.Errorf("send during the failover: %d %s (want 202 or 503)", a.status, a.raw)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	loaded := make(chan struct{})
	go func() { load(4 * time.Second); close(loaded) }()
	time.Sleep(time.Second)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	primary.Kill()
	standby.Promote(t)
	<-loaded
	if !testwait.Until(20*time.Second, func() bool { return c.do("GET", "/readyz", "").status == 200 }) {
		t.Fatal("the engine is not ready on the promoted standby within 20s")
	}
	load(time.Second)
	if before < 20 || len(acked)-before < 20 {
		t.Fatalf("%d sends acknowledged before the failover, %d after: too few to mean anything", before, len(acked)-before)
	}
	for _, id := range acked {
		if s := c.do("GET", "/otp/status?verification_id="+id, ""); s.status != 200 {
			t.Errorf("acknowledged send %s after the failover: %d %s", id, s.status, s.raw)
		}
	}
	t.Logf("%d sends acknowledged before the primary died, %d from then on, %d refused (503) meanwhile; none lost", before, len(acked)-before, refused)
}

// A rate limit holds across engines: the recipient's limit of 3 per hour, sends to it alternating between
// two engines on one database: three are accepted in all, the fourth is refused on either engine, and both
// report the same use.
func TestPostgresLimitsAcrossEngines(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "limits")
	cfg := onPostgres(phoneConfig(t), dsn)
	cfg.Apps[0].RateLimits = map[string]apps.Limit{"recipient": {Limit: 3, Window: apps.Duration(time.Hour)}}
	a, _ := startPhoneMain(t, cfg)
	bCfg := onPostgres(testConfig(t, "127.0.0.1:9"), dsn)
	bCfg.Apps[0].RateLimits = cfg.Apps[0].RateLimits
	bCfg.Node.ID = "engine-b"
	b := client{t, "http://" + startMain(t, bCfg).HTTPAddr}
	engines := []client{a, b}
	for i := range 4 {
		s := engines[i%2].do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`)
		want := 202
		if i == 3 {
			want = 429
		}
		if s.status != want {
			t.Errorf("send %d (engine %d): %d %s, want %d", i+1, i%2, s.status, s.raw, want)
		}
	}
	if s := a.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`); s.status != 429 {
		t.Errorf("a fifth on the first engine: %d %s, want 429", s.status, s.raw)
	}
	for i, c := range engines {
		limits := c.do("GET", "/otp/rate-limits?recipient=%2B14155552671", "")
		if !strings.Contains(limits.raw, `"scope":"recipient"`) || !strings.Contains(limits.raw, `"used":3`) {
			t.Errorf("engine %d's rate limits: %s", i, limits.raw)
		}
	}
}

// copyRecords moves every kind of record beside otp's from bbolt to PostgreSQL, as it was.
func TestCopyRecords(t *testing.T) {
	ctx := context.Background()
	from := boltBackend{storetest.Open(t)}
	pg, err := postgres.Open(ctx, peers.StartPostgres(t).CreateDB(t, "copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	to := pgBackend{DB: pg}
	for _, err := range []error{
		from.SaveApps(ctx, map[string][]byte{"demo": []byte("app")}, map[string][]byte{"key1": []byte("key")}),
		from.PutPool(ctx, "uk", []byte("pool")),
		from.PutQuarantine(ctx, "cli:+44", []byte("quarantine")),
		from.PutOperator(ctx, "ann", []byte("operator")),
		from.PutAudit(ctx, "aud_1", []byte("audit 1")),
		from.PutAudit(ctx, "aud_2", []byte("audit 2")),
		from.PutDelivery(ctx, "whd_1", []byte("delivery")),
		from.PutEnrollment(ctx, "demo", "user", []byte("enrollment"), false),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := copyRecords(ctx, from, to)
	if err != nil || n != 9 {
		t.Fatalf("copyRecords = %d, %v; want 9 records", n, err)
	}
	got := map[string]string{}
	keep := func(kind string) func(string, []byte) error {
		return func(k string, v []byte) error { got[kind+" "+k] = string(v); return nil }
	}
	for _, err := range []error{
		to.LoadApps(ctx, keep("app"), keep("key")),
		to.LoadPools(ctx, keep("pool")),
		to.LoadQuarantines(ctx, keep("quarantine")),
		to.LoadOperators(ctx, keep("operator")),
		to.Audit(ctx, "", func(k string, v []byte) bool { return keep("audit")(k, v) == nil }),
		to.Deliveries(ctx, func(k string, v []byte) bool { return keep("delivery")(k, v) == nil }),
		to.Enrollments(ctx, func(app, user string, v []byte) error { return keep("enrollment")(app+"/"+user, v) }),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"app demo": "app", "key key1": "key", "pool uk": "pool", "quarantine cli:+44": "quarantine",
		"operator ann": "operator", "audit aud_1": "audit 1", "audit aud_2": "audit 2", "delivery whd_1": "delivery",
		"enrollment demo/user": "enrollment"}
	if !maps.Equal(got, want) {
		t.Errorf("PostgreSQL holds %v, want %v", got, want)
	}
}

// A recipient's cooldown holds across engines: twelve sends to one recipient, alternately on two engines,
// from a pool of twelve numbers with twelve codes, get twelve different caller IDs and codes, and a
// thirteenth is refused on either engine (every code is in the recipient's cooldown). Engines that kept
// their own histories would repeat one (all but 1 in 924 runs) and take a thirteenth.
func TestPostgresCooldownAcrossEngines(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "cooldown")
	var numbers []string
	for i := 1; i <= 12; i++ {
		numbers = append(numbers, fmt.Sprintf("+4420794600%02d", i))
	}
	engine := func(node string) (client, *phoneLog) {
		cfg := onPostgres(phoneConfig(t), dsn)
		cfg.Node.ID = node
		cfg.OTP.MinCodeSpace = 10
		cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: numbers}}
		cfg.Apps[0].RateLimits = map[string]apps.Limit{"recipient": {Limit: 100, Window: apps.Duration(time.Hour)}}
		return startPhoneMain(t, cfg)
	}
	a, phoneA := engine("engine-a")
	b, phoneB := engine("engine-b")
	engines := []client{a, b}
	var ids []string
	for i := range 12 {
		s := engines[i%2].send(recipient)
		if s.status != 202 {
			t.Fatalf("send %d (engine %d): %d %s", i+1, i%2, s.status, s.raw)
		}
		ids = append(ids, s.body["verification_id"].(string))
	}
	for i, id := range ids {
		engines[i%2].waitCall(id)
	}
	seen := map[string]bool{}
	for _, cli := range append(phoneA.clis(recipient), phoneB.clis(recipient)...) {
		if seen[cli] {
			t.Errorf("caller ID %s came twice to one recipient within its cooldown", cli)
		}
		seen[cli] = true
	}
	if len(seen) != 12 {
		t.Errorf("the phones saw %d caller IDs, want 12", len(seen))
	}
	for i, c := range engines {
		if s := c.send(recipient); s.status != 503 || !strings.Contains(s.raw, "cooldown") {
			t.Errorf("a thirteenth send on engine %d: %d %s, want 503 (every caller ID in the cooldown)", i, s.status, s.raw)
		}
	}
}

// An admin change made on one engine is live on the other within a second (LISTEN/NOTIFY): an app and its
// key made, the key revoked, a pool made, a caller ID quarantined and released, an operator added.
func TestPostgresChangesLiveEverywhere(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "changes")
	engine := func(node string) client {
		cfg := onPostgres(testConfig(t, "127.0.0.1:9"), dsn)
		cfg.Node.ID = node
		cfg.HTTP.AdminToken = "admin-token-0123456789"
		return client{t, "http://" + startMain(t, cfg).HTTPAddr}
	}
	a, b := engine("engine-a"), engine("engine-b")
	admin := []string{"Authorization", "Bearer admin-token-0123456789"}
	// live waits until check holds on b, and fails if that took more than a second.
	live := func(what string, check func() bool) {
		t.Helper()
		start := time.Now()
		testwait.For(t, 5*time.Second, what, check)
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: live on the other engine after %s, want within 1s", what, took)
		} else {
			t.Logf("%s: live on the other engine after %s", what, took.Round(time.Millisecond))
		}
	}

	created := a.do("POST", "/admin/apps", `{"id":"shop","pools":["demo"]}`, admin...)
	if created.status != 201 {
		t.Fatalf("create app: %d %s", created.status, created.raw)
	}
	key := created.body["key"].(map[string]any)
	shop := []string{"X-API-Key", key["key"].(string), "X-API-Secret", key["secret"].(string)}
	sendAsShop := func() int {
		return b.do("POST", "/otp/send", `{"appid":"shop","recipient":"+14155552671","channel":"flashcall"}`, shop...).status
	}
	live("an app made", func() bool { return sendAsShop() == 202 })

	if r := a.do("DELETE", "/admin/apps/shop/keys/"+key["key"].(string), "", admin...); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	live("a key revoked", func() bool { return sendAsShop() == 401 })

	if r := a.do("POST", "/admin/pools", `{"name":"extra","entries":[{"numbers":["+33198765XXXX"]}]}`, admin...); r.status != 201 {
		t.Fatalf("create pool: %d %s", r.status, r.raw)
	}
	live("a pool made", func() bool { return b.do("GET", "/admin/pools/extra", "", admin...).status == 200 })

	if r := a.do("POST", "/admin/pools/demo/quarantine", `{"cli":"+442079461234"}`, admin...); r.status != 200 && r.status != 201 {
		t.Fatalf("quarantine: %d %s", r.status, r.raw)
	}
	quarantines := func() int {
		q, _ := b.do("GET", "/admin/pools/demo", "", admin...).body["quarantine"].(map[string]any)
		return len(q)
	}
	live("a caller ID quarantined", func() bool { return quarantines() == 1 })
	if r := a.do("POST", "/admin/pools/demo/release", `{"cli":"+442079461234"}`, admin...); r.status != 200 && r.status != 204 {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
	live("a caller ID released", func() bool { return quarantines() == 0 })

	if r := a.do("POST", "/admin/operators", `{"name":"olga","role":"viewer","password":"correct horse battery"}`, admin...); r.status != 201 {
		t.Fatalf("add operator: %d %s", r.status, r.raw)
	}
	live("an operator added", func() bool {
		return strings.Contains(b.do("GET", "/admin/operators", "", admin...).raw, `"olga"`)
	})
}

// superviseServe starts `flashotp serve` as a supervisor would (systemd's Restart=on-failure): an engine
// that exits at start (the database out of reach in a failover: it says so and exits) is started again,
// half a second later, up to five times.
func superviseServe(t *testing.T, config string) (*proc, client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for try := 1; ; try++ {
		p := start(t, "serve", "--config", path)
		var addr string
		if !testwait.Until(15*time.Second, func() bool {
			p.stderr.mu.Lock()
			defer p.stderr.mu.Unlock()
			for _, l := range p.stderr.lines {
				if m := servingLine.FindStringSubmatch(l); m != nil {
					addr = m[1]
				}
			}
			select {
			case <-p.done:
				return true
			default:
				return addr != ""
			}
		}) || addr == "" && try == 5 {
			t.Fatalf("the engine did not serve (start %d):\n%s", try, p.stderr.String())
		}
		if addr != "" {
			return p, client{t, "http://" + addr}
		}
		t.Logf("the engine exited at start %d, started again: %s", try, p.stderr.String())
		time.Sleep(500 * time.Millisecond)
	}
}

// Each engine on a shared database keeps its own report mark: one engine's clean stop says nothing of
// another's calls. Engine B is killed with calls in flight (its trunk never answers), then engine A stops
// cleanly, then B starts again: B ends its calls as interrupted at once (before, A's clean stop hid them
// from B's restart, and nothing ever ended them).
func TestPostgresCleanStopOfAnotherEngine(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "marks")
	uas := peers.StartUAS(t, "silent.xml", 5) // 100 Trying, then nothing: the calls stay in flight
	a, _ := serve(t, withoutLimits(pgEngineConfig(t, dsn, "127.0.0.1:9", "engine-a")))
	bConfig := withoutLimits(pgEngineConfig(t, dsn, uas.Addr, "engine-b"))
	b, bc := serve(t, bConfig)
	var ids []string
	for i := range 5 {
		s := bc.send(fmt.Sprintf("+1415555%04d", 7000+i))
		if s.status != 202 {
			t.Fatalf("send: %d %s", s.status, s.raw)
		}
		ids = append(ids, s.body["verification_id"].(string))
	}
	testwait.For(t, 5*time.Second, "the five calls placed", func() bool { return len(uas.Received("INVITE ")) >= 5 })
	b.kill(syscall.SIGKILL)
	a.kill(syscall.SIGTERM)
	_, bc = serve(t, bConfig)
	for _, id := range ids {
		s := bc.do("GET", "/otp/status?verification_id="+id, "")
		if call := s.body["call"].(map[string]any); call["state"] != "failed" || call["reason"] != "interrupted" {
			t.Errorf("%s after engine-b's restart: call %v/%v, want failed/interrupted", id, call["state"], call["reason"])
		}
	}
}
