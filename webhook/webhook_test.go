package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/internal/storetest"
	"flashotp/internal/testwait"
	"flashotp/otp"
	"flashotp/store"
	"flashotp/webhook"
)

type fixedApps struct{ url string }

func (f fixedApps) Get(id string) (apps.App, bool)     { return apps.App{ID: id, WebhookURL: f.url}, true }
func (fixedApps) WebhookSecret(string) ([]byte, error) { return []byte("s3cret"), nil }

var _ webhook.Apps = fixedApps{}

// receiver fails the first try of every body it is told to, and records what it accepts.
type receiver struct {
	mu     sync.Mutex
	failOn map[string]int // body → tries left to fail
	got    []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct{ N string }
	_ = json.NewDecoder(req.Body).Decode(&body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOn[body.N] > 0 {
		r.failOn[body.N]--
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	r.got = append(r.got, body.N)
}

func (r *receiver) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, ",")
}

func run(t *testing.T, cfg webhook.Config, url string) (*webhook.Queue, *store.DB) {
	db := storetest.Open(t)
	q := webhook.New(cfg, db, fixedApps{url})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return q, db
}

func enqueue(t *testing.T, q *webhook.Queue, db *store.DB, verification, n string) {
	t.Helper()
	if err := db.Verifications().Update(t.Context(), func(tx otp.Tx) error {
		return q.Enqueue(tx, "demo", verification, []byte(`{"N":"`+n+`"}`))
	}); err != nil {
		t.Fatal(err)
	}
}

// A verification's webhooks arrive in order even when one needs retries; another verification's do not
// wait for them.
func TestOrderPerVerification(t *testing.T) {
	r := &receiver{failOn: map[string]int{"a1": 3}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	q, db := run(t, webhook.Config{Settings: webhook.Settings{RetryMin: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond}}, srv.URL)
	enqueue(t, q, db, "otp_a", "a1")
	enqueue(t, q, db, "otp_a", "a2")
	enqueue(t, q, db, "otp_b", "b1")
	testwait.For(t, 10*time.Second, "every webhook", func() bool { return len(r.received()) == len("a1,a2,b1") })
	got := r.received()
	if !strings.HasPrefix(got, "b1,") || !strings.Contains(got, "a1,a2") {
		t.Errorf("received %s; want b1 first (a1 was failing) and a1 before a2", got)
	}
	testwait.For(t, 10*time.Second, "an empty queue", func() bool {
		n := 0
		_ = db.Deliveries(t.Context(), func(string, []byte) bool { n++; return true })
		return n == 0
	})
}

// A delivery that never succeeds is dropped after give_up_after, and the next one of its verification goes.
func TestGiveUp(t *testing.T) {
	r := &receiver{failOn: map[string]int{"x": 1 << 30}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	var mu sync.Mutex
	outcomes := map[string]int{}
	q, db := run(t, webhook.Config{Settings: webhook.Settings{RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, GiveUpAfter: 200 * time.Millisecond},
		Delivered: func(o string) { mu.Lock(); outcomes[o]++; mu.Unlock() }}, srv.URL)
	enqueue(t, q, db, "otp_x", "x")
	enqueue(t, q, db, "otp_x", "y")
	testwait.For(t, 10*time.Second, "y after x was dropped", func() bool { return r.received() == "y" })
	// The outcome is counted once the delivery is recorded, just after the receiver answered.
	testwait.For(t, 10*time.Second, "y recorded delivered", func() bool { mu.Lock(); defer mu.Unlock(); return outcomes["delivered"] == 1 })
	mu.Lock()
	defer mu.Unlock()
	if outcomes["dropped"] != 1 || outcomes["retry"] < 2 || outcomes["delivered"] != 1 {
		t.Errorf("outcomes %v", outcomes)
	}
}

func TestSign(t *testing.T) {
	got := webhook.Sign([]byte("s3cret"), time.Unix(1700000000, 0), []byte(`{"a":1}`))
	// echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
	want := "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
