package store

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The group commit: concurrent writes share transactions, a write that fails gets its own error and
// leaves the others' writes in, a panic is an error, and after Close a write fails without blocking.
func TestCommitter(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "flashotp.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	const writers = 64
	var (
		mu  sync.Mutex
		txs = map[int]int{} // transaction ID → writes in it
		wg  sync.WaitGroup
	)
	errOdd := errors.New("odd")
	for i := range writers {
		wg.Go(func() {
			err := db.batch(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("t"))
				if err != nil {
					return err
				}
				if err := b.Put([]byte{byte(i)}, []byte("v")); err != nil {
					return err
				}
				if i%2 == 1 {
					return errOdd
				}
				mu.Lock()
				txs[tx.ID()]++
				mu.Unlock()
				return nil
			})
			if want := map[bool]error{true: errOdd, false: nil}[i%2 == 1]; !errors.Is(err, want) {
				t.Errorf("writer %d: %v, want %v", i, err, want)
			}
		})
	}
	wg.Wait()
	n := 0
	if err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("t")).ForEach(func(k, _ []byte) error {
			if k[0]%2 == 1 {
				t.Errorf("the write of failed writer %d was kept", k[0])
			}
			n++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if n != writers/2 {
		t.Errorf("%d writes kept, want %d", n, writers/2)
	}
	if len(txs) >= writers/2 {
		t.Errorf("%d writes took %d transactions: no group commit", writers/2, len(txs))
	}
	t.Logf("%d successful writes in %d committed transactions", writers/2, len(txs))
	if err := db.batch(func(*bolt.Tx) error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a panicking write: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.batch(func(*bolt.Tx) error { return nil }); err == nil {
		t.Error("a write after Close succeeded")
	}
}
