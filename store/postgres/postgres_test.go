package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/internal/conformance"
	"flashotp/internal/peers"
	"flashotp/otp"
	"flashotp/store/postgres"
)

// dbs numbers the databases the tests create on their server.
var dbs atomic.Int64

// open returns a store on a new database of pg, closed when the test ends.
func open(t *testing.T, pg *peers.Postgres) *postgres.DB {
	t.Helper()
	dsn := pg.CreateDB(t, fmt.Sprintf("flashotp_%d", dbs.Add(1)))
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The PostgreSQL store keeps otp's contract as every backend must (internal/conformance).
func TestOTPConformance(t *testing.T) {
	pg := peers.StartPostgres(t)
	conformance.OTP(t, func(t *testing.T) otp.Store { return open(t, pg).Verifications() })
}

// The PostgreSQL store keeps the other packages' contracts as every backend must (internal/conformance).
func TestRecordsConformance(t *testing.T) {
	pg := peers.StartPostgres(t)
	conformance.RecordStores(t, func(t *testing.T) conformance.Records { return open(t, pg) })
}

// Leases: renewed ones are not expired; one that ran out is taken over once; a node that left has none;
// the leader is the live node with the lowest ID.
func TestNodeLeases(t *testing.T) {
	db := open(t, peers.StartPostgres(t))
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if err := db.Renew(ctx, n, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Renew(ctx, "b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.Leave(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if dead, err := db.Expired(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("Expired at once = %v, %v", dead, err)
	}
	if l, err := db.Leader(ctx); err != nil || l != "a" {
		t.Errorf("Leader = %q, %v; want a, the lowest live ID", l, err)
	}
	time.Sleep(400 * time.Millisecond)
	if dead, err := db.Expired(ctx); err != nil || !slices.Equal(dead, []string{"a"}) {
		t.Fatalf("Expired = %v, %v; want [a]", dead, err)
	}
	if l, err := db.Leader(ctx); err != nil || l != "b" {
		t.Errorf("Leader once a's lease ran out = %q, %v; want b", l, err)
	}
	if won, err := db.TakeOver(ctx, "b"); err != nil || won {
		t.Errorf("took over a live node: %v, %v", won, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if won, err := db.TakeOver(ctx, "a"); err != nil {
				t.Error(err)
			} else if won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 5 engines took the dead one over, want 1", wins.Load())
	}
	if dead, err := db.Expired(ctx); err != nil || len(dead) != 0 {
		t.Errorf("after the take-over Expired = %v, %v", dead, err)
	}
}
