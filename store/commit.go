package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// committer is the store's group commit: one goroutine writes every pending write function in one bbolt
// transaction, and while that transaction commits (its pages written, two fdatasyncs), the writes that
// arrive meanwhile wait together for the next one. A lone write commits at once; under load a transaction
// takes everything that came during the previous commit. bbolt's own Batch instead waits a fixed delay for
// company and lets the batches it cuts queue for the writer one after another: small transactions, each
// paying a whole commit (measured in docs/benchmarks.md, "Group commit without a timer").
type committer struct {
	db      *bolt.DB
	mu      sync.Mutex
	pending []*write
	wake    chan struct{} // a write is pending
	done    chan struct{} // the goroutine has stopped
	closed  bool

	// commits counts the transactions committed, writes the write functions they carried.
	commits, writes atomic.Uint64
}

// write is one write function waiting for its transaction, and where its outcome goes.
type write struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// maxWrites bounds the write functions of one transaction (bbolt's Batch has the same bound).
const maxWrites = 1000

// errClosed is returned by writes after the store is closed.
var errClosed = errors.New("store closed")

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a transaction shared with the other pending writes and returns once it is on disk. If fn
// fails, the transaction is rolled back, fn's error is returned to it alone and the others run again
// without it: fn may run more than once.
func (c *committer) do(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, err: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	c.pending = append(c.pending, w)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return <-w.err
}

func (c *committer) run() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			batch := c.pending[:min(len(c.pending), maxWrites)]
			c.pending = c.pending[len(batch):]
			closed := c.closed
			c.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			c.commit(batch)
		}
	}
}

// commit writes batch in one transaction; a function that fails is taken out and run alone, the rest again.
func (c *committer) commit(batch []*write) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, w := range batch {
				if err := safely(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err == nil {
				c.commits.Add(1)
				c.writes.Add(uint64(len(batch)))
			}
			for _, w := range batch {
				w.err <- err
			}
			return
		}
		w := batch[failed]
		w.err <- c.db.Update(func(tx *bolt.Tx) error { return safely(w.fn, tx) })
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// safely runs fn, a panic in it becoming its error (as in bbolt's Batch).
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a write: %v", p)
		}
	}()
	return fn(tx)
}

// close lets the pending writes commit, then stops the goroutine; later writes fail with errClosed.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake is pending: the goroutine sees closed after it
	}
	<-c.done
}
