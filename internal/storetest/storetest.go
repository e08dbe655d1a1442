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

// Buckets are the buckets the engine writes: otp's verifications, their indexes, events, attempts and
// report counters; webhook's queue; apps' apps and keys; numberpool's pools and quarantines. numberpool's
// "recent" is left out: a pick is written there by a flusher up to 50 ms later, so it may land in the middle
// of whatever a test compares.
var Buckets = []string{
	"verifications", "v_by_app", "v_by_recipient", "v_expiry", "v_open_calls", "events", "attempts", "reports",
	"webhooks", "apps", "keys", "pools", "quarantine",
}

// Snapshot returns a digest of every record of each bucket, by bucket name, for a test to compare before
// and after something that must change nothing.
func Snapshot(t testing.TB, db *store.DB, buckets ...string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(buckets))
	for _, name := range buckets {
		h := sha256.New()
		err := db.Bucket(name).ForEach(func(id string, v []byte) error {
			// Lengths first: no two different sets of records give the same bytes to hash.
			_ = binary.Write(h, binary.BigEndian, [2]uint32{uint32(len(id)), uint32(len(v))})
			h.Write([]byte(id))
			h.Write(v)
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot %s: %v", name, err)
		}
		out[name] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}
