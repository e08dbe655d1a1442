package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"flashotp/otp"
	"flashotp/webhook"
)

var (
	_ otp.Store      = Verifications{}
	_ otp.Tx         = (*verificationTx)(nil)
	_ webhook.Outbox = (*verificationTx)(nil)
)

// Verifications is the store as otp uses it (otp.Store), on the tables of migrations/00001_verifications.sql.
type Verifications struct{ db *DB }

// Verifications returns db as otp's store.
func (db *DB) Verifications() Verifications { return Verifications{db: db} }

// View runs fn in a read-only transaction on one snapshot.
func (v Verifications) View(ctx context.Context, fn func(otp.Tx) error) error {
	return v.db.failed(v.db.session(ctx, false, fn))
}

// Update runs fn in a write transaction and returns once it is committed. If fn fails, nothing it wrote is
// kept; fn may run more than once (again when the server aborts the transaction for a conflict).
func (v Verifications) Update(ctx context.Context, fn func(otp.Tx) error) error {
	for try := 1; ; try++ {
		err, fnErr := v.db.session(ctx, true, fn)
		if err != nil && retryable(err) && try < maxTries {
			continue // not a failure of the store: another transaction came first
		}
		return v.db.failed(err, fnErr)
	}
}

// session runs fn on a verificationTx (db.run). A read that failed (the reads return no error of their own)
// fails the transaction, whatever fn made of the missing answer.
func (db *DB) session(ctx context.Context, write bool, fn func(otp.Tx) error) (err, fnErr error) {
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	if write {
		begin = "BEGIN"
	}
	err, fnErr = db.run(ctx, begin, func(s *session) error {
		t := &verificationTx{s: s, write: write}
		err := fn(t)
		if t.err != nil {
			return t.err
		}
		return err
	})
	if err == nil && write {
		db.commits.Add(1)
	}
	return err, fnErr
}

// verificationTx is one transaction over otp's records (otp.Tx).
type verificationTx struct {
	s     *session
	write bool  // a write transaction: records are read FOR UPDATE
	err   error // the first failed read
}

// fail keeps the first error of the database met in a read, and returns err marked as the database's.
func (t *verificationTx) fail(err error) error {
	if err == nil {
		return nil
	}
	err = dbError{err}
	if t.err == nil {
		t.err = err
	}
	return err
}

// exec queues a statement: it runs with the next read or at commit, and its error then fails the
// transaction.
func (t *verificationTx) exec(sql string, args ...any) error {
	t.s.exec(nil, sql, args...)
	return nil
}

// query runs sql (after the queued statements) and returns its rows.
func (t *verificationTx) query(sql string, args ...any) (pgx.Rows, error) {
	return t.s.query(sql, args...)
}

// value returns the one column of the one row sql selects, or nil for none.
func (t *verificationTx) value(sql string, args ...any) []byte {
	var v []byte
	err := t.s.queryRow(sql, args, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if t.fail(err) != nil {
		return nil
	}
	if v == nil {
		v = []byte{} // a stored empty value is not a missing one
	}
	return v
}

// forUpdate is what a write transaction adds to a read of a record: the row stays locked until commit.
func (t *verificationTx) forUpdate() string {
	if t.write {
		return " FOR UPDATE"
	}
	return ""
}

func (t *verificationTx) Verification(id string) []byte {
	return t.value(`SELECT rec FROM verifications WHERE id = $1`+t.forUpdate(), id)
}

func (t *verificationTx) VerificationIs(id string, rec []byte) bool {
	v := t.Verification(id)
	return t.err == nil && (v == nil) == (rec == nil) && bytes.Equal(v, rec)
}

func (t *verificationTx) PutVerification(id string, rec []byte) error {
	// Checked when it has run: the transaction fails then.
	t.s.exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("put verification %s: no such verification (CreateVerification makes one)", id)
		}
		return nil
	}, `UPDATE verifications SET rec = $2 WHERE id = $1`, id, rec)
	return nil
}

func (t *verificationTx) CreateVerification(id, appID, recipient string, expiresAt time.Time, rec []byte) error {
	if err := t.exec(`INSERT INTO verifications (id, app, recipient, expires_at, rec) VALUES ($1, $2, $3, $4, $5)`,
		id, appID, recipient, expiresAt, rec); err != nil {
		return err
	}
	return t.PutExpiry(id, expiresAt)
}

func (t *verificationTx) DeleteVerification(id, appID, recipient string, expiresAt time.Time) error {
	if err := t.exec(`DELETE FROM verifications WHERE id = $1`, id); err != nil {
		return err
	}
	if err := t.DeleteExpiry(id, expiresAt); err != nil {
		return err
	}
	return t.exec(`DELETE FROM verify_attempts WHERE verification_id = $1`, id)
}

func (t *verificationTx) Verifications() iter.Seq2[string, []byte] { return t.VerificationsFrom("") }

func (t *verificationTx) VerificationsFrom(from string) iter.Seq2[string, []byte] {
	return t.pages(ascending, from, true, `SELECT id, rec FROM verifications WHERE id %s $1 ORDER BY id LIMIT %d`)
}

