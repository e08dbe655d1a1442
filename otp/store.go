package otp

import (
	"context"
	"iter"
	"time"
)

// Store keeps verifications and what is written with them. A verification's change, its events, its
// report counts and its webhook deliveries are written in one transaction: all of them or none.
// store.Verifications (bbolt) is one.
type Store interface {
	// View runs fn in a read transaction: a consistent snapshot.
	View(ctx context.Context, fn func(tx Tx) error) error
	// Update runs fn in a write transaction and returns once it is durable. If fn fails, nothing it wrote
	// is kept and Update returns fn's error. fn may run more than once, so it must only compute from what
	// it reads.
	Update(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is one transaction of a Store. Records are otp's own encoding, opaque to the store; IDs are
// time-ordered, so "newest first" is descending ID order. Values the iterators yield are valid only while
// the iteration runs; IDs passed as before are exclusive bounds (empty: no bound).
type Tx interface {
	// Verification returns the record of verification id, or nil.
	Verification(id string) []byte
	// VerificationIs reports whether the record of verification id is rec (a missing one is nil).
	VerificationIs(id string, rec []byte) bool
	// PutVerification replaces the record of verification id.
	PutVerification(id string, rec []byte) error
	// CreateVerification stores a new verification with its index entries (by app, by recipient, by
	// expiry).
	CreateVerification(id, appID, recipient string, expiresAt time.Time, rec []byte) error
	// DeleteVerification removes a verification with its index entries, open call and verify attempts.
	DeleteVerification(id, appID, recipient string, expiresAt time.Time) error
	// Verifications yields every verification's ID and record, oldest first.
	Verifications() iter.Seq2[string, []byte]
	// VerificationsFrom yields the ID and record of each verification from the ID from on, oldest first.
	VerificationsFrom(from string) iter.Seq2[string, []byte]
	// ByApp yields the ID and record of the app's verifications, newest first, below before.
	ByApp(appID, before string) iter.Seq2[string, []byte]
	// ByRecipient yields the ID and record of the app's verifications for recipient, newest first, below
	// before.
	ByRecipient(appID, recipient, before string) iter.Seq2[string, []byte]

	// PutExpiry and DeleteExpiry index a verification as expiring at a time (to the millisecond).
	PutExpiry(id string, at time.Time) error
	DeleteExpiry(id string, at time.Time) error
	// Expiring yields the verifications indexed as expiring at or before until, and when, earliest first.
	Expiring(until time.Time) iter.Seq2[string, time.Time]

	// OpenCalls yields the verifications an engine before issue 18 listed as having a call without an
	// outcome (Recover now finds them in the records); DeleteOpenCall takes one off that list.
	OpenCalls() iter.Seq[string]
	DeleteOpenCall(id string) error

	// PutEvent and DeleteEvent store and remove an event of an app.
	PutEvent(appID, id string, e []byte) error
	DeleteEvent(appID, id string) error
	// Events yields the ID and record of the app's events, newest first, below before.
	Events(appID, before string) iter.Seq2[string, []byte]
	// EventApps yields the apps that have events.
	EventApps() iter.Seq[string]
	// OldestEvents yields the IDs of the app's events, oldest first.
	OldestEvents(appID string) iter.Seq[string]

	// PutAttempt stores a verify attempt of verification vid.
	PutAttempt(vid, id string, a []byte) error
	// Attempts yields the ID and record of each verify attempt of verification vid, newest first.
	Attempts(vid string) iter.Seq2[string, []byte]

	// ReportRow, PutReportRow and DeleteReportRow read and write the app's report row of key in group
	// (GroupDay, …) on day (YYYY-MM-DD); ReportRow returns nil for none.
	ReportRow(appID, day, group, key string) []byte
	PutReportRow(appID, day, group, key string, row []byte) error
	DeleteReportRow(appID, day, group, key string) error
	// ReportApps yields the apps that have report rows, in order.
	ReportApps() iter.Seq[string]
	// ReportRows yields the key and row of each of the app's report rows in group on the days first to
	// last (both included).
	ReportRows(appID, group, first, last string) iter.Seq2[string, []byte]
	// AllReportRows yields every report row of the app (the retired rows: app ""), by day, group and key.
	AllReportRows(appID string) iter.Seq2[ReportKey, []byte]

	// Meta and PutMeta read and write otp's own bookkeeping value name (nil: none).
	Meta(name string) []byte
	PutMeta(name string, v []byte) error

	// Outbox queues webhook deliveries in the transaction.
	Outbox
}

// ReportKey is where a report row is: its day (YYYY-MM-DD), its group and its key in the group.
type ReportKey struct{ Day, Group, Key string }

// Outbox is where a Notifier queues a webhook delivery, in the transaction of the change it reports.
//
// It is an alias of an unnamed interface type, as webhook.Outbox is, so that a Notifier's Enqueue and
// *webhook.Queue's have the same signature without either package importing the other.
type Outbox = interface {
	// PutDelivery stores delivery id (the notifier's own encoding).
	PutDelivery(id string, delivery []byte) error
}
