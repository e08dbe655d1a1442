package store

import (
	"context"
	"iter"
	"strings"
	"time"

	"flashotp/otp"
	"flashotp/webhook"
)

var (
	_ otp.Store      = Verifications{}
	_ otp.Tx         = (*VerificationTx)(nil)
	_ webhook.Outbox = (*VerificationTx)(nil)
)

// Verifications is the store as otp uses it (otp.Store): verifications with their indexes, events,
// verify attempts, report counters and webhook deliveries, written together in one transaction.
type Verifications struct{ db *DB }

// Verifications returns db as otp's store.
func (db *DB) Verifications() Verifications { return Verifications{db: db} }

// View runs fn in a read transaction: a consistent snapshot. bbolt's transactions cannot be interrupted,
// so ctx is not consulted.
func (v Verifications) View(_ context.Context, fn func(otp.Tx) error) error {
	return v.db.View(func(tx *Tx) error { return fn(&VerificationTx{tx: tx}) })
}

// Update runs fn in a group-committed write transaction (DB.Batch) and returns once it is on disk. If fn
// fails, nothing it wrote is kept; fn may run more than once. ctx is not consulted, as for View.
func (v Verifications) Update(_ context.Context, fn func(otp.Tx) error) error {
	return v.db.Batch(func(tx *Tx) error { return fn(&VerificationTx{tx: tx}) })
}

// VerificationTx is one transaction over otp's records (otp.Tx). Records are the bytes otp encodes; the
// keys they are found by are this package's (schema.go). The values its iterators yield are valid only
// while the iteration runs.
type VerificationTx struct{ tx *Tx }

// Verification returns a copy of the record of verification id, or nil.
func (t *VerificationTx) Verification(id string) []byte { return t.tx.Get(bucketVerifications, id) }

// VerificationIs reports whether the record of verification id is rec (a missing one is nil).
func (t *VerificationTx) VerificationIs(id string, rec []byte) bool {
	return t.tx.Equal(bucketVerifications, id, rec)
}

// PutVerification stores rec as the record of verification id, replacing what was there.
func (t *VerificationTx) PutVerification(id string, rec []byte) error {
	return t.tx.Put(bucketVerifications, id, rec)
}

// CreateVerification stores rec as the record of a new verification id of app for recipient, expiring at
// expiresAt, with its index entries: by app, by recipient, by expiry.
func (t *VerificationTx) CreateVerification(id, app, recipient string, expiresAt time.Time, rec []byte) error {
	if err := t.PutVerification(id, rec); err != nil {
		return err
	}
	for _, k := range []struct{ bucket, key string }{
		{bucketByApp, byAppKey(app, id)},
		{bucketByRecipient, byRecipientPrefix(app, recipient) + id},
		{bucketExpiry, expiryKey(expiresAt, id)},
	} {
		if err := t.tx.Put(k.bucket, k.key, nil); err != nil {
			return err
		}
	}
	return nil
}

// DeleteVerification removes verification id (of app, for recipient, expiring at expiresAt) with its
// index entries and its verify attempts.
func (t *VerificationTx) DeleteVerification(id, app, recipient string, expiresAt time.Time) error {
	for _, k := range []struct{ bucket, key string }{
		{bucketVerifications, id},
		{bucketByApp, byAppKey(app, id)},
		{bucketByRecipient, byRecipientPrefix(app, recipient) + id},
		{bucketExpiry, expiryKey(expiresAt, id)},
		{bucketOpenCalls, id},
	} {
		if err := t.tx.Delete(k.bucket, k.key); err != nil {
			return err
		}
	}
	var keys []string
	t.tx.Scan(bucketAttempts, attemptKey(id, ""), "", false, func(k string, _ []byte) bool { keys = append(keys, k); return true })
	for _, k := range keys {
		if err := t.tx.Delete(bucketAttempts, k); err != nil {
			return err
		}
	}
	return nil
}

// Verifications yields every verification's ID and record, oldest first.
func (t *VerificationTx) Verifications() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		t.tx.Scan(bucketVerifications, "", "", false, yield)
	}
}

