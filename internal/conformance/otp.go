// Package conformance holds the storage contracts' conformance suites: one behaviour, checked the same way
// on every backend (bbolt in package store, PostgreSQL in store/postgres), each backend's tests calling the
// suite with a fresh store of its own.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"flashotp/otp"
)

// OTP checks an otp.Store: every method of otp.Tx as otp relies on it. open returns a fresh, empty store.
func OTP(t *testing.T, open func(t *testing.T) otp.Store) {
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	// id makes time-ordered IDs as otp's are: a higher n sorts later.
	id := func(prefix string, n int) string { return fmt.Sprintf("%s_%08d", prefix, n) }
	update := func(t *testing.T, s otp.Store, fn func(tx otp.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	view := func(t *testing.T, s otp.Store, fn func(tx otp.Tx)) {
		t.Helper()
		if err := s.View(ctx, func(tx otp.Tx) error { fn(tx); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	create := func(t *testing.T, s otp.Store, n int, app, recipient string) {
		t.Helper()
		update(t, s, func(tx otp.Tx) error {
			return tx.CreateVerification(id("otp", n), app, recipient, at.Add(time.Duration(n)*time.Minute), []byte("rec "+strconv.Itoa(n)))
		})
	}

	t.Run("records", func(t *testing.T) {
		s := open(t)
		create(t, s, 1, "a", "+1")
		view(t, s, func(tx otp.Tx) {
			if got := string(tx.Verification(id("otp", 1))); got != "rec 1" {
				t.Errorf("Verification = %q", got)
			}
			if tx.Verification(id("otp", 2)) != nil {
				t.Error("a missing verification is not nil")
			}
			if !tx.VerificationIs(id("otp", 1), []byte("rec 1")) || tx.VerificationIs(id("otp", 1), []byte("rec 2")) || tx.VerificationIs(id("otp", 1), nil) {
				t.Error("VerificationIs of a stored record")
			}
			if !tx.VerificationIs(id("otp", 2), nil) || tx.VerificationIs(id("otp", 2), []byte("rec 1")) {
				t.Error("VerificationIs of a missing record: nil")
			}
		})
		update(t, s, func(tx otp.Tx) error { return tx.PutVerification(id("otp", 1), []byte("rec 1b")) })
		view(t, s, func(tx otp.Tx) {
			if got := string(tx.Verification(id("otp", 1))); got != "rec 1b" {
				t.Errorf("after PutVerification: %q", got)
			}
		})
		// The value returned is the caller's: changing it changes nothing stored.
		view(t, s, func(tx otp.Tx) { tx.Verification(id("otp", 1))[0] = 'X' })
		view(t, s, func(tx otp.Tx) {
			if got := string(tx.Verification(id("otp", 1))); got != "rec 1b" {
				t.Errorf("changed through a returned value: %q", got)
			}
		})
	})

	t.Run("a failed update keeps nothing", func(t *testing.T) {
		s := open(t)
		create(t, s, 1, "a", "+1")
		refused := errors.New("refused")
		err := s.Update(ctx, func(tx otp.Tx) error {
			if err := tx.PutVerification(id("otp", 1), []byte("changed")); err != nil {
				return err
			}
			if err := tx.CreateVerification(id("otp", 2), "a", "+1", at, []byte("new")); err != nil {
				return err
			}
			if err := tx.PutEvent("a", id("evt", 1), []byte("e")); err != nil {
				return err
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("Update returned %v, want the function's own error", err)
		}
		view(t, s, func(tx otp.Tx) {
			if string(tx.Verification(id("otp", 1))) != "rec 1" || tx.Verification(id("otp", 2)) != nil {
				t.Error("a write of the failed update was kept")
			}
			for range tx.Events("a", "") {
				t.Error("an event of the failed update was kept")
			}
		})
	})

	t.Run("indexes", func(t *testing.T) {
		s := open(t)
		for n := 1; n <= 6; n++ {
			app, recipient := "a", "+1"
			if n%2 == 0 {
				recipient = "+2"
			}
			if n == 5 {
				app = "b"
			}
			create(t, s, n, app, recipient)
		}
		ids := func(seq func(yield func(string, []byte) bool)) []string {
			var out []string
			for k, v := range seq {
				if string(v) != "rec "+strconv.Itoa(atoi(k)) {
					t.Errorf("%s yielded with %q", k, v)
				}
				out = append(out, k)
			}
			return out
		}
		view(t, s, func(tx otp.Tx) {
			check := func(what string, got []string, want ...int) {
				t.Helper()
				var w []string
				for _, n := range want {
					w = append(w, id("otp", n))
				}
				if !slices.Equal(got, w) {
					t.Errorf("%s = %v, want %v", what, got, w)
				}
			}
			check("ByApp(a)", ids(tx.ByApp("a", "")), 6, 4, 3, 2, 1)
			check("ByApp(a, before 4)", ids(tx.ByApp("a", id("otp", 4))), 3, 2, 1)
			check("ByApp(b)", ids(tx.ByApp("b", "")), 5)
			check("ByApp(c)", ids(tx.ByApp("c", "")))
			check("ByRecipient(a, +2)", ids(tx.ByRecipient("a", "+2", "")), 6, 4, 2)
			check("ByRecipient(a, +1, before 3)", ids(tx.ByRecipient("a", "+1", id("otp", 3))), 1)
			check("Verifications", ids(tx.Verifications()), 1, 2, 3, 4, 5, 6)
			check("VerificationsFrom(3)", ids(tx.VerificationsFrom(id("otp", 3))), 3, 4, 5, 6)
			check("VerificationsFrom(between 3 and 4)", ids(tx.VerificationsFrom(id("otp", 3)+"0")), 4, 5, 6)
			var first []string
			for k := range tx.ByApp("a", "") {
				first = append(first, k)
				break
			}
			check("ByApp stopped after one", first, 6)
		})
		update(t, s, func(tx otp.Tx) error {
			return tx.DeleteVerification(id("otp", 4), "a", "+2", at.Add(4*time.Minute))
		})
		view(t, s, func(tx otp.Tx) {
			if got := ids(tx.ByRecipient("a", "+2", "")); !slices.Equal(got, []string{id("otp", 6), id("otp", 2)}) {
				t.Errorf("ByRecipient after a delete = %v", got)
			}
			if tx.Verification(id("otp", 4)) != nil {
				t.Error("deleted record still there")
			}
		})
	})

	t.Run("many rows, queries inside the loop", func(t *testing.T) {
		s := open(t)
		const n = 1234 // more than one page of any backend that reads in pages
		update(t, s, func(tx otp.Tx) error {
			for i := 1; i <= n; i++ {
				if err := tx.CreateVerification(id("otp", i), "a", "+1", at, []byte("rec "+strconv.Itoa(i))); err != nil {
					return err
				}
			}
			return nil
		})
		view(t, s, func(tx otp.Tx) {
			want := n
			for k, v := range tx.ByApp("a", "") {
				if k != id("otp", want) || string(tx.Verification(k)) != string(v) {
					t.Fatalf("ByApp yielded %s (%q), want %s", k, v, id("otp", want))
				}
				want--
			}
			if want != 0 {
				t.Errorf("ByApp stopped %d short", want)
			}
			count := 0
			for k := range tx.Verifications() {
				count++
				if k != id("otp", count) {
					t.Fatalf("Verifications yielded %s at %d", k, count)
				}
			}
			if count != n {
				t.Errorf("Verifications yielded %d of %d", count, n)
			}
		})
	})

	t.Run("expiry", func(t *testing.T) {
		s := open(t)
		create(t, s, 1, "a", "+1") // expires at +1 min
		update(t, s, func(tx otp.Tx) error {
			if err := tx.PutExpiry(id("otp", 1), at.Add(30*time.Second+400*time.Microsecond)); err != nil {
				return err
			}
			return tx.PutExpiry(id("otp", 2), at.Add(90*time.Second))
		})
		type entry struct {
			id string
			at time.Time
		}
		expiring := func(until time.Time) []entry {
			var out []entry
			view(t, s, func(tx otp.Tx) {
				for k, when := range tx.Expiring(until) {
					out = append(out, entry{k, when.UTC()})
				}
			})
			return out
		}
		want := []entry{{id("otp", 1), at.Add(30 * time.Second)}, {id("otp", 1), at.Add(time.Minute)}, {id("otp", 2), at.Add(90 * time.Second)}}
		if got := expiring(at.Add(time.Hour)); !slices.Equal(got, want) {
			t.Errorf("Expiring = %v, want %v (to the millisecond, earliest first)", got, want)
		}
		if got := expiring(at.Add(time.Minute + 999*time.Microsecond)); !slices.Equal(got, want[:2]) {
			t.Errorf("Expiring(until 1 min, to the millisecond) = %v, want %v", got, want[:2])
		}
		if got := expiring(at.Add(30*time.Second - time.Millisecond)); len(got) != 0 {
			t.Errorf("Expiring before the first = %v", got)
		}
		update(t, s, func(tx otp.Tx) error {
			return tx.DeleteExpiry(id("otp", 1), at.Add(30*time.Second+700*time.Microsecond))
		})
		if got := expiring(at.Add(time.Hour)); !slices.Equal(got, want[1:]) {
			t.Errorf("after DeleteExpiry (same millisecond) = %v, want %v", got, want[1:])
		}
		update(t, s, func(tx otp.Tx) error { return tx.DeleteVerification(id("otp", 1), "a", "+1", at.Add(time.Minute)) })
		if got := expiring(at.Add(time.Hour)); !slices.Equal(got, want[2:]) {
			t.Errorf("after DeleteVerification = %v, want %v", got, want[2:])
		}
	})

	t.Run("events and attempts", func(t *testing.T) {
		s := open(t)
		update(t, s, func(tx otp.Tx) error {
			for n := 1; n <= 5; n++ {
				app := "a"
				if n == 3 {
					app = "b"
				}
				if err := tx.PutEvent(app, id("evt", n), []byte("e"+strconv.Itoa(n))); err != nil {
					return err
				}
			}
			for _, vid := range []string{id("otp", 1), id("otp", 2)} {
				for n := 1; n <= 3; n++ {
					if err := tx.PutAttempt(vid, id("att", n), []byte(vid+" "+strconv.Itoa(n))); err != nil {
						return err
					}
				}
			}
			return tx.CreateVerification(id("otp", 1), "a", "+1", at, []byte("rec"))
		})
		view(t, s, func(tx otp.Tx) {
			var got []string
			for k, v := range tx.Events("a", "") {
				got = append(got, k+"="+string(v))
			}
			if want := []string{id("evt", 5) + "=e5", id("evt", 4) + "=e4", id("evt", 2) + "=e2", id("evt", 1) + "=e1"}; !slices.Equal(got, want) {
				t.Errorf("Events(a) = %v, want %v", got, want)
			}
			got = nil
			for k := range tx.Events("a", id("evt", 4)) {
				got = append(got, k)
			}
			if want := []string{id("evt", 2), id("evt", 1)}; !slices.Equal(got, want) {
				t.Errorf("Events(a, before 4) = %v, want %v", got, want)
			}
			if got := slices.Collect(tx.OldestEvents("a")); !slices.Equal(got, []string{id("evt", 1), id("evt", 2), id("evt", 4), id("evt", 5)}) {
				t.Errorf("OldestEvents(a) = %v", got)
			}
			if got := slices.Collect(tx.EventApps()); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("EventApps = %v", got)
			}
			var atts []string
			for k, v := range tx.Attempts(id("otp", 2)) {
				atts = append(atts, k+"="+string(v))
			}
			if want := []string{id("att", 3) + "=" + id("otp", 2) + " 3", id("att", 2) + "=" + id("otp", 2) + " 2", id("att", 1) + "=" + id("otp", 2) + " 1"}; !slices.Equal(atts, want) {
				t.Errorf("Attempts = %v, want %v", atts, want)
			}
		})
		update(t, s, func(tx otp.Tx) error {
			if err := tx.DeleteEvent("b", id("evt", 3)); err != nil {
				return err
			}
			return tx.DeleteVerification(id("otp", 1), "a", "+1", at)
		})
		view(t, s, func(tx otp.Tx) {
			if got := slices.Collect(tx.EventApps()); !slices.Equal(got, []string{"a"}) {
				t.Errorf("EventApps after the last of b went = %v", got)
			}
			for range tx.Attempts(id("otp", 1)) {
				t.Error("an attempt of a deleted verification is left")
			}
			if n := len(slices.Collect(maps.Keys(maps.Collect(tx.Attempts(id("otp", 2)))))); n != 3 {
				t.Errorf("another verification's attempts: %d", n)
			}
		})
	})

	t.Run("report rows and meta", func(t *testing.T) {
		s := open(t)
		update(t, s, func(tx otp.Tx) error {
			for _, r := range [][4]string{
				{"a", "2026-12-04", "day", "x"}, {"a", "2026-12-05", "day", "y"}, {"a", "2026-12-05", "day", "x"},
				{"a", "2026-12-05", "country", "US"}, {"a", "2026-12-07", "day", "z"}, {"b", "2026-12-05", "day", "x"},
				{"", "2026-12-05", "retired/day", "a/x"},
			} {
				if err := tx.PutReportRow(r[0], r[1], r[2], r[3], []byte(r[0]+r[1]+r[2]+r[3])); err != nil {
					return err
				}
			}
			return tx.PutMeta("reports", []byte("mark"))
		})
		view(t, s, func(tx otp.Tx) {
			var got []string
			for k, v := range tx.ReportRows("a", "day", "2026-12-05", "2026-12-07") {
				got = append(got, k+"="+string(v))
			}
			if want := []string{"x=a2026-12-05dayx", "y=a2026-12-05dayy", "z=a2026-12-07dayz"}; !slices.Equal(got, want) {
				t.Errorf("ReportRows = %v, want %v (day by day, keys in order)", got, want)
			}
			if got := string(tx.ReportRow("a", "2026-12-05", "country", "US")); got != "a2026-12-05countryUS" {
				t.Errorf("ReportRow = %q", got)
			}
			if tx.ReportRow("a", "2026-12-06", "day", "x") != nil {
				t.Error("a missing report row is not nil")
			}
			if got := slices.Collect(tx.ReportApps()); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("ReportApps = %v (the retired rows' app \"\" is not an app)", got)
			}
			if got := string(tx.Meta("reports")); got != "mark" || tx.Meta("other") != nil {
				t.Errorf("Meta = %q", got)
			}
			var all []string
			for k, v := range tx.AllReportRows("a") {
				all = append(all, k.Day+" "+k.Group+" "+k.Key+"="+string(v))
			}
			if want := []string{"2026-12-04 day x=a2026-12-04dayx", "2026-12-05 country US=a2026-12-05countryUS",
				"2026-12-05 day x=a2026-12-05dayx", "2026-12-05 day y=a2026-12-05dayy", "2026-12-07 day z=a2026-12-07dayz"}; !slices.Equal(all, want) {
				t.Errorf("AllReportRows(a) = %q, want %q", all, want)
			}
			if got := slices.Collect(maps.Keys(maps.Collect(tx.AllReportRows("")))); len(got) != 1 || got[0] != (otp.ReportKey{Day: "2026-12-05", Group: "retired/day", Key: "a/x"}) {
				t.Errorf("AllReportRows of the retired rows = %v", got)
			}
			var retired []string
			for k := range tx.ReportRows("", "retired/day", "2026-12-05", "2026-12-05") {
				retired = append(retired, k)
			}
			if !slices.Equal(retired, []string{"a/x"}) {
				t.Errorf("retired rows = %q", retired)
			}
		})
		update(t, s, func(tx otp.Tx) error {
			if err := tx.PutMeta("reports", []byte("mark 2")); err != nil {
				return err
			}
			return tx.DeleteReportRow("b", "2026-12-05", "day", "x")
		})
		view(t, s, func(tx otp.Tx) {
			if got := slices.Collect(tx.ReportApps()); !slices.Equal(got, []string{"a"}) || string(tx.Meta("reports")) != "mark 2" {
				t.Errorf("after the changes: ReportApps %v, Meta %q", got, tx.Meta("reports"))
			}
		})
	})

	t.Run("changes of one record take turns", func(t *testing.T) {
		// otp changes a record by reading it, then storing the new one only if the stored one is still what
		// it read (VerificationIs), else starting over: concurrent changes must never be lost.
		s := open(t)
		update(t, s, func(tx otp.Tx) error { return tx.CreateVerification(id("otp", 1), "a", "+1", at, []byte("0")) })
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for {
						var read []byte
						if err := s.View(ctx, func(tx otp.Tx) error { read = tx.Verification(id("otp", 1)); return nil }); err != nil {
							errs <- err
							return
						}
						next := []byte(strconv.Itoa(atoi(string(read)) + 1))
						raced := errors.New("raced")
						err := s.Update(ctx, func(tx otp.Tx) error {
							if !tx.VerificationIs(id("otp", 1), read) {
								return raced
							}
							return tx.PutVerification(id("otp", 1), next)
						})
						if err == nil {
							break
						}
						if !errors.Is(err, raced) {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		view(t, s, func(tx otp.Tx) {
			if got := string(tx.Verification(id("otp", 1))); got != strconv.Itoa(workers*each) {
				t.Errorf("after %d changes the count is %s", workers*each, got)
			}
		})
	})
}

// atoi is the number at the end of s (after its last '_' or space), 0 for none.
func atoi(s string) int {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return n
}
