package store

import (
	"bytes"
	"context"

	"flashotp/numberpool"
)

var _ numberpool.Store = (*DB)(nil)

// LoadPools calls fn with a copy of every stored number pool, in name order, from one read transaction.
func (db *DB) LoadPools(_ context.Context, fn func(name string, pool []byte) error) error {
	return db.bucket(bucketPools).ForEach(fn)
}

// PutPool stores a number pool under its name.
func (db *DB) PutPool(_ context.Context, name string, pool []byte) error {
	return db.bucket(bucketPools).Put(name, pool)
}

// DeletePool removes the number pool called name.
func (db *DB) DeletePool(_ context.Context, name string) error {
	return db.bucket(bucketPools).Delete(name)
}

// LoadQuarantines calls fn with a copy of every stored quarantine, in key order, from one read transaction.
func (db *DB) LoadQuarantines(_ context.Context, fn func(key string, q []byte) error) error {
	return db.bucket(bucketQuarantine).ForEach(fn)
}

// PutQuarantine stores a quarantine under key.
func (db *DB) PutQuarantine(_ context.Context, key string, q []byte) error {
	return db.bucket(bucketQuarantine).Put(key, q)
}

// DeleteQuarantine removes the quarantine under key.
func (db *DB) DeleteQuarantine(_ context.Context, key string) error {
	return db.bucket(bucketQuarantine).Delete(key)
}

// RecentCalls returns a copy of recipient's stored history of recent calls, or nil when there is none.
func (db *DB) RecentCalls(_ context.Context, recipient string) ([]byte, error) {
	var out []byte
	err := db.View(func(tx *Tx) error {
		out = tx.Get(bucketRecent, recipient)
		return nil
	})
	return out, err
}

// PutRecentCalls stores each recipient's history in one group-committed transaction.
func (db *DB) PutRecentCalls(_ context.Context, histories map[string][]byte) error {
	return db.bucket(bucketRecent).PutMany(histories)
}

// SwapRecentCalls stores next as recipient's history if the stored one is still old (nil: none is stored),
// in one group-committed transaction, and reports whether it did.
func (db *DB) SwapRecentCalls(_ context.Context, recipient string, old, next []byte) (bool, error) {
	var swapped bool
	err := db.Batch(func(tx *Tx) error {
		stored := tx.Get(bucketRecent, recipient)
		if swapped = bytes.Equal(stored, old) && (stored == nil) == (old == nil); !swapped {
			return nil
		}
		return tx.Put(bucketRecent, recipient, next)
	})
	return swapped && err == nil, err
}

// PutUses stores node's use counts, replacing what was there.
func (db *DB) PutUses(_ context.Context, node string, uses []byte) error {
	return db.bucket(bucketUses).Put(node, uses)
}

// LoadUses calls fn with every node's stored use counts, from one read transaction.
func (db *DB) LoadUses(_ context.Context, fn func(node string, uses []byte) error) error {
	return db.bucket(bucketUses).ForEach(fn)
}
