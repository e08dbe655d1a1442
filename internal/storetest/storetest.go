// Package storetest opens real stores for tests: a bbolt file in t.TempDir(), closed when the test ends
// (bbolt's btesting.MustCreateDB habit).
package storetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// Snapshot returns a digest of every record of each of store.SettledBuckets, by bucket name, for a test to
// compare before and after something that must change nothing.
func Snapshot(t testing.TB, db *store.DB) map[string]string {
	t.Helper()
	out := make(map[string]string, len(store.SettledBuckets))
	err := db.View(func(tx *store.Tx) error {
		for _, name := range store.SettledBuckets {
			h := sha256.New()
			tx.Scan(name, "", "", false, func(id string, v []byte) bool {
				// Lengths first: no two different sets of records give the same bytes to hash.
				_ = binary.Write(h, binary.BigEndian, [2]uint32{uint32(len(id)), uint32(len(v))})
				h.Write([]byte(id))
				h.Write(v)
				return true
			})
			out[name] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return out
}
