package postgres

import "context"

// CountLimitEvents counts the stored rate-limit events.
func (db *DB) CountLimitEvents(ctx context.Context, n *int) error {
	return db.pool.QueryRow(ctx, `SELECT count(*) FROM limit_events`).Scan(n)
}
