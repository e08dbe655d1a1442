package limits_test

import (
	"sync"
	"sync/atomic"
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

func TestReserve(t *testing.T) {
	clock := testclock.New(time.Unix(0, 0))
	c := limits.Check{Rule: limits.Rule{Scope: "failed_verifications", Limit: 3, Window: time.Hour}, Key: "+1"}
	tests := []struct {
		name     string
		release  []bool // per reservation taken in order: give it back
		wantUsed int
	}{
		{"all kept", []bool{false, false, false}, 3},
		{"middle given back", []bool{false, true, false}, 2},
		{"all given back", []bool{true, true, true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limits.New(clock.Now)
			var rs []limits.Reservation
			for range tt.release {
				r, ok, _ := l.Reserve(c)
				if !ok {
					t.Fatal("refused with room")
				}
				rs = append(rs, r)
				clock.Advance(time.Second)
			}
			// Full while every slot is held, whether or not it will be given back.
			if _, ok, retry := l.Reserve(c); ok || retry != time.Hour-3*time.Second {
				t.Fatalf("fourth reserve: ok %v retry %s; want refused for 59m57s", ok, retry)
			}
			for i, back := range tt.release {
				if back {
					rs[i].Release()
					rs[i].Release() // twice changes nothing
				}
			}
			if used := l.Status(c).Used; used != tt.wantUsed {
				t.Errorf("used %d, want %d", used, tt.wantUsed)
			}
			if _, ok, _ := l.Reserve(c); ok != (tt.wantUsed < 3) {
				t.Errorf("reserve after releases: ok %v with %d used", ok, tt.wantUsed)
			}
		})
	}
	off := limits.Check{Rule: limits.Rule{Scope: "failed_verifications"}, Key: "+1"}
	r, ok, _ := limits.New(clock.Now).Reserve(off)
	r.Release()
	if !ok {
		t.Error("a rule with limit 0 refused")
	}
}

// Concurrent reservations never hold more than the limit, and released ones are free again.
func TestReserveConcurrent(t *testing.T) {
	l := limits.New(nil)
	c := limits.Check{Rule: limits.Rule{Scope: "failed_verifications", Limit: 100, Window: time.Hour}, Key: "+1"}
	var kept atomic.Int64
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, ok, _ := l.Reserve(c)
			if !ok {
				return
			}
			if i%2 == 0 {
				r.Release()
				return
			}
			kept.Add(1)
		}()
	}
	wg.Wait()
	if used := l.Status(c).Used; int64(used) != kept.Load() || used > 100 {
		t.Errorf("used %d, kept %d; want equal, at most 100", used, kept.Load())
	}
}
