// Package store is flashotp's persistence on an embedded bbolt file.
//
// It implements the storage the domain packages declare (apps.Store in apps.go, numberpool.Store in
// pools.go, otp.Store in verifications.go, webhook.Store in webhooks.go, totp.Store in totp.go), and keeps
// their records opaque (the packages that own them encode them) in the buckets listed in schema.go, written
// one bucket at a time or through a Tx for several together (a verification with its index entries, events, attempts, report
// counters and webhook deliveries; an app with its keys), and the server key that codes are MACed under.
// Writes are group-committed: concurrent writes share one bbolt transaction and its fsyncs (commit.go),
// and each returns only once that transaction is on disk, so what a caller was told is stored survives a
// crash or kill -9. A second process opening the same file fails at once with ErrLocked rather than
// waiting.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"

	"flashotp/fault"
)

// Errors returned by this package.
var (
	// ErrNotFound is returned when no record has the given ID.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by Create when the ID is already taken.
	ErrExists = errors.New("already exists")
	// ErrLocked is returned by Open when another process holds the database.
	ErrLocked = errors.New("database is in use by another process")
	// ErrBadKey is returned by Open when the configured or stored server key is not usable.
	ErrBadKey = errors.New("bad server key")
	// ErrFailed wraps the database's own errors, as opposed to its callers': a full, read-only or failing
	// disk, a file that can no longer be mapped. A write that failed so was rolled back, with one exception
	// bbolt cannot help: a disk that fails between writing a transaction's meta page and syncing it leaves
	// that transaction visible to this process (and maybe on disk). The call may succeed once the disk is
	// mended. It comes inside a *fault.Error: the caller is told unavailable, the log gets the detail.
	ErrFailed = errors.New("store failed")
	// ErrDamaged is returned by Open when neither of the database's two last transactions can be read.
	ErrDamaged = errors.New("database file is damaged")
	// ErrUnclean is returned by BackupFile when the last engine to use the file did not close it: the
	// engine checks (and may mend) such a file at its next start, and a copy should be taken after that.
	ErrUnclean = errors.New("database was not closed cleanly")
)

// KeyFile is the name of the server key file created beside the database when no key is configured.
const KeyFile = "flashotp.key"

// DB is an open store.
type DB struct {
	bolt *bolt.DB
	key  []byte
	// Repair says what Open mended in the file, if anything: for the log.
	Repair string
	// failures counts the calls that failed with ErrFailed, for the metrics.
	failures atomic.Uint64
	commits  *committer // the group commit of every write
}

// Open opens (creating if needed) the database at path. secretKeyHex, when not empty, is the server key;
// otherwise the key is read from KeyFile beside the database, or generated there (mode 0600) at first start.
func Open(path, secretKeyHex string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	key, err := loadKey(filepath.Join(filepath.Dir(path), KeyFile), secretKeyHex)
	if err != nil {
		return nil, err
	}
	b, repair, err := open(path, &bolt.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &DB{bolt: b, key: key, Repair: repair, commits: newCommitter(b)}, nil
}

// ParseKey decodes a configured server key (store.secret_key): hex, at least 16 bytes.
func ParseKey(configured string) ([]byte, error) {
	k, err := hex.DecodeString(configured)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("store.secret_key: %w: want at least 32 hex characters", ErrBadKey)
	}
	return k, nil
}

func loadKey(file, configured string) ([]byte, error) {
	if configured != "" {
		return ParseKey(configured)
	}
	data, err := os.ReadFile(file)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("%s: %w: want at least 32 hex characters", file, ErrBadKey)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read server key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	// Written whole to a temporary file, then linked into place: a crash leaves either no key file or a
	// complete one, and link fails if a racing first start got there first (both then use its key).
	tmp, err := os.CreateTemp(filepath.Dir(file), ".flashotp.key.*")
	if err != nil {
		return nil, fmt.Errorf("write server key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write server key: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write server key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write server key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write server key: %w", err)
	}
	if err := os.Link(tmp.Name(), file); errors.Is(err, os.ErrExist) {
		return loadKey(file, "")
	} else if err != nil {
		return nil, fmt.Errorf("write server key: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(file)); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return nil, fmt.Errorf("write server key: %w", err)
		}
	}
	return k, nil
}

