package peers

import (
	"errors"
	"testing"

	"flashotp/internal/pgserver"
)

// Postgres is a PostgreSQL server (Debian's postgresql) started for a test (pgserver), stopped and removed
// when the test ends.
type Postgres struct{ *pgserver.Server }

// StartPostgres initialises a cluster and starts its server (pgserver.Start). Without PostgreSQL the test
// is skipped, or fails under CI=true.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return started(t, "start postgres", pgserver.Start)
}

// StartStandby starts a streaming standby of p and makes it p's synchronous standby (pgserver).
func (p *Postgres) StartStandby(t testing.TB) *Postgres {
	t.Helper()
	return started(t, "start the standby", p.Server.StartStandby)
}

func started(t testing.TB, what string, start func() (*pgserver.Server, error)) *Postgres {
	t.Helper()
	s, err := start()
	if errors.Is(err, pgserver.ErrMissing) {
		Missing(t, err.Error())
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(func() { s.Stop(); s.Remove() })
	return &Postgres{s}
}

// Promote makes a standby the primary and waits until it takes writes.
func (p *Postgres) Promote(t testing.TB) {
	t.Helper()
	if err := p.Server.Promote(); err != nil {
		t.Fatal(err)
	}
}

// SQL runs one statement with psql on database postgres and returns its output, unaligned.
func (p *Postgres) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := p.Server.SQL(sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CreateDB creates the database name and returns its DSN (pgx's URL form).
func (p *Postgres) CreateDB(t testing.TB, name string) string {
	t.Helper()
	dsn, err := p.Server.CreateDB(name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
