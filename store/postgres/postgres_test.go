package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