// Close closes the database.
func (db *DB) Close() error {
	path := db.bolt.Path()
	db.commits.close()
	if err := db.bolt.Close(); err != nil {
		return err
	}
	if err := os.Remove(path + openMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Check reports whether the database can still be read: after a disk error bbolt may have lost its map
// of the file, and then every call fails with ErrFailed until the engine is restarted.
func (db *DB) Check() error { return db.view(func(*bolt.Tx) error { return nil }) }

// view runs fn in a read transaction.
func (db *DB) view(fn func(tx *bolt.Tx) error) error {
	var fnErr error
	err := db.bolt.View(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr })
	return db.failed(err, fnErr)
}

// batch runs fn in a group-committed write transaction.
func (db *DB) batch(fn func(tx *bolt.Tx) error) error {
	var fnErr error
	err := db.commits.do(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr })
	return db.failed(err, fnErr)
}

// failed marks err as ErrFailed, and counts it, unless it is fnErr, the caller's function's own.
func (db *DB) failed(err, fnErr error) error {
	if err == nil || err == fnErr {
		return err
	}
	db.failures.Add(1)
	return &fault.Error{Code: fault.Unavailable, Message: "the store failed (a full or failing disk); try again", Err: fmt.Errorf("%w: %w", ErrFailed, err)}
}

// Failures returns how many reads and writes have failed with ErrFailed since Open: every failure of the
// disk, wherever in the engine it surfaced.
func (db *DB) Failures() uint64 { return db.failures.Load() }

// Commits returns how many group-committed transactions the store has made, and how many writes they carried:
// writes / commits is the average group size.
func (db *DB) Commits() (commits, writes uint64) {
	return db.commits.commits.Load(), db.commits.writes.Load()
}

// Snapshot is the database as it was when the snapshot began: a read transaction kept open until Close, to
// copy the database from while writes go on. While it is open, a write that needs the file to grow waits
// for it (bbolt cannot remap the file under a reader), so it should be written out without delay and
// closed. It may be handed to another goroutine, not shared between two.
type Snapshot struct{ tx *bolt.Tx }

// Snapshot begins a snapshot; it fails at once, with ErrFailed, when the store can no longer be read.
func (db *DB) Snapshot() (*Snapshot, error) {
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return nil, db.failed(err, nil)
	}
	return &Snapshot{tx: tx}, nil
}

// Size is the length of the copy WriteTo writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the snapshot to w as a database file (bbolt's Tx.WriteTo). The server key is not in it
// (see Open).
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.tx.WriteTo(w) }

// Close ends the snapshot.
func (s *Snapshot) Close() error { return s.tx.Rollback() }

// Backup writes a consistent copy of the database to w (a Snapshot written and closed) and returns the
// bytes written.
func (db *DB) Backup(w io.Writer) (int64, error) {
	s, err := db.Snapshot()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.WriteTo(w)
}

// BackupFile is Backup of the database file at path when no engine has it open. It waits up to timeout for
// the file's lock and fails with ErrLocked if a running engine holds it, and with ErrUnclean if the last
// engine did not close it. The file is opened read-only and left as it is.
func BackupFile(path string, w io.Writer, timeout time.Duration) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("back up %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bolterr.ErrTimeout) {
		return 0, fmt.Errorf("back up %s: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("back up %s: %w", path, err)
	}
	defer b.Close()
	// Checked under the lock: while an engine runs the marker is there too, and that is ErrLocked above.
	if _, err := os.Stat(path + openMarker); err == nil {
		return 0, fmt.Errorf("back up %s: %w (%s is there)", path, ErrUnclean, filepath.Base(path+openMarker))
	}
	return (&DB{bolt: b}).Backup(w)
}

// CheckBackup reports whether the file at path is a whole copy as Backup writes it: a database whose newest
// transaction's pages are all in the file. A copy cut short (the connection broke, the disk filled) is
// refused. It does not read every page: that is `bbolt check`'s job, and the engine's after an unclean stop.
func CheckBackup(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("not a database (%d bytes): %w", fi.Size(), err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		if fi.Size() < tx.Size() {
			return fmt.Errorf("cut short: %d of %d bytes", fi.Size(), tx.Size())
		}
		return nil
	})
}

