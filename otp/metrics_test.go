package otp_test

import (
	"testing"

	"flashotp/call"
	"flashotp/fault"
	"flashotp/internal/fakes"
	"flashotp/internal/metricstest"
	"flashotp/internal/storetest"
	"flashotp/metrics"
	"flashotp/otp"
)

// Each verification that reaches a final status is counted once, when it is stored: approved by a right
// code, failed by a call that failed before it rang or by its last wrong code, expired by a verify past
// expires_at or by the sweeper.
func TestVerificationsEndedCounted(t *testing.T) {
	e := &env{db: storetest.Open(t), dial: &fakes.Dialer{}, clock: newClock()}
	e.pools = newRegistry(t, e.db, e.clock.Now, 4, 10000, map[string]string{"demo": "+44207946XXXX"})
	m := metrics.New()
	e.svc = otp.New(otp.Config{Metrics: m, Apps: testApps(t, e.db, 4, "demo"), Dialer: e.dial, Now: e.clock.Now, Key: e.db.Key()}, e.db.Verifications(), e.pools, quietLog())
	want := map[string]float64{}
	check := func(when string) {
		t.Helper()
		scrape := metricstest.Scrape(t, m)
		for _, status := range []string{"approved", "expired", "failed", "canceled"} {
			if got := metricstest.Value(t, scrape, `flashotp_verifications_ended_total{status="`+status+`"}`); got != want[status] {
				t.Errorf("%s: %s = %v, want %v", when, status, got, want[status])
			}
		}
	}
	verify := func(id, code string) error {
		_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: id, Code: code})
		return err
	}

	approved, cli := e.send(t)
	if err := verify(approved.ID, wrongCode(codeOf(cli))); err == nil {
		t.Fatal("a wrong code approved")
	}
	check("wrong code")
	if err := verify(approved.ID, codeOf(cli)); err != nil {
		t.Fatal(err)
	}
	want["approved"]++
	check("right code")
	wantErr(t, verify(approved.ID, codeOf(cli)), fault.AlreadyVerified)
	check("code used twice")

	failed, _ := e.send(t)
	now := e.clock.Now()
	e.svc.CallEnded(failed.ID, "phone", "", call.Result{State: call.StateFailed, Reason: call.ReasonBusy, SIPCode: 486, StartedAt: now, EndedAt: now})
	want["failed"]++
	check("call failed before it rang")

	usedUp, usedUpCLI := e.send(t)
	for range testMaxAttempts {
		_ = verify(usedUp.ID, wrongCode(codeOf(usedUpCLI)))
	}
	want["failed"]++
	check("attempts used up")
	wantErr(t, verify(usedUp.ID, codeOf(usedUpCLI)), fault.MaxAttempts)
	check("a verify after the attempts were used up")

	swept, _ := e.send(t)
	late, lateCLI := e.send(t)
	e.clock.Advance(testTTL)
	wantErr(t, verify(late.ID, codeOf(lateCLI)), fault.Expired)
	want["expired"]++
	check("verify past expires_at")
	if n, err := e.svc.SweepExpired(t.Context()); err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v; want %s only", n, err, swept.ID)
	}
	want["expired"]++
	check("swept")
}