func (t *verificationTx) ByApp(appID, before string) iter.Seq2[string, []byte] {
	return t.pages(descending, before, false, `SELECT id, rec FROM verifications WHERE app = $2 AND ($1 = '' OR id %s $1) ORDER BY id DESC LIMIT %d`, appID)
}

func (t *verificationTx) ByRecipient(appID, recipient, before string) iter.Seq2[string, []byte] {
	return t.pages(descending, before, false, `SELECT id, rec FROM verifications WHERE app = $2 AND recipient = $3 AND ($1 = '' OR id %s $1) ORDER BY id DESC LIMIT %d`, appID, recipient)
}

func (t *verificationTx) PutExpiry(id string, at time.Time) error {
	return t.exec(`INSERT INTO verification_expiry (at_ms, id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, at.UnixMilli(), id)
}

func (t *verificationTx) DeleteExpiry(id string, at time.Time) error {
	return t.exec(`DELETE FROM verification_expiry WHERE at_ms = $1 AND id = $2`, at.UnixMilli(), id)
}

func (t *verificationTx) Expiring(until time.Time) iter.Seq2[string, time.Time] {
	type entry struct {
		ms int64
		id string
	}
	return func(yield func(string, time.Time) bool) {
		paged(t, func(after *entry) (pgx.Rows, error) {
			from := entry{ms: -1 << 62}
			if after != nil {
				from = *after
			}
			return t.query(fmt.Sprintf(`SELECT at_ms, id FROM verification_expiry
				WHERE at_ms <= $1 AND (at_ms, id) > ($2, $3) ORDER BY at_ms, id LIMIT %d`, pageSize), until.UnixMilli(), from.ms, from.id)
		}, func(r pgx.CollectableRow) (e entry, err error) { return e, r.Scan(&e.ms, &e.id) },
			func(e entry) bool { return yield(e.id, time.UnixMilli(e.ms)) })
	}
}

// OpenCalls yields nothing: the open-call list was bbolt's, before issue 18, never kept here.
func (t *verificationTx) OpenCalls() iter.Seq[string] { return func(func(string) bool) {} }

// DeleteOpenCall has nothing to take off (OpenCalls).
func (t *verificationTx) DeleteOpenCall(string) error { return nil }

func (t *verificationTx) PutEvent(appID, id string, e []byte) error {
	return t.exec(`INSERT INTO verification_events (app, id, body) VALUES ($1, $2, $3)
		ON CONFLICT (app, id) DO UPDATE SET body = excluded.body`, appID, id, e)
}

func (t *verificationTx) DeleteEvent(appID, id string) error {
	return t.exec(`DELETE FROM verification_events WHERE app = $1 AND id = $2`, appID, id)
}

func (t *verificationTx) Events(appID, before string) iter.Seq2[string, []byte] {
	return t.pages(descending, before, false, `SELECT id, body FROM verification_events WHERE app = $2 AND ($1 = '' OR id %s $1) ORDER BY id DESC LIMIT %d`, appID)
}

func (t *verificationTx) EventApps() iter.Seq[string] {
	return t.keys(ascending, `SELECT DISTINCT app, NULL::bytea FROM verification_events WHERE app %s $1 AND app <> '' ORDER BY app LIMIT %d`)
}

func (t *verificationTx) OldestEvents(appID string) iter.Seq[string] {
	return t.keys(ascending, `SELECT id, NULL::bytea FROM verification_events WHERE app = $2 AND id %s $1 ORDER BY id LIMIT %d`, appID)
}

func (t *verificationTx) PutAttempt(vid, id string, a []byte) error {
	return t.exec(`INSERT INTO verify_attempts (verification_id, id, body) VALUES ($1, $2, $3)
		ON CONFLICT (verification_id, id) DO UPDATE SET body = excluded.body`, vid, id, a)
}

func (t *verificationTx) Attempts(vid string) iter.Seq2[string, []byte] {
	return t.pages(descending, "", false, `SELECT id, body FROM verify_attempts WHERE verification_id = $2 AND ($1 = '' OR id %s $1) ORDER BY id DESC LIMIT %d`, vid)
}

func (t *verificationTx) ReportRow(appID, day, group, key string) []byte {
	return t.value(`SELECT row_ FROM report_rows WHERE app = $1 AND day = $2 AND grp = $3 AND key = $4`+t.forUpdate(), appID, day, group, key)
}

func (t *verificationTx) PutReportRow(appID, day, group, key string, row []byte) error {
	return t.exec(`INSERT INTO report_rows (app, day, grp, key, row_) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (app, day, grp, key) DO UPDATE SET row_ = excluded.row_`, appID, day, group, key, row)
}

func (t *verificationTx) DeleteReportRow(appID, day, group, key string) error {
	return t.exec(`DELETE FROM report_rows WHERE app = $1 AND day = $2 AND grp = $3 AND key = $4`, appID, day, group, key)
}

func (t *verificationTx) ReportApps() iter.Seq[string] {
	return t.keys(ascending, `SELECT DISTINCT app, NULL::bytea FROM report_rows WHERE app %s $1 AND app <> '' ORDER BY app LIMIT %d`)
}

// ReportRows yields the rows day by day, keys in order within a day, as the bbolt store does.
func (t *verificationTx) ReportRows(appID, group, first, last string) iter.Seq2[string, []byte] {
	type row struct {
		day, key string
		v        []byte
	}
	return func(yield func(string, []byte) bool) {
		paged(t, func(after *row) (pgx.Rows, error) {
			from, op := row{day: first}, ">=" // the first page starts at the first day, keys from ""
			if after != nil {
				from, op = *after, ">"
			}
			return t.query(fmt.Sprintf(`SELECT day, key, row_ FROM report_rows
				WHERE app = $1 AND grp = $2 AND day <= $3 AND (day, key) %s ($4, $5) ORDER BY day, key LIMIT %d`, op, pageSize),
				appID, group, last, from.day, from.key)
		}, func(r pgx.CollectableRow) (x row, err error) { return x, r.Scan(&x.day, &x.key, &x.v) },
			func(x row) bool { return yield(x.key, x.v) })
	}
}

// AllReportRows yields every report row of the app, by day, group and key, a page at a time.
func (t *verificationTx) AllReportRows(appID string) iter.Seq2[otp.ReportKey, []byte] {
	type row struct {
		k otp.ReportKey
		v []byte
	}
	return func(yield func(otp.ReportKey, []byte) bool) {
		paged(t, func(after *row) (pgx.Rows, error) {
			var from otp.ReportKey
			if after != nil {
				from = after.k
			}
			return t.query(fmt.Sprintf(`SELECT day, grp, key, row_ FROM report_rows
				WHERE app = $1 AND (day, grp, key) > ($2, $3, $4) ORDER BY day, grp, key LIMIT %d`, pageSize),
				appID, from.Day, from.Group, from.Key)
		}, func(r pgx.CollectableRow) (x row, err error) { return x, r.Scan(&x.k.Day, &x.k.Group, &x.k.Key, &x.v) },
			func(x row) bool { return yield(x.k, x.v) })
	}
}

func (t *verificationTx) Meta(name string) []byte {
	return t.value(`SELECT value FROM otp_meta WHERE name = $1`+t.forUpdate(), name)
}

func (t *verificationTx) PutMeta(name string, v []byte) error {
	return t.exec(`INSERT INTO otp_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v)
}