// Key returns the server key codes are MACed under.
func (db *DB) Key() []byte { return db.key }

// bucket is a named set of records in the store. Writes to any bucket share the group commit.
type bucket struct {
	db   *DB
	name []byte
}

// bucket returns the bucket called name, created at its first write.
func (db *DB) bucket(name string) *bucket { return &bucket{db: db, name: []byte(name)} }

// Create stores a new record; it fails with ErrExists if id is taken.
func (b *bucket) Create(id string, value []byte) error {
	return b.batch(func(bk *bolt.Bucket) error {
		if bk.Get([]byte(id)) != nil {
			return callerError{fmt.Errorf("create %s: %w", id, ErrExists)}
		}
		return bk.Put([]byte(id), value)
	})
}

// Put stores value under id, replacing what was there.
func (b *bucket) Put(id string, value []byte) error {
	return b.batch(func(bk *bolt.Bucket) error { return bk.Put([]byte(id), value) })
}

// PutMany stores every record, replacing what was there, in one transaction.
func (b *bucket) PutMany(records map[string][]byte) error {
	return b.batch(func(bk *bolt.Bucket) error {
		for id, v := range records {
			if err := bk.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Get returns a copy of the record stored under id, or ErrNotFound.
func (b *bucket) Get(id string) ([]byte, error) {
	var out []byte
	err := b.db.view(func(tx *bolt.Tx) error {
		var v []byte
		if bk := tx.Bucket(b.name); bk != nil {
			v = bk.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("get %s: %w", id, ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Update replaces the record under id with what fn returns, in one transaction. If fn fails, nothing
// changes and Update returns fn's error; if fn returns the value it was given, nothing is written. fn may
// run more than once (a batch that fails is retried call by call), so it must only compute from old.
func (b *bucket) Update(id string, fn func(old []byte) ([]byte, error)) error {
	return b.batch(func(bk *bolt.Bucket) error {
		stored := bk.Get([]byte(id))
		if stored == nil {
			return callerError{fmt.Errorf("update %s: %w", id, ErrNotFound)}
		}
		v, err := fn(bytes.Clone(stored))
		if err != nil {
			return callerError{err}
		}
		if bytes.Equal(v, stored) {
			return nil
		}
		return bk.Put([]byte(id), v)
	})
}

// Delete removes the record under id; removing a missing record is not an error.
func (b *bucket) Delete(id string) error {
	return b.batch(func(bk *bolt.Bucket) error { return bk.Delete([]byte(id)) })
}

// ForEach calls fn with a copy of every record, in key order, from one read transaction.
func (b *bucket) ForEach(fn func(id string, v []byte) error) error {
	return b.db.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.name)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error { return fn(string(k), bytes.Clone(v)) })
	})
}

// callerError marks an error that is the caller's own (not found, exists, fn refused): fn wrote nothing, and
// unlike a storage error it must not fail the other calls sharing the batch.
type callerError struct{ error }

// batch runs fn on the bucket in a group-committed transaction and returns its error.
func (b *bucket) batch(fn func(bk *bolt.Bucket) error) error {
	var callerErr error
	err := b.db.batch(func(tx *bolt.Tx) error {
		callerErr = nil
		bk, err := tx.CreateBucketIfNotExists(b.name)
		if err != nil {
			return err
		}
		err = fn(bk)
		var ce callerError
		if errors.As(err, &ce) {
			callerErr = ce.error
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return callerErr
}

// Count returns how many records the buckets hold together (the lists in schema.go name them): for tests
// that check what the engine wrote without knowing a bucket's name.
func (db *DB) Count(buckets ...string) (int, error) {
	n := 0
	for _, name := range buckets {
		k, err := db.bucket(name).Len()
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// Len returns the number of records.
func (b *bucket) Len() (int, error) {
	n := 0
	err := b.db.view(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(b.name); bk != nil {
			n = bk.Stats().KeyN
		}
		return nil
	})
	return n, err
}
