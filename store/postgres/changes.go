package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change names what another engine changed in the records engines keep in memory (apps and keys, pools,
// quarantines, console operators): an engine told of it reads that part again.
type Change string

// The changes Listen tells of, in the order it tells them (pools before the apps that name them).
const (
	ChangedPools       Change = "pools"
	ChangedQuarantines Change = "quarantines"
	ChangedApps        Change = "apps"
	ChangedOperators   Change = "operators"
)

// Changes are every Change, in the order Listen tells them.
var Changes = []Change{ChangedPools, ChangedQuarantines, ChangedApps, ChangedOperators}

// changeOf maps the kinds of records engines cache to the change a write of them is.
var changeOf = map[string]Change{
	kindApps: ChangedApps, kindKeys: ChangedApps, kindPools: ChangedPools,
	kindQuarantine: ChangedQuarantines, kindOperators: ChangedOperators,
}

// channel is the NOTIFY channel of the changes: each payload is "<origin> <change>", origin naming the DB
// that wrote it, so that an engine skips its own.
const channel = "flashotp_changes"

// coalesce is how long Listen gathers notifications before it tells them: a burst of quarantines is one
// read again, not hundreds.
const coalesce = 50 * time.Millisecond

// retryChange is how long a change whose reading failed waits before it is read again.
const retryChange = time.Second

func newOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// queueNotify queues, in the transaction of b, the notification of a write of records of kind, if engines
// cache that kind. PostgreSQL delivers it at the commit, and only then.
func (db *DB) queueNotify(b *pgx.Batch, kind string) {
	if c, ok := changeOf[kind]; ok {
		b.Queue(`SELECT pg_notify($1, $2)`, channel, db.origin+" "+string(c))
	}
}

// Listen calls fn with each change another engine committed, until ctx ends. Changes within coalesce of
// each other are told once each, in the order of Changes. It tells every change when it starts listening
// (at first, and again after a lost connection, when it may have missed some), so that fn also catches up;
// a change fn fails to take is logged and told again after retryChange. fn runs on one goroutine, one
// change at a time. Listen returns when ctx ends.
func (db *DB) Listen(ctx context.Context, log *slog.Logger, fn func(context.Context, Change) error) {
	var (
		mu      sync.Mutex
		pending = map[Change]bool{}
		wake    = make(chan struct{}, 1)
		done    = make(chan struct{})
	)
	tell := func(c Change) {
		mu.Lock()
		pending[c] = true
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(coalesce):
			}
			mu.Lock()
			now := pending
			pending = map[Change]bool{}
			mu.Unlock()
			for _, c := range Changes {
				if !now[c] {
					continue
				}
				if err := fn(ctx, c); err != nil && ctx.Err() == nil {
					log.Error("store: reading another engine's change failed; trying again", "change", c, "err", err, "in", retryChange)
					time.AfterFunc(retryChange, func() { tell(c) })
				}
			}
		}
	}()
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		err := db.listen(ctx, func() {
			backoff = 100 * time.Millisecond
			for _, c := range Changes {
				tell(c)
			}
		}, tell)
		if ctx.Err() != nil {
			break
		}
		log.Warn("store: listening for other engines' changes failed; trying again", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	<-done
}

// listen opens a connection of its own (a pooled one would be taken from the sends for good), LISTENs, calls
// listening, then tells each notification of another DB's change until the connection fails or ctx ends.
func (db *DB) listen(ctx context.Context, listening func(), tell func(Change)) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		origin, c, _ := strings.Cut(n.Payload, " ")
		if origin != db.origin {
			tell(Change(c))
		}
	}
}
