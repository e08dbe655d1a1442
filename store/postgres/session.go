package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// session is one transaction of otp's store on one connection, sent in as few round trips as it allows: its
// BEGIN goes with its first statement, its writes wait (queued in a pipeline) until a read needs them or
// the transaction ends, and its COMMIT goes with its last writes. A send (a read of the new ID, three
// inserts) is two round trips; an outcome (the record read FOR UPDATE, its update and events) two.
type session struct {
	ctx   context.Context
	conn  *pgx.Conn
	begin string     // the BEGIN still to send; "" once sent
	queue *pgx.Batch // statements not yet sent
}

// run runs fn in a session (begun by begin) on a connection of the pool and ends it: committed if fn
// succeeded, else rolled back. It returns the transaction's error (fn's, or the database's marked dbError)
// and fn's own, for DB.failed.
func (db *DB) run(ctx context.Context, begin string, fn func(s *session) error) (err, fnErr error) {
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return err, nil
	}
	// A connection left inside a transaction (its ROLLBACK failed) is closed by the pool, not reused.
	defer c.Release()
	s := &session{ctx: ctx, conn: c.Conn(), begin: begin, queue: &pgx.Batch{}}
	fnErr = fn(s)
	err = s.end(fnErr == nil)
	switch {
	case fnErr != nil:
		return fnErr, fnErr
	case err != nil:
		return dbError{err}, nil
	}
	return nil, nil
}

// exec queues a statement; check, if not nil, is called with its result when it has run (and its error
// returned as the transaction's).
func (s *session) exec(check func(pgconn.CommandTag) error, sql string, args ...any) {
	q := s.queue.Queue(sql, args...)
	if check != nil {
		q.Exec(check)
	}
}

// flush sends what is queued, behind the BEGIN if it has not gone yet, and then last (if not nil) queued
// like the rest: its results are read by last's own callbacks. It returns the first error.
func (s *session) flush(last func(*pgx.Batch)) error {
	b := s.queue
	s.queue = &pgx.Batch{}
	if s.begin != "" {
		rest := b.QueuedQueries
		b = &pgx.Batch{}
		b.Queue(s.begin)
		b.QueuedQueries = append(b.QueuedQueries, rest...)
		s.begin = ""
	}
	if last != nil {
		last(b)
	}
	if b.Len() == 0 {
		return nil
	}
	return s.conn.SendBatch(s.ctx, b).Close()
}

// queryRow runs sql after what is queued and scans its one row into dest; no row is pgx.ErrNoRows.
func (s *session) queryRow(sql string, args []any, dest ...any) error {
	var scanErr error
	err := s.flush(func(b *pgx.Batch) {
		b.Queue(sql, args...).QueryRow(func(r pgx.Row) error {
			scanErr = r.Scan(dest...)
			if errors.Is(scanErr, pgx.ErrNoRows) {
				return nil // not an error of the batch: the caller reads it from scanErr
			}
			return scanErr
		})
	})
	if err != nil {
		return err
	}
	return scanErr
}

// query runs sql after what is queued and returns its rows, read with pgx.CollectRows.
func (s *session) query(sql string, args ...any) (pgx.Rows, error) {
	if err := s.flush(nil); err != nil {
		return nil, err
	}
	return s.conn.Query(s.ctx, sql, args...)
}

// end commits (or, when commit is false, rolls back) what the session did: nothing to send if it never
// sent or queued anything.
func (s *session) end(commit bool) error {
	if !commit {
		s.queue = &pgx.Batch{}
		if s.begin != "" {
			return nil // the server never saw the transaction
		}
		_, err := s.conn.Exec(s.ctx, "ROLLBACK")
		return err
	}
	if s.begin != "" && s.queue.Len() == 0 {
		return nil
	}
	return s.flush(func(b *pgx.Batch) { b.Queue("COMMIT") })
}