// VerificationsFrom yields the ID and record of each verification from the ID from on, oldest first.
func (t *VerificationTx) VerificationsFrom(from string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		b, _ := t.tx.bucket(bucketVerifications, false)
		if b == nil {
			return
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(from)); k != nil; k, v = c.Next() {
			if !yield(string(k), v) {
				return
			}
		}
	}
}

// ByApp yields the ID and record of app's verifications, newest first, starting below the ID before
// (empty: from the newest).
func (t *VerificationTx) ByApp(app, before string) iter.Seq2[string, []byte] {
	return t.index(bucketByApp, byAppKey(app, ""), before)
}

// ByRecipient yields the ID and record of app's verifications for recipient, newest first, starting below
// the ID before (empty: from the newest).
func (t *VerificationTx) ByRecipient(app, recipient, before string) iter.Seq2[string, []byte] {
	return t.index(bucketByRecipient, byRecipientPrefix(app, recipient), before)
}

// index yields the IDs under prefix in an index bucket, newest first from below before, each with its
// record (nil if it has none).
func (t *VerificationTx) index(bucket, prefix, before string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		after := ""
		if before != "" {
			after = prefix + before
		}
		t.tx.Scan(bucket, prefix, after, true, func(k string, _ []byte) bool {
			id := k[len(prefix):]
			return yield(id, t.record(id))
		})
	}
}

// record returns the record of verification id, or nil; unlike Verification it is not a copy: it is valid
// while the transaction runs and writes nothing to the bucket.
func (t *VerificationTx) record(id string) []byte {
	b, _ := t.tx.bucket(bucketVerifications, false)
	if b == nil {
		return nil
	}
	return b.Get([]byte(id))
}

// PutExpiry indexes verification id as expiring at at.
func (t *VerificationTx) PutExpiry(id string, at time.Time) error {
	return t.tx.Put(bucketExpiry, expiryKey(at, id), nil)
}

// DeleteExpiry removes the index entry of verification id expiring at at.
func (t *VerificationTx) DeleteExpiry(id string, at time.Time) error {
	return t.tx.Delete(bucketExpiry, expiryKey(at, id))
}

// Expiring yields the verifications indexed as expiring at or before until (to the millisecond), and when,
// earliest first.
func (t *VerificationTx) Expiring(until time.Time) iter.Seq2[string, time.Time] {
	return func(yield func(string, time.Time) bool) {
		end := expiryEnd(until)
		t.tx.Scan(bucketExpiry, "", "", false, func(k string, _ []byte) bool {
			if k >= end {
				return false
			}
			at, id, ok := parseExpiryKey(k)
			return !ok || yield(id, at)
		})
	}
}

// DeleteOpenCall takes verification id off the open-call list an engine before issue 18 kept.
func (t *VerificationTx) DeleteOpenCall(id string) error { return t.tx.Delete(bucketOpenCalls, id) }

// OpenCalls yields the verifications an engine before issue 18 listed as having a call without an outcome.
func (t *VerificationTx) OpenCalls() iter.Seq[string] {
	return func(yield func(string) bool) {
		t.tx.Scan(bucketOpenCalls, "", "", false, func(k string, _ []byte) bool { return yield(k) })
	}
}

// PutEvent stores event id of app.
func (t *VerificationTx) PutEvent(app, id string, e []byte) error {
	return t.tx.Put(bucketEvents, eventKey(app, id), e)
}

// DeleteEvent removes event id of app.
func (t *VerificationTx) DeleteEvent(app, id string) error {
	return t.tx.Delete(bucketEvents, eventKey(app, id))
}

// Events yields app's events, newest first, starting below the ID before (empty: from the newest).
func (t *VerificationTx) Events(app, before string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		prefix, after := eventKey(app, ""), ""
		if before != "" {
			after = prefix + before
		}
		t.tx.Scan(bucketEvents, prefix, after, true, func(k string, v []byte) bool { return yield(k[len(prefix):], v) })
	}
}

// EventApps yields the apps that have events, in order.
func (t *VerificationTx) EventApps() iter.Seq[string] { return t.apps(bucketEvents) }

