package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"flashotp/store"
)

const (
	// backupIdle is how long a backup through the admin API may go without a byte from the engine.
	backupIdle = 30 * time.Second
	// dbLockWait is how long `store backup --db` waits for the database's lock: an engine that is
	// stopping lets go of it within its shutdown; a running one never does.
	dbLockWait = 2 * time.Second
)

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Back up an engine's database, or move it into PostgreSQL"}
	cmd.AddCommand(newMigrateCmd())
	a := &adminClient{output: "text"}
	var dbPath string
	backup := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE, from a running engine (admin API) or a stopped one's file (--db)",
		Long: `Write a consistent copy of the database to FILE (mode 0600; written whole or not at all).

Against a running engine the copy comes through its admin API (--url, --token: http.admin_token), from one
read transaction: the engine keeps serving, and the copy holds what was written before it began.
With --db PATH it is read from the database file of an engine that is stopped (a running engine holds the
file's lock: back it up through the API).

The server key is not in the copy: keep store.secret_key, or the file flashotp.key beside the database,
with it. Restoring: docs/operations.md, "Backup and restore".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var from, key string
			var fill func(io.Writer) (int64, error)
			if dbPath != "" {
				if cmd.Flags().Changed("url") || cmd.Flags().Changed("token") {
					return errors.New("--db reads the file of a stopped engine, --url and --token ask a running one: give one or the other")
				}
				from = dbPath
				key = filepath.Join(filepath.Dir(dbPath), store.KeyFile) + " (or store.secret_key, if set)"
				fill = func(w io.Writer) (int64, error) { return backupFile(dbPath, w) }
			} else {
				if err := a.setup(cmd); err != nil {
					return err
				}
				from = a.URL
				key = "store.secret_key, or the file " + store.KeyFile + " beside the engine's database,"
				fill = func(w io.Writer) (int64, error) {
					n, err := a.Backup(cmd.Context(), w, backupIdle)
					return n, a.explain(err)
				}
			}
			n, err := writeBackup(args[0], fill)
			if err != nil {
				// err names the source: the database file, or the engine's URL.
				return fmt.Errorf("backup to %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s (%d bytes)\n", from, args[0], n)
			fmt.Fprintf(cmd.ErrOrStderr(), "The server key is not in the backup: keep %s with it, or the codes of pending verifications and the secrets of API-made keys cannot be checked after a restore.\n", key)
			return nil
		},
	}
	a.flags(backup)
	backup.Flags().StringVar(&dbPath, "db", "", "the database file of a stopped engine (store.path), instead of the admin API")
	cmd.AddCommand(backup)
	return cmd
}

// backupFile copies the database file of a stopped engine, saying what to do when it cannot.
func backupFile(path string, w io.Writer) (int64, error) {
	n, err := store.BackupFile(path, w, dbLockWait)
	switch {
	case errors.Is(err, store.ErrLocked):
		return n, fmt.Errorf("%w (an engine is running on it): back it up through the engine's admin API (--url, --token) instead of --db", err)
	case errors.Is(err, store.ErrUnclean):
		return n, fmt.Errorf("%w: start the engine once (it checks the file and mends it if needed) and stop it, then back up again; or copy the file as it is with cp", err)
	}
	return n, err
}

// writeBackup writes what fill writes to path, atomically: into a temporary file beside it (mode 0600),
// synced and checked to be a whole database, then renamed over path. path is left as it was, or is the
// whole new copy, never a part of one.
func writeBackup(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return 0, fmt.Errorf("%s is a directory: give the backup's file name", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // nothing left to remove after the rename
	n, err := fill(tmp)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := store.CheckBackup(tmp.Name()); err != nil {
		return n, fmt.Errorf("the copy is not whole, %s is left as it was: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return n, err
	}
	defer d.Close()
	return n, d.Sync()
}
