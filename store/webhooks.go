package store

import (
	"context"
	"time"

	"flashotp/webhook"
)

var _ webhook.Store = (*DB)(nil)

// The webhook queue (webhook.Store): deliveries are queued by VerificationTx.PutDelivery, in the
// transaction of the change they report, and read, retried and removed here. ctx is not consulted: bbolt's
// transactions cannot be interrupted.

// Deliveries calls fn with the ID and record of each queued delivery, in the order they were queued, from
// one read transaction, until fn returns false. The record is valid only during the call.
func (db *DB) Deliveries(_ context.Context, fn func(id string, d []byte) bool) error {
	return db.View(func(tx *Tx) error {
		tx.Scan(bucketWebhooks, "", "", false, fn)
		return nil
	})
}

// PutDelivery stores d as the record of delivery id, replacing what was there.
func (db *DB) PutDelivery(_ context.Context, id string, d []byte) error {
	return db.Batch(func(tx *Tx) error { return tx.Put(bucketWebhooks, id, d) })
}

// DeleteDelivery removes delivery id: delivered, or given up.
// Claim always takes the delivery: one engine has a bbolt store.
func (db *DB) Claim(context.Context, string, time.Duration) (bool, error) { return true, nil }

func (db *DB) DeleteDelivery(_ context.Context, id string) error {
	return db.Batch(func(tx *Tx) error { return tx.Delete(bucketWebhooks, id) })
}
