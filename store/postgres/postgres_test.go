package postgres_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/internal/conformance"
	"flashotp/internal/peers"
	"flashotp/limits"
	"flashotp/otp"
	"flashotp/store/postgres"
	"flashotp/webhook"
)

// dbs numbers the databases the tests create on their server.
var dbs atomic.Int64

// open returns a store on a new database of pg, closed when the test ends.
func open(t *testing.T, pg *peers.Postgres) *postgres.DB {
	t.Helper()
	dsn := pg.CreateDB(t, fmt.Sprintf("flashotp_%d", dbs.Add(1)))
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The PostgreSQL store keeps otp's contract as every backend must (internal/conformance).
func TestOTPConformance(t *testing.T) {
	pg := peers.StartPostgres(t)
	conformance.OTP(t, func(t *testing.T) otp.Store { return open(t, pg).Verifications() })
}

// The PostgreSQL store keeps the other packages' contracts as every backend must (internal/conformance).
func TestRecordsConformance(t *testing.T) {
	pg := peers.StartPostgres(t)
	conformance.RecordStores(t, func(t *testing.T) conformance.Records { return open(t, pg) })
}

// Leases: renewed ones are not expired; one that ran out is taken over once; a node that left has none;
// the leader is the live node with the lowest ID.
func TestNodeLeases(t *testing.T) {
	db := open(t, peers.StartPostgres(t))
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if err := db.Renew(ctx, n, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Renew(ctx, "b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.Leave(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if dead, err := db.Expired(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("Expired at once = %v, %v", dead, err)
	}
	if l, err := db.Leader(ctx); err != nil || l != "a" {
		t.Errorf("Leader = %q, %v; want a, the lowest live ID", l, err)
	}
	time.Sleep(400 * time.Millisecond)
	if dead, err := db.Expired(ctx); err != nil || !slices.Equal(dead, []string{"a"}) {
		t.Fatalf("Expired = %v, %v; want [a]", dead, err)
	}
	if l, err := db.Leader(ctx); err != nil || l != "b" {
		t.Errorf("Leader once a's lease ran out = %q, %v; want b", l, err)
	}
	if won, err := db.TakeOver(ctx, "b"); err != nil || won {
		t.Errorf("took over a live node: %v, %v", won, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if won, err := db.TakeOver(ctx, "a"); err != nil {
				t.Error(err)
			} else if won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 5 engines took the dead one over, want 1", wins.Load())
	}
	if dead, err := db.Expired(ctx); err != nil || len(dead) != 0 {
		t.Errorf("after the take-over Expired = %v, %v", dead, err)
	}
}

type webhookApps struct{ url string }

func (a webhookApps) Get(id string) (apps.App, bool) {
	return apps.App{ID: id, WebhookURL: a.url}, true
}
func (webhookApps) WebhookSecret(string) ([]byte, error) { return []byte("s3cret"), nil }

// Two engines' webhook queues on one database: a held delivery is not claimed again until its hold runs
// out or it is written back, and every delivery is posted once, by one of them.
func TestWebhooksDeliveredOnceByTwoEngines(t *testing.T) {
	db := open(t, peers.StartPostgres(t))
	ctx := context.Background()
	if err := db.PutDelivery(ctx, "whd_held", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.Claim(ctx, "whd_held", 300*time.Millisecond); !ok {
		t.Fatal("first claim refused")
	}
	if ok, _ := db.Claim(ctx, "whd_held", time.Minute); ok {
		t.Error("a held delivery claimed again")
	}
	time.Sleep(400 * time.Millisecond)
	if ok, _ := db.Claim(ctx, "whd_held", time.Minute); !ok {
		t.Error("a delivery whose hold ran out not claimed")
	}
	if err := db.DeleteDelivery(ctx, "whd_held"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	posts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // a receiver that takes a moment: both queues see the same deliveries
		mu.Lock()
		posts[r.Header.Get("X-Flashotp-Delivery")]++
		mu.Unlock()
	}))
	defer srv.Close()
	var queues []*webhook.Queue
	for range 2 {
		q := webhook.New(webhook.Config{}, db, webhookApps{srv.URL})
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { q.Run(qctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		queues = append(queues, q)
	}
	const n = 60
	if err := db.Verifications().Update(ctx, func(tx otp.Tx) error {
		for i := range n {
			if err := queues[i%2].Enqueue(tx, "demo", fmt.Sprintf("otp_%03d", i), []byte(`{"n":1}`)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(posts)
		mu.Unlock()
		if got == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != n {
		t.Fatalf("%d of %d deliveries posted", len(posts), n)
	}
	for id, c := range posts {
		if c != 1 {
			t.Errorf("delivery %s posted %d times", id, c)
		}
	}
}

// Two limiters on one database keep one limit between them: of 20 events at once against 5 per minute,
// 5 pass; a released reservation gives its room back; failed authentications (Add) count; the status says
// when room comes back; the events leave with their window.
func TestSharedLimits(t *testing.T) {
	db := open(t, peers.StartPostgres(t))
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, b := limits.NewShared(db, clock, nil), limits.NewShared(db, clock, nil)
	c := limits.Check{Rule: limits.Rule{Scope: "recipient", Limit: 5, Window: time.Minute}, Key: "+14155552671"}
	other := limits.Check{Rule: limits.Rule{Scope: "app", Limit: 100, Window: time.Minute}, Key: "demo"}
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			l := a
			if i%2 == 1 {
				l = b
			}
			if denied, _ := l.Allow(other, c); denied == nil {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 5 {
		t.Fatalf("%d of 20 events passed a limit of 5 across two limiters", passed.Load())
	}
	if s := b.Status(other); s.Used != 5 {
		t.Errorf("the other check counted %d events, want the 5 that passed", s.Used)
	}
	denied, retry := a.Allow(c)
	if denied == nil || denied.Scope != "recipient" || retry != time.Minute {
		t.Errorf("a sixth: denied %v, retry %v; want the recipient check, 1m", denied, retry)
	}
	if s := b.Status(c); s.Used != 5 || !s.ResetAt.Equal(now.Add(time.Minute)) {
		t.Errorf("status = %+v", s)
	}

	mu.Lock()
	now = now.Add(time.Minute) // all five leave the window
	mu.Unlock()
	r, ok, _ := a.Reserve(c)
	if !ok {
		t.Fatal("no room once the window passed")
	}
	if s := b.Status(c); s.Used != 1 {
		t.Errorf("after a reservation: used %d", s.Used)
	}
	r.Release()
	if s := b.Status(c); s.Used != 0 {
		t.Errorf("after its release: used %d", s.Used)
	}
	for range 5 {
		b.Add(c)
	}
	if full, _ := a.Full(c); !full {
		t.Error("five failures added on one limiter do not fill the other's check")
	}
	a.Sweep()
	if full, _ := a.Full(c); !full {
		t.Error("the sweep dropped events still in their window")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	a.Sweep()
	var left int
	if err := db.CountLimitEvents(context.Background(), &left); err != nil || left != 0 {
		t.Errorf("after the window and a sweep %d events are stored (%v)", left, err)
	}
}
