package webhook_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"flashotp/internal/testwait"
	"flashotp/otp"
	"flashotp/webhook"
)

// Each try is kept, newest first, with its event, URL, status, outcome, try number and error; a filter by
// app or verification, a limit, and the ring's size bound what Tries returns.
func TestTriesKept(t *testing.T) {
	r := &receiver{failOn: map[string]int{"a": 1}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	q, db := run(t, webhook.Config{Settings: webhook.Settings{RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}, Recent: 3}, srv.URL)
	if got := q.Tries("", "", 0); len(got) != 0 {
		t.Fatalf("tries before any: %+v", got)
	}
	enqueue(t, q, db, "otp_a", "a")
	testwait.For(t, 10*time.Second, "a delivered on its second try", func() bool { return r.received() == "a" && len(q.Tries("", "", 0)) == 2 })
	got := q.Tries("demo", "otp_a", 0)
	if len(got) != 2 {
		t.Fatalf("tries %+v", got)
	}
	first, second := got[1], got[0]
	if first.Outcome != "retry" || first.Try != 1 || first.Status != 500 || !strings.Contains(first.Error, "500") || first.URL != srv.URL ||
		first.VerificationID != "otp_a" || first.AppID != "demo" || first.At.IsZero() {
		t.Errorf("first try %+v", first)
	}
	if second.Outcome != "delivered" || second.Try != 2 || second.Status != 200 || second.Error != "" || second.At.Before(first.At) {
		t.Errorf("second try %+v", second)
	}
	if len(q.Tries("other", "", 0)) != 0 || len(q.Tries("", "otp_b", 0)) != 0 || len(q.Tries("", "", 1)) != 1 {
		t.Error("a filter or the limit was not applied")
	}
	enqueue(t, q, db, "otp_b", "b")
	testwait.For(t, 10*time.Second, "b delivered", func() bool { return len(q.Tries("", "otp_b", 0)) == 1 })
	// The event is the one the body (otp.WebhookBody) names.
	if err := db.Verifications().Update(t.Context(), func(tx otp.Tx) error {
		return q.Enqueue(tx, "demo", "otp_c", []byte(`{"N":"c","event":"call_missed"}`))
	}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "c delivered", func() bool { return len(q.Tries("", "otp_c", 0)) == 1 })
	all := q.Tries("", "", 0)
	if len(all) != 3 || all[0].VerificationID != "otp_c" || all[0].Event != "call_missed" || all[1].VerificationID != "otp_b" || all[2].VerificationID != "otp_a" || all[2].Try != 2 {
		t.Errorf("a ring of 3 keeps %+v", all)
	}
}
