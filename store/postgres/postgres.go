// Package postgres is flashotp's persistence on PostgreSQL (SPEC section 10): the same storage contracts as
// the embedded bbolt store (package store), for several engines sharing one state.
//
// Each write is one PostgreSQL transaction at READ COMMITTED, committed with synchronous_commit on (the
// server's default), so that what a caller was told is stored survives the server's crash; a record a
// write transaction reads is read FOR UPDATE, so that two nodes changing one verification take turns. A
// transaction the server aborts as a serialization failure or a deadlock runs again from the start (the
// contracts allow it: a write function only computes from what it reads). The schema is versioned by the
// migrations in migrations/, embedded in the binary and applied by Open under an advisory lock, so that
// nodes starting together apply each once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"flashotp/fault"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrFailed wraps the database's own errors (unreachable, refused, out of space), as opposed to the
// callers': the transaction was rolled back and may be tried again. It comes inside a *fault.Error: the
// caller is told unavailable, the log gets the detail.
var ErrFailed = errors.New("store failed")

// DB is an open PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
	// failures counts the calls that failed with ErrFailed, for the metrics.
	failures atomic.Uint64
	commits  atomic.Uint64
	trips    atomic.Uint64 // round trips to the server (tripCounter)
	origin   string        // this DB's name in the notifications of its changes (Listen)
}

// Open connects to the database dsn (pgx's connection string: a URL or key=value pairs; several hosts with
// target_session_attrs=read-write find the primary after a failover) and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store.dsn: %w", err)
	}
	db := &DB{origin: newOrigin()}
	cfg.ConnConfig.Tracer = (*tripCounter)(&db.trips)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	db.pool = pool
	return db, nil
}

// tripCounter counts the round trips to the server: each query or statement sent alone, and each batch
// (a pipeline of statements, one round trip).
type tripCounter atomic.Uint64

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	(*atomic.Uint64)(c).Add(1)
	return ctx
}

func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	(*atomic.Uint64)(c).Add(1)
	return ctx
}

func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// migrate applies the embedded migrations not yet applied, under PostgreSQL's session advisory lock
// (goose's locker): a node starting beside another waits for it instead of racing it.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("store migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store migrations: %w", err)
	}
	return nil
}

// Close closes the connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Check reports whether the database answers.
func (db *DB) Check(ctx context.Context) error { return db.failed(db.pool.Ping(ctx), nil) }

// Failures returns how many calls have failed with ErrFailed since Open.
func (db *DB) Failures() uint64 { return db.failures.Load() }

// Commits returns how many write transactions were committed; each carries one write.
func (db *DB) Commits() (commits, writes uint64) { n := db.commits.Load(); return n, n }

// RoundTrips returns how many round trips to the server the store has made: each statement sent alone and
// each pipeline of them, from every package's records (and the schema's migrations).
func (db *DB) RoundTrips() uint64 { return db.trips.Load() }

// failed marks err as ErrFailed, and counts it, unless it is fnErr, the caller's function's own.
func (db *DB) failed(err, fnErr error) error {
	if err == nil || err == fnErr && !isDBError(err) {
		return err
	}
	if !errors.Is(err, context.Canceled) { // the caller went away: the database did not fail
		db.failures.Add(1)
	}
	return &fault.Error{Code: fault.Unavailable, Message: "the store failed (the database is unreachable or refused the write); try again", Err: fmt.Errorf("%w: %w", ErrFailed, err)}
}

// dbError marks an error of the database met inside a caller's function, so that it is told apart from
// the function's own.
type dbError struct{ err error }

func (e dbError) Error() string { return e.err.Error() }
func (e dbError) Unwrap() error { return e.err }

func isDBError(err error) bool {
	var d dbError
	return errors.As(err, &d)
}

// maxTries bounds how often a write runs when the server aborts it as a serialization failure or deadlock.
const maxTries = 10

// retryable reports whether the server aborted the transaction for a conflict with another: it may run again.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

// view runs fn in a read-only transaction at REPEATABLE READ: one snapshot, as bbolt's read transactions.
func (db *DB) view(ctx context.Context, fn func(pgx.Tx) error) error {
	var fnErr error
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	return db.failed(err, fnErr)
}

// update runs fn in a write transaction and commits it; fn runs again when the server aborts the
// transaction for a conflict.
func (db *DB) update(ctx context.Context, fn func(pgx.Tx) error) error {
	for try := 1; ; try++ {
		var fnErr error
		err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			fnErr = fn(tx)
			return fnErr
		})
		if err != nil && retryable(err) && try < maxTries {
			continue
		}
		if err == nil {
			db.commits.Add(1)
		}
		return db.failed(err, fnErr)
	}
}
