package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"flashotp/otp"
)

var _ otp.Nodes = (*DB)(nil)

// Renew extends node's lease to ttl from now, by the database server's clock (the engines' clocks may
// differ; the server's is one).
func (db *DB) Renew(ctx context.Context, node string, ttl time.Duration) error {
	_, err := db.one(ctx, `INSERT INTO node_leases (node, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')
		ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at`, node, ttl.Milliseconds())
	return err
}

// Expired returns the nodes whose leases have run out.
func (db *DB) Expired(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT node FROM node_leases WHERE expires_at < now() ORDER BY node`)
	if err != nil {
		return nil, db.failed(err, nil)
	}
	nodes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return nodes, db.failed(err, nil)
}

// TakeOver removes dead's lease if it has run out, and reports whether this call removed it.
func (db *DB) TakeOver(ctx context.Context, dead string) (bool, error) {
	n, err := db.one(ctx, `DELETE FROM node_leases WHERE node = $1 AND expires_at < now()`, dead)
	return n == 1, err
}

// Leader returns the live node with the lowest ID ("" for none).
func (db *DB) Leader(ctx context.Context) (string, error) {
	var node string
	err := db.pool.QueryRow(ctx, `SELECT node FROM node_leases WHERE expires_at >= now() ORDER BY node LIMIT 1`).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return node, db.failed(err, nil)
}

// Leave removes node's lease.
func (db *DB) Leave(ctx context.Context, node string) error {
	_, err := db.one(ctx, `DELETE FROM node_leases WHERE node = $1`, node)
	return err
}
