package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"flashotp/apps"
	"flashotp/console"
	"flashotp/numberpool"
	"flashotp/totp"
	"flashotp/webhook"
)

var (
	_ apps.Store         = (*DB)(nil)
	_ numberpool.Store   = (*DB)(nil)
	_ webhook.Store      = (*DB)(nil)
	_ totp.Store         = (*DB)(nil)
	_ console.Store      = (*DB)(nil)
	_ console.AuditStore = (*DB)(nil)
)

// The kinds of the records table (migrations/00002_records.sql).
const (
	kindApps       = "apps"
	kindKeys       = "keys"
	kindPools      = "pools"
	kindQuarantine = "quarantine"
	kindRecent     = "recent"
	kindOperators  = "operators"
	kindAudit      = "audit"
	kindTOTP       = "totp"
	kindUses       = "uses"
)

// record is one row of the records table.
type record struct {
	key   string
	value []byte
}

// querier runs a query: the pool (a statement alone is one snapshot) or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// collect reads the (key, value) rows sql selects.
func collect(ctx context.Context, q querier, sql string, args ...any) ([]record, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError{err}
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (x record, err error) { return x, r.Scan(&x.key, &x.value) })
	return out, dbErr(err)
}

// queuePuts queues the writes of records of kind in b, a nil value removing its key, in key order (so that
// two engines writing the same keys lock them in the same order), and their notification (Listen).
func (db *DB) queuePuts(b *pgx.Batch, kind string, records map[string][]byte) {
	if len(records) > 0 {
		db.queueNotify(b, kind)
	}
	for _, key := range slices.Sorted(maps.Keys(records)) {
		if v := records[key]; v == nil {
			b.Queue(`DELETE FROM records WHERE kind = $1 AND key = $2`, kind, key)
		} else {
			b.Queue(`INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, kind, key, v)
		}
	}
}

// send runs the statements of b in one round trip, as one transaction (a pipeline without BEGIN runs as
// one implicit transaction): all of them or none.
func (db *DB) send(ctx context.Context, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	err := db.pool.SendBatch(ctx, b).Close()
	if err == nil {
		db.commits.Add(1)
	}
	return db.failed(err, nil)
}

// ofKind selects every record of a kind, in key order.
const ofKind = `SELECT key, value FROM records WHERE kind = $1 ORDER BY key`

// each calls fn with every record of kind, in key order, all read (one statement: one snapshot) before
// the first call.
func (db *DB) each(ctx context.Context, kind string, fn func(key string, v []byte) error) error {
	recs, err := collect(ctx, db.pool, ofKind, kind)
	if err != nil {
		return db.failed(err, nil)
	}
	return eachOf(recs, fn)
}

// eachOf calls fn with each record of recs until it fails.
func eachOf(recs []record, fn func(key string, v []byte) error) error {
	for _, r := range recs {
		if err := fn(r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

// put writes the records of kind in one transaction, one round trip.
func (db *DB) put(ctx context.Context, kind string, records map[string][]byte) error {
	b := &pgx.Batch{}
	db.queuePuts(b, kind, records)
	return db.send(ctx, b)
}

// get returns the record of kind under key, or nil: one statement, one round trip.
func (db *DB) get(ctx context.Context, kind, key string) ([]byte, error) {
	var v []byte
	err := db.pool.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2`, kind, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, db.failed(err, nil)
	case v == nil:
		v = []byte{}
	}
	return v, nil
}

// one runs a single statement (a transaction of its own) and returns how many rows it changed.
func (db *DB) one(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := db.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, db.failed(err, nil)
	}
	db.commits.Add(1)
	return tag.RowsAffected(), nil
}

// LoadApps calls app with every stored app and key with every stored key, from one snapshot.
func (db *DB) LoadApps(ctx context.Context, app, key func(id string, record []byte) error) error {
	var apps, keys []record
	err := db.view(ctx, func(tx pgx.Tx) error {
		var err error
		if apps, err = collect(ctx, tx, ofKind, kindApps); err != nil {
			return err
		}
		keys, err = collect(ctx, tx, ofKind, kindKeys)
		return err
	})
	if err != nil {
		return err
	}
	if err := eachOf(apps, app); err != nil {
		return err
	}
	return eachOf(keys, key)
}

// SaveApps writes apps and keys together, all or nothing; a nil record removes its ID.
func (db *DB) SaveApps(ctx context.Context, apps, keys map[string][]byte) error {
	b := &pgx.Batch{}
	db.queuePuts(b, kindApps, apps)
	db.queuePuts(b, kindKeys, keys)
	return db.send(ctx, b)
}

func (db *DB) LoadPools(ctx context.Context, fn func(name string, pool []byte) error) error {
	return db.each(ctx, kindPools, fn)
}

func (db *DB) PutPool(ctx context.Context, name string, pool []byte) error {
	return db.put(ctx, kindPools, map[string][]byte{name: pool})
}

func (db *DB) DeletePool(ctx context.Context, name string) error {
	return db.put(ctx, kindPools, map[string][]byte{name: nil})
}

func (db *DB) LoadQuarantines(ctx context.Context, fn func(key string, q []byte) error) error {
	return db.each(ctx, kindQuarantine, fn)
}

func (db *DB) PutQuarantine(ctx context.Context, key string, q []byte) error {
	return db.put(ctx, kindQuarantine, map[string][]byte{key: q})
}

func (db *DB) DeleteQuarantine(ctx context.Context, key string) error {
	return db.put(ctx, kindQuarantine, map[string][]byte{key: nil})
}

func (db *DB) RecentCalls(ctx context.Context, recipient string) ([]byte, error) {
	return db.get(ctx, kindRecent, recipient)
}

func (db *DB) PutRecentCalls(ctx context.Context, histories map[string][]byte) error {
	return db.put(ctx, kindRecent, histories)
}

// PutUses stores node's use counts, replacing what was there.
func (db *DB) PutUses(ctx context.Context, node string, uses []byte) error {
	return db.put(ctx, kindUses, map[string][]byte{node: uses})
}

// LoadUses calls fn with every node's stored use counts, in node order, from one statement.
func (db *DB) LoadUses(ctx context.Context, fn func(node string, uses []byte) error) error {
	return db.each(ctx, kindUses, fn)
}

// SwapRecentCalls stores next as recipient's history if the stored one is still old (nil: none is stored),
// one statement, and reports whether it did: of two engines that read the same history, one wins.
func (db *DB) SwapRecentCalls(ctx context.Context, recipient string, old, next []byte) (bool, error) {
	if old == nil {
		n, err := db.one(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING`,
			kindRecent, recipient, next)
		return n == 1, err
	}
	n, err := db.one(ctx, `UPDATE records SET value = $4 WHERE kind = $1 AND key = $2 AND value = $3`, kindRecent, recipient, old, next)
	return n == 1, err
}

// Deliveries calls fn with each queued webhook delivery in the order they were queued (their IDs').
func (db *DB) Deliveries(ctx context.Context, fn func(id string, d []byte) bool) error {
	ds, err := collect(ctx, db.pool, `SELECT id, body FROM webhook_deliveries ORDER BY id`)
	if err != nil {
		return db.failed(err, nil)
	}
	for _, d := range ds {
		if !fn(d.key, d.value) {
			break
		}
	}
	return nil
}

// PutDelivery replaces the record of delivery id and ends its hold (Claim).
func (db *DB) PutDelivery(ctx context.Context, id string, d []byte) error {
	_, err := db.one(ctx, `INSERT INTO webhook_deliveries (id, body) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, held_until = NULL`, id, d)
	return err
}

// Claim holds delivery id until hold from now (the server's clock), unless another engine holds it.
func (db *DB) Claim(ctx context.Context, id string, hold time.Duration) (bool, error) {
	n, err := db.one(ctx, `UPDATE webhook_deliveries SET held_until = now() + $2 * interval '1 millisecond'
		WHERE id = $1 AND (held_until IS NULL OR held_until < now())`, id, hold.Milliseconds())
	return n == 1, err
}

func (db *DB) DeleteDelivery(ctx context.Context, id string) error {
	_, err := db.one(ctx, `DELETE FROM webhook_deliveries WHERE id = $1`, id)
	return err
}

// totpKey is the key of user's enrollment with app, joined by the unit separator: PostgreSQL's text holds
// no NUL (bbolt's key has one), and neither part holds a control character (totp refuses them in a user).
func totpKey(appID, user string) string { return appID + "\x1f" + user }

func (db *DB) Enrollment(ctx context.Context, appID, user string) ([]byte, error) {
	v, err := db.get(ctx, kindTOTP, totpKey(appID, user))
	if err == nil && v == nil {
		return nil, fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
	}
	return v, err
}

func (db *DB) PutEnrollment(ctx context.Context, appID, user string, record []byte, replace bool) error {
	if replace {
		return db.put(ctx, kindTOTP, map[string][]byte{totpKey(appID, user): record})
	}
	n, err := db.one(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING`,
		kindTOTP, totpKey(appID, user), record)
	if err == nil && n == 0 {
		return fmt.Errorf("enrollment: %w", totp.ErrEnrolled)
	}
	return err
}

func (db *DB) UpdateEnrollment(ctx context.Context, appID, user string, fn func(record []byte) ([]byte, error)) error {
	return db.update(ctx, func(tx pgx.Tx) error {
		var v []byte
		err := tx.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2 FOR UPDATE`, kindTOTP, totpKey(appID, user)).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
		}
		if err != nil {
			return dbError{err}
		}
		next, err := fn(v)
		if err != nil || string(next) == string(v) {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE records SET value = $3 WHERE kind = $1 AND key = $2`, kindTOTP, totpKey(appID, user), next)
		return dbErr(err)
	})
}

// Enrollments calls fn with every enrollment, from one snapshot.
func (db *DB) Enrollments(ctx context.Context, fn func(appID, user string, record []byte) error) error {
	return db.each(ctx, kindTOTP, func(k string, v []byte) error {
		app, user, _ := strings.Cut(k, "\x1f")
		return fn(app, user, v)
	})
}

func (db *DB) DeleteEnrollment(ctx context.Context, appID, user string) error {
	n, err := db.one(ctx, `DELETE FROM records WHERE kind = $1 AND key = $2`, kindTOTP, totpKey(appID, user))
	if err == nil && n == 0 {
		return fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
	}
	return err
}

func (db *DB) LoadOperators(ctx context.Context, fn func(name string, record []byte) error) error {
	return db.each(ctx, kindOperators, fn)
}

func (db *DB) PutOperator(ctx context.Context, name string, record []byte) error {
	return db.put(ctx, kindOperators, map[string][]byte{name: record})
}

func (db *DB) PutAudit(ctx context.Context, id string, record []byte) error {
	return db.put(ctx, kindAudit, map[string][]byte{id: record})
}

// Audit calls fn with the audit entries below the ID before (empty: from the newest), newest first, until fn
// returns false; it reads them a page at a time.
func (db *DB) Audit(ctx context.Context, before string, fn func(id string, record []byte) bool) error {
	for {
		page, err := collect(ctx, db.pool, fmt.Sprintf(`SELECT key, value FROM records WHERE kind = $1 AND ($2 = '' OR key < $2)
			ORDER BY key DESC LIMIT %d`, pageSize), kindAudit, before)
		if err != nil {
			return db.failed(err, nil)
		}
		for _, r := range page {
			if !fn(r.key, r.value) {
				return nil
			}
		}
		if len(page) < pageSize {
			return nil
		}
		before = page[len(page)-1].key
	}
}

// dbErr marks err, if any, as the database's.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	return dbError{err}
}
