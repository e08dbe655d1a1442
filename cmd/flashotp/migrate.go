package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"flashotp/otp"
	"flashotp/store"
	"flashotp/store/postgres"
)

// newMigrateCmd is `flashotp store migrate`: a stopped engine's bbolt file copied into PostgreSQL.
func newMigrateCmd() *cobra.Command {
	var dbPath, dsn, secretKey string
	cmd := &cobra.Command{
		Use:   "migrate --db PATH --to DSN",
		Short: "Copy a stopped engine's bbolt file into an empty PostgreSQL database (store.driver postgres)",
		Long: `Copy every record of a stopped engine's bbolt file (store.path) into the PostgreSQL database DSN
(store.dsn), whose schema is created first: verifications with their attempts, expiries and events,
report counts, apps and API keys, pools and quarantines, webhook deliveries not yet delivered, TOTP
enrollments, console operators and the audit log. Records are copied as they are: pending codes verify
on the new store. The recipients' recent-call histories are not copied: a pool's cooldown starts again
(it lasts the pool's cooldown at most).

The database must hold no verification and no event yet. The engines on it must use the bbolt store's
server key as store.secret_key: the key in flashotp.key beside the file, or the store.secret_key the
engine had (give it with --secret-key, so that none is looked for beside the file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dbPath == "" || dsn == "" {
				return errors.New("--db (the bbolt file) and --to (the PostgreSQL DSN) are both needed")
			}
			return migrate(cmd.Context(), dbPath, secretKey, dsn, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&dbPath, "db", "", "the database file of a stopped engine (store.path)")
	cmd.Flags().StringVar(&dsn, "to", "", "the PostgreSQL database to fill (store.dsn)")
	cmd.Flags().StringVar(&secretKey, "secret-key", "", "the engine's store.secret_key, if it had one")
	return cmd
}

// migrate copies the bbolt file at path into the PostgreSQL database dsn.
func migrate(ctx context.Context, path, secretKey, dsn string, out, errOut io.Writer) error {
	keyFile := filepath.Join(filepath.Dir(path), store.KeyFile)
	if _, err := os.Stat(keyFile); secretKey == "" && err != nil {
		// Never a new key: records made under another one would not verify.
		return fmt.Errorf("no server key: %w (give the engine's store.secret_key with --secret-key)", err)
	}
	from, err := store.Open(path, secretKey)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer from.Close()
	to, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer to.Close()
	c, err := otp.Copy(ctx, from.Verifications(), to.Verifications())
	if err != nil {
		return fmt.Errorf("copy verifications: %w", err)
	}
	n, err := copyRecords(ctx, boltBackend{from}, pgBackend{DB: to})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %s into PostgreSQL: %d verifications, %d verify attempts, %d expiry entries, %d events, %d report rows, %d other records\n",
		path, c.Verifications, c.Attempts, c.Expiries, c.Events, c.ReportRows, n)
	key := "the key in " + keyFile
	if secretKey != "" {
		key = "the store.secret_key given"
	}
	fmt.Fprintf(errOut, "Start the engines with store.driver: postgres, store.dsn, and store.secret_key set to %s: codes and sealed secrets were made under it.\n", key)
	return nil
}

// copyRecords copies what the packages beside otp keep from one backend to another, and returns how many
// records it copied.
func copyRecords(ctx context.Context, from, to backend) (int, error) {
	n := 0
	apps, keys := map[string][]byte{}, map[string][]byte{}
	if err := from.LoadApps(ctx, func(id string, r []byte) error { apps[id] = r; return nil },
		func(id string, r []byte) error { keys[id] = r; return nil }); err != nil {
		return n, err
	}
	if err := to.SaveApps(ctx, apps, keys); err != nil {
		return n, err
	}
	n += len(apps) + len(keys)
	// Each kind is read whole (values copied: some stores lend them only for the call), then written.
	for _, c := range []struct {
		what string
		load func(fn func(k string, v []byte) error) error
		put  func(k string, v []byte) error
	}{
		{"pools", func(fn func(string, []byte) error) error { return from.LoadPools(ctx, fn) },
			func(k string, v []byte) error { return to.PutPool(ctx, k, v) }},
		{"quarantines", func(fn func(string, []byte) error) error { return from.LoadQuarantines(ctx, fn) },
			func(k string, v []byte) error { return to.PutQuarantine(ctx, k, v) }},
		{"operators", func(fn func(string, []byte) error) error { return from.LoadOperators(ctx, fn) },
			func(k string, v []byte) error { return to.PutOperator(ctx, k, v) }},
		{"the audit log", func(fn func(string, []byte) error) error {
			var ferr error
			err := from.Audit(ctx, "", func(id string, r []byte) bool { ferr = fn(id, r); return ferr == nil })
			return errors.Join(err, ferr)
		}, func(k string, v []byte) error { return to.PutAudit(ctx, k, v) }},
		{"webhook deliveries", func(fn func(string, []byte) error) error {
			var ferr error
			err := from.Deliveries(ctx, func(id string, d []byte) bool { ferr = fn(id, d); return ferr == nil })
			return errors.Join(err, ferr)
		}, func(k string, v []byte) error { return to.PutDelivery(ctx, k, v) }},
	} {
		type kv struct {
			k string
			v []byte
		}
		var all []kv
		if err := c.load(func(k string, v []byte) error { all = append(all, kv{k, bytes.Clone(v)}); return nil }); err != nil {
			return n, fmt.Errorf("read %s: %w", c.what, err)
		}
		for _, r := range all {
			if err := c.put(r.k, r.v); err != nil {
				return n, fmt.Errorf("write %s: %w", c.what, err)
			}
		}
		n += len(all)
	}
	type enrollment struct {
		app, user string
		r         []byte
	}
	var es []enrollment
	if err := from.Enrollments(ctx, func(app, user string, r []byte) error { es = append(es, enrollment{app, user, r}); return nil }); err != nil {
		return n, fmt.Errorf("read TOTP enrollments: %w", err)
	}
	for _, e := range es {
		if err := to.PutEnrollment(ctx, e.app, e.user, e.r, true); err != nil {
			return n, fmt.Errorf("write TOTP enrollments: %w", err)
		}
	}
	return n + len(es), nil
}