// ReportApps yields the apps that have report rows, in order.
func (t *VerificationTx) ReportApps() iter.Seq[string] { return t.apps(bucketReports) }

// apps yields the distinct first parts (up to a NUL) of bucket's keys, skipping from one to the next.
func (t *VerificationTx) apps(bucket string) iter.Seq[string] {
	return func(yield func(string) bool) {
		after := ""
		for {
			app, found := "", false
			t.tx.Scan(bucket, "", after, false, func(k string, _ []byte) bool {
				app, _, _ = strings.Cut(k, "\x00")
				found = true
				return false
			})
			if !found || app != "" && !yield(app) {
				return
			}
			after = app + "\x01"
		}
	}
}

// OldestEvents yields the IDs of app's events, oldest first.
func (t *VerificationTx) OldestEvents(app string) iter.Seq[string] {
	return func(yield func(string) bool) {
		prefix := eventKey(app, "")
		t.tx.Scan(bucketEvents, prefix, "", false, func(k string, _ []byte) bool { return yield(k[len(prefix):]) })
	}
}

// PutAttempt stores verify attempt id of verification vid.
func (t *VerificationTx) PutAttempt(vid, id string, a []byte) error {
	return t.tx.Put(bucketAttempts, attemptKey(vid, id), a)
}

// Attempts yields the ID and record of each verify attempt of verification vid, newest first.
func (t *VerificationTx) Attempts(vid string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		prefix := attemptKey(vid, "")
		t.tx.Scan(bucketAttempts, prefix, "", true, func(k string, v []byte) bool { return yield(k[len(prefix):], v) })
	}
}

// ReportRow returns a copy of app's report row of key in group on day, or nil.
func (t *VerificationTx) ReportRow(app, day, group, key string) []byte {
	return t.tx.Get(bucketReports, reportKey(app, day, group, key))
}

// PutReportRow stores app's report row of key in group on day.
func (t *VerificationTx) PutReportRow(app, day, group, key string, row []byte) error {
	return t.tx.Put(bucketReports, reportKey(app, day, group, key), row)
}

// DeleteReportRow removes app's report row of key in group on day.
func (t *VerificationTx) DeleteReportRow(app, day, group, key string) error {
	return t.tx.Delete(bucketReports, reportKey(app, day, group, key))
}

// ReportRows yields the key and row of each of app's report rows in group, on the days from first to last
// (YYYY-MM-DD, both included), day by day, keys in order.
func (t *VerificationTx) ReportRows(app, group, first, last string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		prefix := app + "\x00"
		t.tx.Scan(bucketReports, prefix, prefix+first, false, func(k string, v []byte) bool {
			parts := strings.Split(k[len(prefix):], "\x00")
			if len(parts) != 3 || parts[0] > last {
				return false
			}
			if parts[0] < first || parts[1] != group {
				return true
			}
			return yield(parts[2], v)
		})
	}
}

// AllReportRows yields every report row of app (the retired rows: app ""), by day, group and key.
func (t *VerificationTx) AllReportRows(app string) iter.Seq2[otp.ReportKey, []byte] {
	return func(yield func(otp.ReportKey, []byte) bool) {
		prefix := app + "\x00"
		t.tx.Scan(bucketReports, prefix, "", false, func(k string, v []byte) bool {
			parts := strings.Split(k[len(prefix):], "\x00")
			return len(parts) != 3 || yield(otp.ReportKey{Day: parts[0], Group: parts[1], Key: parts[2]}, v)
		})
	}
}

// Meta returns a copy of the bookkeeping value name, or nil.
func (t *VerificationTx) Meta(name string) []byte { return t.tx.Get(bucketMeta, name) }

// PutMeta stores the bookkeeping value name.
func (t *VerificationTx) PutMeta(name string, v []byte) error { return t.tx.Put(bucketMeta, name, v) }

// PutDelivery queues webhook delivery id (webhook.Outbox), with the changes it reports.
func (t *VerificationTx) PutDelivery(id string, d []byte) error {
	return t.tx.Put(bucketWebhooks, id, d)
}
