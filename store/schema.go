package store

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The schema: every bucket of the database file, with what it holds under which key. The packages that own
// the records encode them (JSON, or varints where said); nothing outside this package knows these names.
// Parts of a key are joined by NUL (no ID, app ID, recipient, day or group holds one); IDs are ULIDs with a
// prefix, so keys that end in an ID sort by time. Names and key layouts are the on-disk format.
const (
	// apps
	bucketApps = "apps" // app ID → app with its sealed webhook secret
	bucketKeys = "keys" // API key → key with its secret's MAC and sealed secret

	// numberpool
	bucketPools      = "pools"      // pool name → pool
	bucketQuarantine = "quarantine" // "cli:" + the CLI's MAC, or "entry:" + pool/entry ID → quarantine
	bucketRecent     = "recent"     // recipient (E.164) → its recent calls, as MACs
	bucketUses       = "uses"       // node ID → its picks per entry since it started (engines sharing a store)

	// otp
	bucketVerifications = "verifications"  // verification ID → record
	bucketByApp         = "v_by_app"       // app NUL verification ID → nothing
	bucketByRecipient   = "v_by_recipient" // app NUL recipient NUL verification ID → nothing
	bucketExpiry        = "v_expiry"       // expires_at (Unix ms, 15 digits) NUL verification ID → nothing
	bucketOpenCalls     = "v_open_calls"   // verification ID → nothing: calls without an outcome, as engines before issue 18 listed them (read and emptied at start)
	bucketEvents        = "events"         // app NUL event ID → event
	bucketAttempts      = "attempts"       // verification ID NUL attempt ID → verify attempt
	bucketReports       = "reports"        // app NUL day (YYYY-MM-DD) NUL group NUL key → counters (varints)

	// webhook
	bucketWebhooks = "webhooks" // delivery ID → delivery not yet delivered or given up

	// The engine's own bookkeeping.
	bucketMeta = "meta" // name → value: "reports" → when otp last flushed its report counts, and how (otp)

	// totp
	bucketTOTP = "totp" // app ID NUL user → authenticator enrollment, its secret sealed

	// console
	bucketOperators = "operators" // operator name → account with its bcrypt hash
	bucketAudit     = "audit"     // audit entry ID (aud_ + ULID) → what an operator did
)

// Buckets by what they hold, for tests that count (DB.Count) or compare (storetest.Snapshot) what the engine
// wrote without knowing a name.
var (
	// VerificationBuckets hold what verifications write: otp's records, their index keys, events, verify
	// attempts and report counters, and webhook's queue.
	VerificationBuckets = []string{
		bucketVerifications, bucketByApp, bucketByRecipient, bucketExpiry, bucketOpenCalls, bucketEvents,
		bucketAttempts, bucketReports, bucketWebhooks,
	}
	// SettledBuckets are the buckets the engine writes, VerificationBuckets and apps', numberpool's and totp's, but
	// numberpool's recent calls: a pick is written there by a flusher up to 50 ms later, so it may land in
	// the middle of whatever a test compares.
	SettledBuckets = append(slices.Clip(VerificationBuckets), bucketApps, bucketKeys, bucketPools, bucketQuarantine, bucketTOTP)
	// TOTPBuckets hold totp's enrollments.
	TOTPBuckets = []string{bucketTOTP}
	// ExpiryIndex is otp's index of verifications by when they expire.
	ExpiryIndex = []string{bucketExpiry}
)

// Key layouts of otp's buckets.

// byAppKey is the key of verification id in bucketByApp.
func byAppKey(app, id string) string { return app + "\x00" + id }

// byRecipientPrefix is the prefix of the keys of recipient's verifications of app in bucketByRecipient.
func byRecipientPrefix(app, recipient string) string { return app + "\x00" + recipient + "\x00" }

// expiryKey orders verifications by when they expire.
func expiryKey(at time.Time, id string) string { return fmt.Sprintf("%015d\x00%s", at.UnixMilli(), id) }

// expiryEnd is the smallest key above every key of verifications expiring at or before t.
func expiryEnd(t time.Time) string { return fmt.Sprintf("%015d\x01", t.UnixMilli()) }

// parseExpiryKey returns the expiry time and verification ID of an expiryKey.
func parseExpiryKey(k string) (time.Time, string, bool) {
	if len(k) < 16 || k[15] != 0 {
		return time.Time{}, "", false
	}
	ms, err := strconv.ParseInt(k[:15], 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMilli(ms), k[16:], true
}

// eventKey is the key of event id of app in bucketEvents.
func eventKey(app, id string) string { return app + "\x00" + id }

// attemptKey is the key of attempt id of verification vid in bucketAttempts.
func attemptKey(vid, id string) string { return vid + "\x00" + id }

// reportKey is the key of a report row: app's counters of key in group on day.
func reportKey(app, day, group, key string) string {
	return app + "\x00" + day + "\x00" + group + "\x00" + key
}

// totpKey is the key of user's enrollment with app in bucketTOTP (a user holds no NUL: totp refuses control
// characters).
func totpKey(app, user string) string { return app + "\x00" + user }
