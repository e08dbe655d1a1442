package store

import (
	"context"

	"flashotp/console"
)

var (
	_ console.Store      = (*DB)(nil)
	_ console.AuditStore = (*DB)(nil)
)

// The console's accounts (console.Store) and audit log (console.AuditStore). ctx is not consulted: bbolt's
// transactions cannot be interrupted.

// LoadOperators calls fn with every account, by name, from one read transaction.
func (db *DB) LoadOperators(_ context.Context, fn func(name string, record []byte) error) error {
	return db.View(func(tx *Tx) error { return tx.each(bucketOperators, fn) })
}

// PutOperator stores record under name, group-committed; nil removes name.
func (db *DB) PutOperator(_ context.Context, name string, record []byte) error {
	return db.Batch(func(tx *Tx) error { return tx.putAll(bucketOperators, map[string][]byte{name: record}) })
}

// PutAudit stores an audit entry, group-committed.
func (db *DB) PutAudit(_ context.Context, id string, record []byte) error {
	return db.Batch(func(tx *Tx) error { return tx.Put(bucketAudit, id, record) })
}

// Audit calls fn with the audit entries below before (empty: from the newest), newest first, from one read
// transaction, until fn returns false. The record is valid only during the call.
func (db *DB) Audit(_ context.Context, before string, fn func(id string, record []byte) bool) error {
	return db.View(func(tx *Tx) error {
		tx.Scan(bucketAudit, "", before, true, fn)
		return nil
	})
}
