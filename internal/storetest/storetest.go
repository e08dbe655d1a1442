// Package storetest opens real stores for tests: a bbolt file in t.TempDir(), closed when the test ends
// (bbolt's btesting.MustCreateDB habit).
package storetest

import (
	"path/filepath"
	"testing"

	"flashotp/store"
)

// Open opens a store on a fresh directory and closes it in t.Cleanup.
func Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "flashotp.db"), "")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}
