package console_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"flashotp/console"
	"flashotp/internal/storetest"
	"flashotp/internal/testclock"
)

// Accounts outlive the engine: an operator added is there, with its password, after the store reopens.
func TestAccountsPersist(t *testing.T) {
	db := storetest.Open(t)
	a, err := console.LoadAccounts(t.Context(), db, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(t.Context(), "vera", console.RoleViewer, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	again, err := console.LoadAccounts(t.Context(), db, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	op, err := again.Authenticate("vera", "correct horse battery")
	if err != nil || op.Name != "vera" || op.Role != console.RoleViewer {
		t.Fatalf("after reload: %+v %v", op, err)
	}
	for _, c := range [][2]string{{"vera", "correct horse batter"}, {"vera", ""}, {"ghost", "correct horse battery"}} {
		if _, err := again.Authenticate(c[0], c[1]); !errors.Is(err, console.ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}
	if err := again.Remove(t.Context(), "vera"); err != nil {
		t.Fatal(err)
	}
	if third, _ := console.LoadAccounts(t.Context(), db, bcrypt.MinCost); len(third.List()) != 0 {
		t.Errorf("removed operator still stored: %v", third.List())
	}
}

func TestSessions(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ss := console.NewSessions(10*time.Minute, time.Hour, clock.Now)
	s := ss.Begin(console.Operator{Name: "vera", Role: console.RoleViewer})
	other := ss.Begin(console.Operator{Name: "olga", Role: console.RoleAdmin})
	if s.ID == other.ID || s.CSRF == other.CSRF || len(s.ID) < 43 || s.ID == s.CSRF {
		t.Fatalf("session IDs and tokens not distinct 256-bit values: %+v %+v", s, other)
	}
	if !s.CheckCSRF(s.CSRF) || s.CheckCSRF(other.CSRF) || s.CheckCSRF("") {
		t.Error("CheckCSRF takes another session's token or none")
	}
	clock.Advance(9 * time.Minute)
	if _, ok := ss.Get(s.ID); !ok {
		t.Fatal("a session used within its idle timeout ended")
	}
	ss.EndOperator("olga")
	if _, ok := ss.Get(other.ID); ok {
		t.Error("EndOperator left the operator's session")
	}
	clock.Advance(10 * time.Minute)
	if _, ok := ss.Get(s.ID); ok {
		t.Error("a session unused for its idle timeout lives on")
	}
}

func TestAuditPages(t *testing.T) {
	db := storetest.Open(t)
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	a := console.NewAudit(db, clock.Now)
	for i := range 5 {
		if _, err := a.Record(t.Context(), console.Entry{Operator: "vera", Action: "reveal", Target: string(rune('a' + i)), Detail: string(make([]byte, 2000))}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := a.List(t.Context(), "", 3)
	if err != nil || len(page.Items) != 3 || page.NextCursor == "" || page.Items[0].Target != "e" {
		t.Fatalf("first page %+v %v", page, err)
	}
	if len(page.Items[0].Detail) > console.MaxDetail+len("…") {
		t.Errorf("detail of %d bytes kept", len(page.Items[0].Detail))
	}
	page, err = a.List(t.Context(), page.NextCursor, 3)
	if err != nil || len(page.Items) != 2 || page.NextCursor != "" || page.Items[1].Target != "a" {
		t.Fatalf("second page %+v %v", page, err)
	}
}
