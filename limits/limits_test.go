package limits_test

import (
	"testing"
	"time"

	"flashotp/internal/testclock"
	"flashotp/limits"
)

func TestSlidingWindow(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := limits.New(clock.Now)
	c := limits.Check{Rule: limits.Rule{Scope: "recipient", Limit: 5, Window: 10 * time.Minute}, Key: "+14155552671"}
	for i := range 5 {
		if denied, _ := l.Allow(c); denied != nil {
			t.Fatalf("send %d refused", i+1)
		}
		clock.Advance(time.Minute)
	}
	// The sixth within ten minutes is refused until the first leaves the window (at 10:00, now 5:00).
	denied, retry := l.Allow(c)
	if denied == nil || denied.Scope != "recipient" || retry != 5*time.Minute {
		t.Fatalf("sixth send: denied %v, retry %s; want recipient, 5m", denied, retry)
	}
	st := l.Status(c)
	if st.Used != 5 || !st.ResetAt.Equal(clock.Now().Add(5*time.Minute)) {
		t.Errorf("status %+v, want used 5, reset in 5m", st)
	}
	clock.Advance(5 * time.Minute)
	if denied, _ := l.Allow(c); denied != nil {
		t.Fatal("refused after the first send left the window")
	}
	if denied, _ := l.Allow(c); denied == nil {
		t.Fatal("a second send at 10:00 allowed: the window holds 5 (1:00..4:00 and 10:00)")
	}
	clock.Advance(11 * time.Minute)
	if n := l.Sweep(); n != 0 {
		t.Errorf("Sweep left %d keys, want 0", n)
	}
}

func TestAllowIsAllOrNothing(t *testing.T) {
	clock := testclock.New(time.Unix(0, 0))
	l := limits.New(clock.Now)
	wide := limits.Check{Rule: limits.Rule{Scope: "app", Limit: 10, Window: time.Second}, Key: "demo"}
	narrow := limits.Check{Rule: limits.Rule{Scope: "recipient", Limit: 1, Window: time.Minute}, Key: "+1"}
	if denied, _ := l.Allow(wide, narrow); denied != nil {
		t.Fatal("first refused")
	}
	if denied, _ := l.Allow(wide, narrow); denied == nil || denied.Scope != "recipient" {
		t.Fatalf("second: denied %v, want recipient", denied)
	}
	if used := l.Status(wide).Used; used != 1 {
		t.Errorf("app counted %d events, want 1: a refused request must not count", used)
	}
	off := limits.Check{Rule: limits.Rule{Scope: "prefix"}, Key: "+1"}
	for range 3 {
		if denied, _ := l.Allow(off); denied != nil {
			t.Fatal("a rule with limit 0 refused")
		}
	}
}

func TestRuleChangeKeepsNewest(t *testing.T) {
	clock := testclock.New(time.Unix(0, 0))
	l := limits.New(clock.Now)
	c := limits.Check{Rule: limits.Rule{Scope: "app", Limit: 4, Window: time.Hour}, Key: "a"}
	for range 4 {
		l.Add(c)
		clock.Advance(time.Second)
	}
	c.Limit = 2
	if full, retry := l.Full(c); !full || retry != time.Hour-2*time.Second {
		t.Errorf("after shrinking to 2: full %v retry %s, want true, 59m58s (the newest two, at 2s and 3s, kept; now 4s)", full, retry)
	}
}
