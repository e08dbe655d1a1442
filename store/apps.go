package store

import (
	"bytes"
	"context"

	"flashotp/apps"
)

var _ apps.Store = (*DB)(nil)

// LoadApps calls app with every stored app and key with every stored key, by ID, from one read
// transaction.
func (db *DB) LoadApps(_ context.Context, app, key func(id string, record []byte) error) error {
	return db.View(func(tx *Tx) error {
		if err := tx.each(bucketApps, app); err != nil {
			return err
		}
		return tx.each(bucketKeys, key)
	})
}

// SaveApps writes apps and keys in one group-committed transaction: each record under its ID, a nil
// record removing its ID.
func (db *DB) SaveApps(_ context.Context, apps, keys map[string][]byte) error {
	return db.Batch(func(tx *Tx) error {
		if err := tx.putAll(bucketApps, apps); err != nil {
			return err
		}
		return tx.putAll(bucketKeys, keys)
	})
}

// each calls fn with a copy of every record of bucket, in key order, until fn fails.
func (t *Tx) each(bucket string, fn func(id string, record []byte) error) error {
	var err error
	t.Scan(bucket, "", "", false, func(k string, v []byte) bool {
		err = fn(k, bytes.Clone(v))
		return err == nil
	})
	return err
}

// putAll stores each record of records under its ID in bucket; a nil record removes its ID.
func (t *Tx) putAll(bucket string, records map[string][]byte) error {
	for id, v := range records {
		var err error
		if v == nil {
			err = t.Delete(bucket, id)
		} else {
			err = t.Put(bucket, id, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
