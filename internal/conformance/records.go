package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/console"
	"flashotp/numberpool"
	"flashotp/totp"
	"flashotp/webhook"
)

// Records is what a backend keeps beside otp's records: apps and keys, pools, quarantines and recent calls,
// webhook deliveries, TOTP enrollments, console operators and the audit log.
type Records interface {
	apps.Store
	numberpool.Store
	webhook.Store
	totp.Store
	console.Store
	console.AuditStore
}

// RecordStores checks the stores of Records: each as its package relies on it. open returns a fresh,
// empty store.
func RecordStores(t *testing.T, open func(t *testing.T) Records) {
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// collect reads a Load* method's calls as a map, checking they come in key order.
	collect := func(t *testing.T, load func(fn func(k string, v []byte) error) error) map[string]string {
		t.Helper()
		out, last := map[string]string{}, ""
		must(t, load(func(k string, v []byte) error {
			if k <= last && last != "" {
				t.Errorf("%q came after %q", k, last)
			}
			last, out[k] = k, string(v)
			return nil
		}))
		return out
	}

	t.Run("apps and keys", func(t *testing.T) {
		s := open(t)
		must(t, s.SaveApps(ctx, map[string][]byte{"a": []byte("app a"), "b": []byte("app b")}, map[string][]byte{"k1": []byte("key 1")}))
		must(t, s.SaveApps(ctx, map[string][]byte{"b": nil, "c": []byte("app c"), "zzz": nil}, map[string][]byte{"k2": []byte("key 2")}))
		got := map[string]string{}
		must(t, s.LoadApps(ctx, func(id string, r []byte) error { got["app "+id] = string(r); return nil },
			func(id string, r []byte) error { got["key "+id] = string(r); return nil }))
		want := map[string]string{"app a": "app a", "app c": "app c", "key k1": "key 1", "key k2": "key 2"}
		if !maps.Equal(got, want) {
			t.Errorf("LoadApps = %v, want %v", got, want)
		}
		stop := errors.New("stop")
		if err := s.LoadApps(ctx, func(string, []byte) error { return stop }, func(string, []byte) error { return nil }); !errors.Is(err, stop) {
			t.Errorf("LoadApps returned %v, want the callback's error", err)
		}
	})

	t.Run("pools, quarantines, recent calls", func(t *testing.T) {
		s := open(t)
		must(t, s.PutPool(ctx, "uk", []byte("pool uk")))
		must(t, s.PutPool(ctx, "de", []byte("pool de")))
		must(t, s.PutPool(ctx, "uk", []byte("pool uk 2")))
		must(t, s.DeletePool(ctx, "de"))
		must(t, s.DeletePool(ctx, "missing"))
		if got := collect(t, func(fn func(string, []byte) error) error { return s.LoadPools(ctx, fn) }); !maps.Equal(got, map[string]string{"uk": "pool uk 2"}) {
			t.Errorf("LoadPools = %v", got)
		}
		must(t, s.PutQuarantine(ctx, "cli:+1", []byte("q1")))
		must(t, s.PutQuarantine(ctx, "entry:uk/0", []byte("q2")))
		must(t, s.DeleteQuarantine(ctx, "cli:+1"))
		if got := collect(t, func(fn func(string, []byte) error) error { return s.LoadQuarantines(ctx, fn) }); !maps.Equal(got, map[string]string{"entry:uk/0": "q2"}) {
			t.Errorf("LoadQuarantines = %v", got)
		}
		if v, err := s.RecentCalls(ctx, "+1"); err != nil || v != nil {
			t.Errorf("RecentCalls of nobody = %q, %v", v, err)
		}
		must(t, s.PutUses(ctx, "node-b", []byte("uses b")))
		must(t, s.PutUses(ctx, "node-a", []byte("uses a")))
		must(t, s.PutUses(ctx, "node-a", []byte("uses a2")))
		if got := collect(t, func(fn func(string, []byte) error) error { return s.LoadUses(ctx, fn) }); !maps.Equal(got, map[string]string{"node-a": "uses a2", "node-b": "uses b"}) {
			t.Errorf("LoadUses = %v", got)
		}
		must(t, s.PutRecentCalls(ctx, map[string][]byte{"+1": []byte("h1"), "+2": []byte("h2")}))
		must(t, s.PutRecentCalls(ctx, map[string][]byte{"+1": []byte("h1b")}))
		if v, err := s.RecentCalls(ctx, "+1"); err != nil || string(v) != "h1b" {
			t.Errorf("RecentCalls = %q, %v", v, err)
		}
	})

	t.Run("recent calls swapped", func(t *testing.T) {
		s := open(t)
		swap := func(recipient, old, next string, want bool) {
			t.Helper()
			var o []byte
			if old != "" {
				o = []byte(old)
			}
			if ok, err := s.SwapRecentCalls(ctx, recipient, o, []byte(next)); err != nil || ok != want {
				t.Errorf("SwapRecentCalls(%s, %q, %q) = %v, %v; want %v", recipient, old, next, ok, err, want)
			}
		}
		swap("+1", "", "a", true)
		swap("+1", "", "b", false) // one is stored now
		swap("+1", "x", "b", false)
		swap("+1", "a", "b", true)
		swap("+2", "a", "b", false) // none is stored
		if v, err := s.RecentCalls(ctx, "+1"); err != nil || string(v) != "b" {
			t.Errorf("RecentCalls = %q, %v; want b", v, err)
		}
		// Of many writers that read the same history, exactly one wins each round.
		const writers, rounds = 8, 10
		wins := make([]int, writers)
		for round := range rounds {
			old, err := s.RecentCalls(ctx, "+3")
			must(t, err)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.SwapRecentCalls(ctx, "+3", old, []byte(fmt.Sprint(round, "/", w)))
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins[w]++
					}
				}()
			}
			wg.Wait()
		}
		total := 0
		for _, n := range wins {
			total += n
		}
		if total != rounds {
			t.Errorf("%d swaps won over %d rounds of %d writers, want one a round", total, rounds, writers)
		}
	})

	t.Run("webhook deliveries", func(t *testing.T) {
		s := open(t)
		for n := 3; n >= 1; n-- {
			must(t, s.PutDelivery(ctx, fmt.Sprintf("whd_%02d", n), []byte(fmt.Sprint("d", n))))
		}
		if ok, err := s.Claim(ctx, "whd_02", time.Minute); err != nil || !ok {
			t.Errorf("Claim of a delivery nobody holds = %v, %v", ok, err)
		}
		must(t, s.PutDelivery(ctx, "whd_02", []byte("d2 again"))) // ends the hold
		if ok, err := s.Claim(ctx, "whd_02", time.Minute); err != nil || !ok {
			t.Errorf("Claim after PutDelivery = %v, %v", ok, err)
		}
		must(t, s.DeleteDelivery(ctx, "whd_03"))
		var got []string
		must(t, s.Deliveries(ctx, func(id string, d []byte) bool { got = append(got, id+"="+string(d)); return true }))
		if want := []string{"whd_01=d1", "whd_02=d2 again"}; !slices.Equal(got, want) {
			t.Errorf("Deliveries = %v, want %v (in the order of their IDs)", got, want)
		}
		got = nil
		must(t, s.Deliveries(ctx, func(id string, _ []byte) bool { got = append(got, id); return false }))
		if len(got) != 1 {
			t.Errorf("Deliveries went on after false: %v", got)
		}
	})

	t.Run("totp enrollments", func(t *testing.T) {
		s := open(t)
		if _, err := s.Enrollment(ctx, "a", "u"); !errors.Is(err, totp.ErrNotEnrolled) {
			t.Errorf("Enrollment of nobody: %v", err)
		}
		must(t, s.PutEnrollment(ctx, "a", "u", []byte("e1"), false))
		if err := s.PutEnrollment(ctx, "a", "u", []byte("e2"), false); !errors.Is(err, totp.ErrEnrolled) {
			t.Errorf("a second enrollment without replace: %v", err)
		}
		must(t, s.PutEnrollment(ctx, "b", "u", []byte("other app"), false))
		must(t, s.UpdateEnrollment(ctx, "a", "u", func(r []byte) ([]byte, error) { return append(r, '+'), nil }))
		refused := errors.New("refused")
		if err := s.UpdateEnrollment(ctx, "a", "u", func([]byte) ([]byte, error) { return []byte("no"), refused }); !errors.Is(err, refused) {
			t.Errorf("UpdateEnrollment returned %v, want fn's error", err)
		}
		if v, err := s.Enrollment(ctx, "a", "u"); err != nil || string(v) != "e1+" {
			t.Errorf("Enrollment = %q, %v", v, err)
		}
		if err := s.UpdateEnrollment(ctx, "a", "nobody", func(r []byte) ([]byte, error) { return r, nil }); !errors.Is(err, totp.ErrNotEnrolled) {
			t.Errorf("UpdateEnrollment of nobody: %v", err)
		}
		got := map[string]string{}
		must(t, s.Enrollments(ctx, func(app, user string, r []byte) error { got[app+"/"+user] = string(r); return nil }))
		if want := map[string]string{"a/u": "e1+", "b/u": "other app"}; !maps.Equal(got, want) {
			t.Errorf("Enrollments = %v, want %v", got, want)
		}
		must(t, s.PutEnrollment(ctx, "a", "u", []byte("e3"), true))
		must(t, s.DeleteEnrollment(ctx, "a", "u"))
		if err := s.DeleteEnrollment(ctx, "a", "u"); !errors.Is(err, totp.ErrNotEnrolled) {
			t.Errorf("a second delete: %v", err)
		}
		if v, err := s.Enrollment(ctx, "b", "u"); err != nil || string(v) != "other app" {
			t.Errorf("the other app's enrollment = %q, %v", v, err)
		}
	})

	t.Run("operators and audit", func(t *testing.T) {
		s := open(t)
		must(t, s.PutOperator(ctx, "ann", []byte("op ann")))
		must(t, s.PutOperator(ctx, "bob", []byte("op bob")))
		must(t, s.PutOperator(ctx, "ann", nil))
		if got := collect(t, func(fn func(string, []byte) error) error { return s.LoadOperators(ctx, fn) }); !maps.Equal(got, map[string]string{"bob": "op bob"}) {
			t.Errorf("LoadOperators = %v", got)
		}
		const n = 1203 // more than a page of a backend that reads in pages
		for i := 1; i <= n; i++ {
			must(t, s.PutAudit(ctx, fmt.Sprintf("aud_%05d", i), []byte(fmt.Sprint(i))))
		}
		want := n
		must(t, s.Audit(ctx, "", func(id string, r []byte) bool {
			if id != fmt.Sprintf("aud_%05d", want) || string(r) != fmt.Sprint(want) {
				t.Fatalf("Audit yielded %s=%s, want %d", id, r, want)
			}
			want--
			return true
		}))
		if want != 0 {
			t.Errorf("Audit stopped %d short", want)
		}
		var got []string
		must(t, s.Audit(ctx, "aud_00003", func(id string, _ []byte) bool { got = append(got, id); return true }))
		if !slices.Equal(got, []string{"aud_00002", "aud_00001"}) {
			t.Errorf("Audit below aud_00003 = %v", got)
		}
	})
}
