package store_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/store"
)

// mustOpen opens a store with a generated key in a fresh temporary directory and closes it when the test
// ends. It returns the database path for tests that reopen it.
func mustOpen(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flashotp.db")
	return mustOpenAt(t, path, ""), path
}

// mustOpenAt opens the store at path and closes it when the test ends; closing it earlier is fine.
func mustOpenAt(t *testing.T, path, keyHex string) *store.DB {
	t.Helper()
	db, err := store.Open(path, keyHex)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// mustGet returns the record under id, failing the test if there is none.
func mustGet(t *testing.T, db *store.DB, id string) []byte {
	t.Helper()
	v, err := db.Bucket("verifications").Get(id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return v
}

func TestKeyGeneratedAtFirstOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // Open creates the directory
	path := filepath.Join(dir, "flashotp.db")
	db := mustOpenAt(t, path, "")
	key := bytes.Clone(db.Key())
	if len(key) < 16 {
		t.Fatalf("generated key is %d bytes, want at least 16", len(key))
	}

	keyFile := filepath.Join(dir, store.KeyFile)
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %v, want 0600", mode)
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != hex.EncodeToString(key) {
		t.Errorf("key file holds %q, want the hex of Key() %q", got, hex.EncodeToString(key))
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := mustOpenAt(t, path, "")
	if !bytes.Equal(db2.Key(), key) {
		t.Errorf("key after reopen = %x, want %x", db2.Key(), key)
	}
}

func TestConfiguredKey(t *testing.T) {
	tests := []struct {
		name   string
		keyHex string
	}{
		{"16 bytes", "000102030405060708090a0b0c0d0e0f"},
		{"32 bytes upper case", strings.Repeat("AB", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpenAt(t, filepath.Join(dir, "flashotp.db"), tt.keyHex)
			want, _ := hex.DecodeString(tt.keyHex)
			if !bytes.Equal(db.Key(), want) {
				t.Errorf("Key() = %x, want %x", db.Key(), want)
			}
			if _, err := os.Stat(filepath.Join(dir, store.KeyFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("key file written with a configured key (stat error %v)", err)
			}
		})
	}
}

func TestBadKey(t *testing.T) {
	tests := []struct {
		name       string
		configured string // the secret_key setting
		keyFile    string // non-empty: contents of an existing key file
	}{
		{name: "not hex", configured: strings.Repeat("zz", 16)},
		{name: "odd length", configured: strings.Repeat("a", 33)},
		{name: "too short", configured: "00112233445566778899aabbccddee"},
		{name: "spaces inside", configured: "00112233 445566778899aabbccddeeff"},
		{name: "key file not hex", keyFile: "this is not a key\n"},
		{name: "key file too short", keyFile: "0011\n"},
		{name: "key file empty", keyFile: "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.keyFile != "" {
				if err := os.WriteFile(filepath.Join(dir, store.KeyFile), []byte(tt.keyFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			db, err := store.Open(filepath.Join(dir, "flashotp.db"), tt.configured)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want ErrBadKey")
			}
			if !errors.Is(err, store.ErrBadKey) {
				t.Errorf("Open error = %v, want ErrBadKey", err)
			}
			if tt.keyFile == "" {
				if _, err := os.Stat(filepath.Join(dir, store.KeyFile)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("key file written after a bad configured key (stat error %v)", err)
				}
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	db, _ := mustOpen(t)
	if err := db.Bucket("verifications").Create("otp_1", []byte("one")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := mustGet(t, db, "otp_1"); string(got) != "one" {
		t.Errorf("Get after Create = %q, want one", got)
	}

	// Get returns a copy: changing it must not change the record.
	got := mustGet(t, db, "otp_1")
	got[0] = 'X'
	if again := mustGet(t, db, "otp_1"); string(again) != "one" {
		t.Errorf("Get after changing a returned value = %q, want one", again)
	}

	err := db.Bucket("verifications").Update("otp_1", func(old []byte) ([]byte, error) {
		if string(old) != "one" {
			t.Errorf("Update fn got %q, want one", old)
		}
		return []byte("two"), nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := mustGet(t, db, "otp_1"); string(got) != "two" {
		t.Errorf("Get after Update = %q, want two", got)
	}

	// Returning the value unchanged is fine and keeps it.
	if err := db.Bucket("verifications").Update("otp_1", func(old []byte) ([]byte, error) { return old, nil }); err != nil {
		t.Fatalf("no-op Update: %v", err)
	}
	if got := mustGet(t, db, "otp_1"); string(got) != "two" {
		t.Errorf("Get after no-op Update = %q, want two", got)
	}

	if err := db.Bucket("verifications").Delete("otp_1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := db.Bucket("verifications").Get("otp_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if err := db.Bucket("verifications").Delete("otp_1"); err != nil {
		t.Errorf("Delete of a missing record = %v, want nil", err)
	}
	// The ID is free again.
	if err := db.Bucket("verifications").Create("otp_1", []byte("three")); err != nil {
		t.Errorf("Create after Delete: %v", err)
	}
}

func TestErrors(t *testing.T) {
	errFn := errors.New("fn refuses")
	tests := []struct {
		name string
		do   func(db *store.DB) error
		want error
	}{
		{"create twice", func(db *store.DB) error { return db.Bucket("verifications").Create("otp_a", []byte("other")) }, store.ErrExists},
		{"get missing", func(db *store.DB) error { _, err := db.Bucket("verifications").Get("otp_missing"); return err }, store.ErrNotFound},
		{"update missing", func(db *store.DB) error {
			return db.Bucket("verifications").Update("otp_missing", func(old []byte) ([]byte, error) {
				t.Error("Update called fn for a missing record")
				return old, nil
			})
		}, store.ErrNotFound},
		{"update fn fails", func(db *store.DB) error {
			return db.Bucket("verifications").Update("otp_a", func(old []byte) ([]byte, error) { return []byte("changed"), errFn })
		}, errFn},
		{"update fn fails after changing its argument", func(db *store.DB) error {
			return db.Bucket("verifications").Update("otp_a", func(old []byte) ([]byte, error) {
				copy(old, "XXXX")
				return old, errFn
			})
		}, errFn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := mustOpen(t)
			for _, id := range []string{"otp_a", "otp_b"} {
				if err := db.Bucket("verifications").Create(id, []byte("orig-"+id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.do(db); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			// Nothing changed.
			for _, id := range []string{"otp_a", "otp_b"} {
				if got := mustGet(t, db, id); string(got) != "orig-"+id {
					t.Errorf("%s = %q after a failed call, want %q", id, got, "orig-"+id)
				}
			}
			if _, err := db.Bucket("verifications").Get("otp_missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("otp_missing appeared: Get error %v", err)
			}
			if n := db.Failures(); n != 0 {
				t.Errorf("%d failures counted for the callers' own errors", n)
			}
		})
	}
}

// Each read or write the database itself fails (here closed, as bbolt is once it lost its map of the file)
// is ErrFailed and counted for the metrics.
func TestFailuresCounted(t *testing.T) {
	db, _ := mustOpen(t)
	if err := db.Bucket("verifications").Create("otp_a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Bucket("verifications").Get("otp_a"); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Get on a closed database: %v, want ErrFailed", err)
	}
	if err := db.Bucket("verifications").Put("otp_b", []byte("b")); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Put on a closed database: %v, want ErrFailed", err)
	}
	if n := db.Failures(); n != 2 {
		t.Errorf("Failures = %d, want 2", n)
	}
}

// TestConcurrentWrites runs writes that share group commits: one caller's ErrExists or failing fn must
// neither fail nor undo the others'.
func TestConcurrentWrites(t *testing.T) {
	db, _ := mustOpen(t)
	if err := db.Bucket("verifications").Create("otp_counter", []byte{0}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errFn := errors.New("fn refuses")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dupWins int
	)
	for i := 0; i < n; i++ {
		wg.Add(4)
		go func() { // distinct IDs: all succeed
			defer wg.Done()
			id := "otp_" + string(rune('a'+i))
			if err := db.Bucket("verifications").Create(id, []byte(id)); err != nil {
				t.Errorf("Create(%s): %v", id, err)
			}
		}()
		go func() { // the same ID: exactly one wins
			defer wg.Done()
			err := db.Bucket("verifications").Create("otp_dup", []byte{byte(i)})
			switch {
			case err == nil:
				mu.Lock()
				dupWins++
				mu.Unlock()
			case !errors.Is(err, store.ErrExists):
				t.Errorf("Create(otp_dup) error = %v, want nil or ErrExists", err)
			}
		}()
		go func() { // increments: none lost
			defer wg.Done()
			err := db.Bucket("verifications").Update("otp_counter", func(old []byte) ([]byte, error) {
				return []byte{old[0] + 1}, nil
			})
			if err != nil {
				t.Errorf("Update(otp_counter): %v", err)
			}
		}()
		go func() { // refusals: change nothing
			defer wg.Done()
			err := db.Bucket("verifications").Update("otp_counter", func(old []byte) ([]byte, error) {
				return []byte{200}, errFn
			})
			if !errors.Is(err, errFn) {
				t.Errorf("refused Update error = %v, want %v", err, errFn)
			}
		}()
	}
	wg.Wait()

	if dupWins != 1 {
		t.Errorf("%d concurrent Creates of one ID succeeded, want 1", dupWins)
	}
	if got := mustGet(t, db, "otp_counter"); len(got) != 1 || got[0] != n {
		t.Errorf("counter = %v after %d increments, want [%d]", got, n, n)
	}
	for i := 0; i < n; i++ {
		id := "otp_" + string(rune('a'+i))
		if got, err := db.Bucket("verifications").Get(id); err != nil || string(got) != id {
			t.Errorf("Get(%s) = %q, %v; want %q", id, got, err, id)
		}
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	_, path := mustOpen(t)
	start := time.Now()
	db2, err := store.Open(path, "")
	elapsed := time.Since(start)
	if err == nil {
		db2.Close()
		t.Fatal("second Open of an open database succeeded")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second Open error = %v, want ErrLocked", err)
	}
	if elapsed >= 2*time.Second {
		t.Errorf("second Open took %v, want under 2s", elapsed)
	}
}

func TestSurvivesReopen(t *testing.T) {
	db, path := mustOpen(t)
	records := map[string]string{"otp_1": "one", "otp_2": "two", "otp_3": "three"}
	for id, v := range records {
		if err := db.Bucket("verifications").Create(id, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Bucket("verifications").Update("otp_2", func([]byte) ([]byte, error) { return []byte("two, updated"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Bucket("verifications").Delete("otp_3"); err != nil {
		t.Fatal(err)
	}
	key := bytes.Clone(db.Key())
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db2 := mustOpenAt(t, path, "")
	if !bytes.Equal(db2.Key(), key) {
		t.Errorf("key changed across reopen")
	}
	tests := []struct {
		id      string
		want    string
		missing bool
	}{
		{id: "otp_1", want: "one"},
		{id: "otp_2", want: "two, updated"},
		{id: "otp_3", missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := db2.Bucket("verifications").Get(tt.id)
			if tt.missing {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get error = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Get = %q, want %q", got, tt.want)
			}
		})
	}
	if err := db2.Bucket("verifications").Create("otp_1", []byte("again")); !errors.Is(err, store.ErrExists) {
		t.Errorf("Create of a reopened record error = %v, want ErrExists", err)
	}
}

func TestTxScanAndBatch(t *testing.T) {
	db, _ := mustOpen(t)
	keys := []string{"a\x001", "a\x002", "a\x003", "b\x001"}
	if err := db.Batch(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.Put("idx", k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	scan := func(prefix, after string, desc bool) []string {
		var got []string
		_ = db.View(func(tx *store.Tx) error {
			tx.Scan("idx", prefix, after, desc, func(k string, _ []byte) bool { got = append(got, k); return true })
			return nil
		})
		return got
	}
	for _, c := range []struct {
		prefix, after string
		desc          bool
		want          []string
	}{
		{"a\x00", "", false, keys[:3]},
		{"a\x00", "", true, []string{keys[2], keys[1], keys[0]}},
		{"a\x00", keys[1], false, keys[2:3]},
		{"a\x00", keys[1], true, keys[:1]},
		{"b\x00", "", true, keys[3:]},
		{"c\x00", "", true, nil},
		{"", "", true, []string{keys[3], keys[2], keys[1], keys[0]}},
	} {
		if got := scan(c.prefix, c.after, c.desc); !slices.Equal(got, c.want) {
			t.Errorf("Scan(%q, after %q, desc %v) = %q, want %q", c.prefix, c.after, c.desc, got, c.want)
		}
	}

	// A failed batch keeps nothing it wrote.
	boom := errors.New("boom")
	if err := db.Batch(func(tx *store.Tx) error {
		if err := tx.Put("idx", "z", []byte("half")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Batch = %v, want boom", err)
	}
	_ = db.View(func(tx *store.Tx) error {
		if v := tx.Get("idx", "z"); v != nil {
			t.Errorf("half-written record kept: %q", v)
		}
		return nil
	})
}

// A backup taken while writes go on is a database of its own holding what was committed before it began;
// BackupFile copies a closed file, and refuses one an engine holds or did not close.
func TestBackup(t *testing.T) {
	db, path := mustOpen(t)
	b := db.Bucket("verifications")
	for i := range 100 {
		if err := b.Put(fmt.Sprintf("v%03d", i), bytes.Repeat([]byte{'x'}, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	// Writers keep going during the copy; the copy is still one consistent snapshot.
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Add(1)
	go func() {
		defer writers.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.Put(fmt.Sprintf("w%06d", i), []byte("y")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	close(stop)
	writers.Wait()
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup: %d bytes (%d in the buffer), %v", n, buf.Len(), err)
	}
	restored := filepath.Join(t.TempDir(), "flashotp.db")
	if err := os.WriteFile(restored, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BackupFile(path, io.Discard, 100*time.Millisecond); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("BackupFile of an open database: %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var closed bytes.Buffer
	if _, err := store.BackupFile(path, &closed, time.Second); err != nil {
		t.Fatalf("BackupFile of a closed database: %v", err)
	}
	// The copy opens as a database of its own, given the server key (which is not in it).
	copyDB := mustOpenAt(t, restored, hex.EncodeToString(db.Key()))
	if got := mustGet(t, copyDB, "v099"); len(got) != 1000 {
		t.Fatalf("restored v099: %d bytes", len(got))
	}
	if n, err := copyDB.Bucket("verifications").Len(); err != nil || n < 100 {
		t.Fatalf("restored copy holds %d records (%v)", n, err)
	}

	// An engine that did not close the file (killed) leaves its marker: the copy waits for the check at
	// the engine's next start.
	if err := os.WriteFile(path+".open", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BackupFile(path, io.Discard, time.Second); !errors.Is(err, store.ErrUnclean) {
		t.Fatalf("BackupFile after an unclean stop: %v, want ErrUnclean", err)
	}
	if _, err := store.BackupFile(filepath.Join(t.TempDir(), "none.db"), io.Discard, time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("BackupFile of no file: %v", err)
	}
}