// PutDelivery queues webhook delivery id (webhook.Outbox), with the changes it reports.
func (t *verificationTx) PutDelivery(id string, d []byte) error {
	return t.exec(`INSERT INTO webhook_deliveries (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, id, d)
}

// pageSize is how many rows an iterator reads at a time. A page is read whole before its rows are yielded,
// so that the loop over them may query the same transaction (a connection runs one query at a time).
const pageSize = 500

// order is the direction of a keyset scan.
type order int

const (
	ascending order = iota
	descending
)

// pages yields the (key, value) rows of query page by page, each page starting past the last key of the one
// before (keyset pagination). query has the comparison of its key with $1 as %s and the page size as %d;
// its own arguments are $2 on. The first page starts at from, which it includes when inclusive (and from is
// not empty).
func (t *verificationTx) pages(o order, from string, inclusive bool, query string, args ...any) iter.Seq2[string, []byte] {
	type kv struct {
		k string
		v []byte
	}
	return func(yield func(string, []byte) bool) {
		paged(t, func(after *kv) (pgx.Rows, error) {
			cursor, op := from, map[order]string{ascending: ">", descending: "<"}[o]
			if after != nil {
				cursor = after.k
			} else if inclusive {
				op += "="
			}
			return t.query(fmt.Sprintf(query, op, pageSize), append([]any{cursor}, args...)...)
		}, func(r pgx.CollectableRow) (x kv, err error) { return x, r.Scan(&x.k, &x.v) },
			func(x kv) bool { return yield(x.k, x.v) })
	}
}

// paged yields, to yield, the rows of query's pages until yield returns false: query(after) selects the
// page past the row after (nil: the first page), scan reads a row, and a page shorter than pageSize is the
// last. A page is read whole before its rows are yielded (pageSize).
func paged[R any](t *verificationTx, query func(after *R) (pgx.Rows, error), scan pgx.RowToFunc[R], yield func(R) bool) {
	var after *R
	for {
		rows, err := query(after)
		if t.fail(err) != nil {
			return
		}
		page, err := pgx.CollectRows(rows, scan)
		if t.fail(err) != nil {
			return
		}
		for _, r := range page {
			if !yield(r) {
				return
			}
		}
		if len(page) < pageSize {
			return
		}
		after = &page[len(page)-1]
	}
}

// keys is pages for a query whose value column is NULL: it yields the keys.
func (t *verificationTx) keys(o order, query string, args ...any) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range t.pages(o, "", false, query, args...) {
			if !yield(k) {
				return
			}
		}
	}
}
