package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// Tx is one transaction over any number of buckets: a verification, its index keys, its events, its report
// counters and its webhook deliveries are written together or not at all.
type Tx struct {
	tx    *bolt.Tx
	wrote bool
}

// Batch runs fn in a group-committed write transaction (see the package comment) and returns once it is on
// disk. If fn fails, nothing it wrote is kept and Batch returns fn's error. fn may run more than once, so it
// must only compute from what it reads.
func (db *DB) Batch(fn func(tx *Tx) error) error {
	var refused error
	err := db.batch(func(btx *bolt.Tx) error {
		refused = nil
		tx := &Tx{tx: btx}
		err := fn(tx)
		if err != nil && !tx.wrote {
			// Nothing written: the other calls sharing the batch need not be rolled back with it.
			refused = err
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return refused
}

// View runs fn in a read transaction: a consistent snapshot.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.view(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// fillPercent is how full bbolt packs a page before it splits. Most keys here grow with time (ULIDs,
// expiry times), so new keys land at the end of the last page: at bbolt's default of 0.5 every page would
// stay half empty, doubling the file.
const fillPercent = 0.9

func (t *Tx) bucket(name string, create bool) (*bolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil && create {
		t.wrote = true
		var err error
		if b, err = t.tx.CreateBucket([]byte(name)); err != nil {
			return nil, err
		}
	}
	if b != nil {
		b.FillPercent = fillPercent
	}
	return b, nil
}

// Get returns a copy of the value under key in bucket, or nil.
func (t *Tx) Get(bucket, key string) []byte {
	b, _ := t.bucket(bucket, false)
	if b == nil {
		return nil
	}
	return bytes.Clone(b.Get([]byte(key)))
}

// Equal reports whether the value under key in bucket is value (a missing key equals nil).
func (t *Tx) Equal(bucket, key string, value []byte) bool {
	b, _ := t.bucket(bucket, false)
	if b == nil {
		return value == nil
	}
	return bytes.Equal(b.Get([]byte(key)), value)
}

// Put stores value under key in bucket.
func (t *Tx) Put(bucket, key string, value []byte) error {
	b, err := t.bucket(bucket, true)
	if err != nil {
		return err
	}
	t.wrote = true
	return b.Put([]byte(key), value)
}

// Delete removes key from bucket; a missing key is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b, _ := t.bucket(bucket, false)
	if b == nil {
		return nil
	}
	t.wrote = true
	return b.Delete([]byte(key))
}

// Scan calls fn with the records of bucket whose keys start with prefix, in key order (descending when desc),
// starting after the key after (exclusive; empty: the first or last key of the prefix), until fn returns
// false. The value passed to fn is valid only during the call.
func (t *Tx) Scan(bucket, prefix, after string, desc bool, fn func(key string, value []byte) bool) {
	b, _ := t.bucket(bucket, false)
	if b == nil {
		return
	}
	c := b.Cursor()
	p := []byte(prefix)
	var k, v []byte
	switch {
	case !desc && after == "":
		k, v = c.Seek(p)
	case !desc:
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	default:
		// Descending: start at the last key below the bound (after, or the end of the prefix range).
		bound := []byte(after)
		if after == "" {
			bound = prefixEnd(p)
		}
		if bound == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(bound); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for k != nil && bytes.HasPrefix(k, p) {
		if !fn(string(k), v) {
			return
		}
		if desc {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
}

// prefixEnd returns the smallest key above every key starting with p, or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
