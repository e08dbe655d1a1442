package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"flashotp/limits"
)

var _ limits.Shared = (*DB)(nil)

// limitKey is a check's key in limit_events: its scope and key joined by the unit separator (text holds no
// NUL, and neither part holds a control character).
func limitKey(c limits.Check) string { return c.Scope + "\x1f" + c.Key }

// Allow records event id at for every check if none is full. The checks' keys are locked first (in key
// order, so that engines checking the same keys never deadlock), then counted: one round trip; the events
// and the COMMIT another.
func (db *DB) Allow(ctx context.Context, checks []limits.Check, id string, at time.Time) (int, time.Duration, error) {
	keys := make([]string, 0, len(checks))
	for _, ch := range checks {
		keys = append(keys, limitKey(ch))
	}
	slices.Sort(keys)
	now := at.UnixNano()
	denied, retry := -1, time.Duration(0)
	err, _ := db.run(ctx, "BEGIN", func(s *session) error {
		counts := make([]int, len(checks))
		if err := s.flush(func(b *pgx.Batch) {
			for _, k := range slices.Compact(keys) {
				b.Queue(`INSERT INTO limit_keys (key) VALUES ($1) ON CONFLICT DO NOTHING`, k)
				b.Queue(`SELECT key FROM limit_keys WHERE key = $1 FOR UPDATE`, k)
			}
			for i, ch := range checks {
				b.Queue(`SELECT count(*) FROM limit_events WHERE key = $1 AND at_ns > $2`, limitKey(ch), now-int64(ch.Window)).
					QueryRow(func(r pgx.Row) error { return r.Scan(&counts[i]) })
			}
		}); err != nil {
			return dbError{err}
		}
		for i, ch := range checks {
			if counts[i] < ch.Limit {
				continue
			}
			// Full: it has room when the oldest of its newest Limit events leaves the window.
			var oldest int64
			if err := s.queryRow(`SELECT at_ns FROM limit_events WHERE key = $1 AND at_ns > $2 ORDER BY at_ns DESC OFFSET $3 LIMIT 1`,
				[]any{limitKey(ch), now - int64(ch.Window), ch.Limit - 1}, &oldest); err != nil {
				return dbError{err}
			}
			denied, retry = i, time.Duration(oldest+int64(ch.Window)-now)
			return errFull // nothing recorded: rolled back
		}
		for _, ch := range checks {
			s.exec(nil, `INSERT INTO limit_events (key, id, at_ns, window_ns) VALUES ($1, $2, $3, $4)`, limitKey(ch), id, now, int64(ch.Window))
		}
		return nil
	})
	if errors.Is(err, errFull) {
		return denied, retry, nil
	}
	return -1, 0, db.failed(err, nil)
}

// errFull ends Allow's transaction when a check is full.
var errFull = errors.New("limit full")

// Add records event id of c at, full or not.
func (db *DB) Add(ctx context.Context, c limits.Check, id string, at time.Time) error {
	_, err := db.one(ctx, `INSERT INTO limit_events (key, id, at_ns, window_ns) VALUES ($1, $2, $3, $4)`,
		limitKey(c), id, at.UnixNano(), int64(c.Window))
	return err
}

// Remove forgets event id of c.
func (db *DB) Remove(ctx context.Context, c limits.Check, id string) error {
	_, err := db.one(ctx, `DELETE FROM limit_events WHERE key = $1 AND id = $2`, limitKey(c), id)
	return err
}

// Count returns how many of c's events are in its window at now (at most c.Limit) and when the oldest of
// those counted leaves it.
func (db *DB) Count(ctx context.Context, c limits.Check, now time.Time) (int, time.Time, error) {
	rows, err := db.pool.Query(ctx, `SELECT at_ns FROM limit_events WHERE key = $1 AND at_ns > $2 ORDER BY at_ns DESC LIMIT $3`,
		limitKey(c), now.UnixNano()-int64(c.Window), c.Limit)
	if err != nil {
		return 0, time.Time{}, db.failed(err, nil)
	}
	times, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(times) == 0 {
		return 0, time.Time{}, db.failed(err, nil)
	}
	return len(times), time.Unix(0, times[len(times)-1]+int64(c.Window)), nil
}

// Sweep deletes the events that have left their windows, and the keys left without events.
func (db *DB) Sweep(ctx context.Context, now time.Time) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM limit_events WHERE at_ns <= $1 - window_ns`, now.UnixNano())
	b.Queue(`DELETE FROM limit_keys k WHERE NOT EXISTS (SELECT 1 FROM limit_events e WHERE e.key = k.key)`)
	return db.send(ctx, b)
}
