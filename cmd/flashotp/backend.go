package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/console"
	"flashotp/httpapi"
	"flashotp/limits"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/store"
	"flashotp/store/postgres"
	"flashotp/totp"
	"flashotp/webhook"
)

// backend is the store the engine runs on (store.driver): the embedded bbolt file or PostgreSQL. Both keep
// every package's records behind the same contracts (internal/conformance checks them on both).
type backend interface {
	apps.Store
	numberpool.Store
	webhook.Store
	totp.Store
	console.Store
	console.AuditStore
	// OTP is the store of verifications and what is written with them.
	OTP() otp.Store
	// Key is the server key codes are MACed under.
	Key() []byte
	// Failures counts the reads and writes that failed in the store; Commits its committed transactions
	// and the writes they carried.
	Failures() uint64
	Commits() (commits, writes uint64)
	// Check reports whether the store can still be read.
	Check() error
	Close() error
}

// checkTimeout bounds a readiness check of a store over the network.
const checkTimeout = 2 * time.Second

// boltBackend is the embedded store.
type boltBackend struct{ *store.DB }

func (b boltBackend) OTP() otp.Store { return b.Verifications() }

// pgBackend is the PostgreSQL store, with the server key from the configuration (every engine must use the
// same, and it must not live in the database beside the MACs it protects).
type pgBackend struct {
	*postgres.DB
	key []byte
}

func (b pgBackend) OTP() otp.Store { return b.Verifications() }
func (b pgBackend) Key() []byte    { return b.key }

func (b pgBackend) Check() error {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	return b.DB.Check(ctx)
}

// openBackend opens the store cfg names; repair says what Open mended in a bbolt file, if anything.
func openBackend(ctx context.Context, cfg configs.Store) (b backend, repair string, err error) {
	if cfg.Driver == configs.StorePostgres {
		key, err := store.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, "", err
		}
		db, err := postgres.Open(ctx, cfg.DSN)
		if err != nil {
			return nil, "", fmt.Errorf("open store: %w", err)
		}
		return pgBackend{DB: db, key: key}, "", nil
	}
	db, err := store.Open(cfg.Path, cfg.SecretKey)
	if err != nil {
		return nil, "", err
	}
	return boltBackend{db}, db.Repair, nil
}

// nodes returns the leases of the engines sharing the store, nil for the embedded store (one engine).
func (m *Main) nodes() otp.Nodes {
	if b, ok := m.db.(pgBackend); ok {
		return b.DB
	}
	return nil
}

// shared reports whether engines share the store (PostgreSQL): each then reads again what another changed.
func (m *Main) shared() bool {
	_, ok := m.db.(pgBackend)
	return ok
}

// follow reads again, until ctx ends, what other engines sharing the store change (PostgreSQL's
// LISTEN/NOTIFY: live here within about coalesce and a round trip): pools, quarantines, apps and keys,
// console operators. The embedded store has no other engine: nothing to follow.
func (m *Main) follow(ctx context.Context, con httpapi.ConsoleConfig) {
	b, ok := m.db.(pgBackend)
	if !ok {
		return
	}
	b.Listen(ctx, m.Log, func(ctx context.Context, c postgres.Change) error {
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		switch c {
		case postgres.ChangedPools:
			return m.numbers.ReloadPools(ctx)
		case postgres.ChangedQuarantines:
			return m.numbers.ReloadQuarantines(ctx)
		case postgres.ChangedApps:
			if err := m.apps.Reload(ctx); errors.Is(err, apps.ErrPoolsRefused) {
				m.Log.Warn("an app another engine stored does not fit this engine's pools", "err", err)
			} else if err != nil {
				return err
			}
			return nil
		case postgres.ChangedOperators:
			if con.Accounts == nil {
				return nil // console off
			}
			gone, err := con.Accounts.Reload(ctx)
			for _, name := range gone {
				con.Sessions.EndOperator(name)
			}
			return err
		}
		return nil
	})
}

// limiter returns the rate limiter: its events in memory for an engine of its own, in the database for
// engines sharing one (a limit holds across them).
func (m *Main) limiter() *limits.Limiter {
	if b, ok := m.db.(pgBackend); ok {
		return limits.NewShared(b.DB, nil, m.Log)
	}
	return limits.New(nil)
}

// roundTrips returns the counter of the store's round trips to its server, nil for the embedded store.
func (m *Main) roundTrips() func() uint64 {
	if b, ok := m.db.(pgBackend); ok {
		return b.RoundTrips
	}
	return nil
}

// backup returns GET /admin/store/backup's copier for the bbolt store; PostgreSQL has none (pg_dump and the
// server's own backups are its tools: docs/operations.md).
func (m *Main) backup() func() (httpapi.Snapshot, error) {
	if b, ok := m.db.(boltBackend); ok {
		return func() (httpapi.Snapshot, error) { return b.Snapshot() }
	}
	return nil
}
