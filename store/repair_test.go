package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"flashotp/store"
)

// writeTransactions puts otp_0..otp_<n-1> in a new database, then otp_last in a transaction of its own, and
// closes it. It returns the path and the file before and after the last transaction.
func writeTransactions(t *testing.T, n int) (path string, before, after []byte) {
	t.Helper()
	db, path := mustOpen(t)
	for i := range n {
		if err := db.Bucket("verifications").Put(fmt.Sprintf("otp_%d", i), bytes.Repeat([]byte{'v'}, 200)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Bucket("verifications").Put("otp_last", []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return path, before, after
}

// unwriteLastTransaction makes a database as writeTransactions does, then makes the file what a disk
// failing under the last commit can leave: the new meta page on disk, the other pages the transaction wrote
// zeros (all of them, or, with spareTop, all but the top of the tree and the freelist, which the meta page
// names). It returns the database path and the damaged file's bytes.
func unwriteLastTransaction(t *testing.T, n int, spareTop bool) (string, []byte) {
	t.Helper()
	path, before, after := writeTransactions(t, n)
	ps := os.Getpagesize()
	// The newer meta page names the root of the buckets and the freelist (page header 16 bytes, then
	// magic, version, page size, flags: the root's page ID at 32, the freelist's at 48, the txid at 64).
	meta := after[:ps]
	if binary.LittleEndian.Uint64(after[ps+64:]) > binary.LittleEndian.Uint64(meta[64:]) {
		meta = after[ps : 2*ps]
	}
	top := map[int]bool{int(binary.LittleEndian.Uint64(meta[32:])): true, int(binary.LittleEndian.Uint64(meta[48:])): true}
	zeroed := 0
	for id := 2; (id+1)*ps <= len(after); id++ {
		page := after[id*ps : (id+1)*ps]
		if (id+1)*ps <= len(before) && bytes.Equal(before[id*ps:(id+1)*ps], page) || spareTop && top[id] {
			continue
		}
		clear(page)
		zeroed++
	}
	if zeroed == 0 {
		t.Fatal("no page to zero")
	}
	if err := os.WriteFile(path, after, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, after
}

// Open takes back a last transaction whose pages never reached the disk (bbolt would panic on the file),
// keeps the file as it was beside it, and the database is the one before that transaction, writable.
func TestOpenRevertsUnwrittenTransaction(t *testing.T) {
	path, damaged := unwriteLastTransaction(t, 1, false)
	db := mustOpenAt(t, path, "")
	if db.Repair == "" {
		t.Fatal("Open repaired nothing")
	}
	t.Log(db.Repair)
	wantReverted(t, db, 1)
	kept, _ := filepath.Glob(path + ".damaged-*")
	if len(kept) != 1 {
		t.Fatalf("kept files: %v", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(b, damaged) {
		t.Fatalf("the kept file is not the damaged one (%v)", err)
	}
	if err := db.Bucket("verifications").Put("otp_new", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpenAt(t, path, "")
	if again.Repair != "" {
		t.Fatalf("a sound file repaired: %s", again.Repair)
	}
	if got := mustGet(t, again, "otp_new"); string(got) != "new" {
		t.Fatalf("otp_new = %q", got)
	}
}

// After an unclean stop (the marker an open database leaves beside it is there), Open checks the whole
// tree: a missing page below the top of the newest transaction's tree takes that transaction back too.
func TestOpenChecksTreeAfterUncleanStop(t *testing.T) {
	path, _ := unwriteLastTransaction(t, 300, true)
	if err := os.WriteFile(path+".open", nil, 0o600); err != nil { // as a killed engine leaves it
		t.Fatal(err)
	}
	db := mustOpenAt(t, path, "")
	if db.Repair == "" {
		t.Fatal("Open repaired nothing")
	}
	wantReverted(t, db, 300)
}

// wantReverted checks that db holds otp_0..otp_<n-1> and not otp_last.
func wantReverted(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for i := range n {
		mustGet(t, db, fmt.Sprintf("otp_%d", i))
	}
	if _, err := db.Bucket("verifications").Get("otp_last"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("otp_last of the unwritten transaction: %v, want ErrNotFound", err)
	}
}

// When the transaction before is unreadable too, Open refuses the file, saying so, and changes nothing.
func TestOpenRefusesDamagedFile(t *testing.T) {
	path, b := unwriteLastTransaction(t, 1, false)
	clear(b[2*os.Getpagesize():]) // every page but the metas
	wantRefused(t, path, b)
}

// Damage the last transaction did not make (a page it never touched) is not mended by taking it back: after
// an unclean stop Open refuses the file, saying what bbolt's check found, and leaves it as it was.
func TestOpenLeavesOlderDamageAlone(t *testing.T) {
	path, before, after := writeTransactions(t, 300)
	ps, zeroed := os.Getpagesize(), false
	for id := 2; !zeroed && (id+1)*ps <= len(before); id++ {
		page := after[id*ps : (id+1)*ps]
		if bytes.Equal(before[id*ps:(id+1)*ps], page) && binary.LittleEndian.Uint16(page[8:]) == 0x02 { // a leaf
			clear(page)
			zeroed = true
		}
	}
	if !zeroed {
		t.Fatal("no leaf page the last transaction left alone")
	}
	if err := os.WriteFile(path+".open", nil, 0o600); err != nil { // as a killed engine leaves it
		t.Fatal(err)
	}
	wantRefused(t, path, after)
}

// wantRefused writes file at path and checks that Open refuses it with ErrDamaged, leaving it as it was and
// keeping no copy.
func wantRefused(t *testing.T, path string, file []byte) {
	t.Helper()
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, "")
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a damaged file")
	}
	if !errors.Is(err, store.ErrDamaged) {
		t.Fatalf("Open: %v, want ErrDamaged", err)
	}
	t.Log(err)
	if now, _ := os.ReadFile(path); !bytes.Equal(now, file) {
		t.Fatal("Open changed a file it refused")
	}
	if kept, _ := filepath.Glob(path + ".damaged-*"); len(kept) != 0 {
		t.Fatalf("kept files for a refused file: %v", kept)
	}
}
