package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openMarker is created beside the database while it is open and removed when it is closed: found at
// Open, it says the last engine stopped without closing the file (killed, crashed, its disk failed).
const openMarker = ".open"

// open opens the bbolt file at path, taking back a last transaction that did not reach the disk (see
// revertUnwritten); repair says what was done.
func open(path string, opts *bolt.Options) (b *bolt.DB, repair string, err error) {
	if repair, _, err = revertUnwritten(path, false); err != nil {
		return nil, "", err
	}
	if b, err = bolt.Open(path, 0o600, opts); err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(path + openMarker); err == nil {
		if finding := check(b); finding != nil {
			b.Close()
			if b, repair, err = takeBack(path, opts, finding, repair); err != nil {
				return nil, "", err
			}
		}
	}
	if err := os.WriteFile(path+openMarker, nil, 0o600); err != nil {
		b.Close()
		return nil, "", err
	}
	return b, repair, nil
}

// takeBack is open's answer to a finding of the whole-tree check after an unclean stop: the last
// transaction is taken back and the file checked again. If that does not mend it, the file goes back as it
// was and Open refuses it, saying what the check found.
func takeBack(path string, opts *bolt.Options, finding error, repaired string) (*bolt.DB, string, error) {
	msg, kept, err := revertUnwritten(path, true)
	if err != nil {
		return nil, "", fmt.Errorf("%w (the check found: %v)", err, finding)
	}
	b, err := bolt.Open(path, 0o600, opts)
	if err == nil {
		if err = check(b); err != nil {
			b.Close()
		}
	}
	if err != nil {
		if rerr := os.Rename(kept, path); rerr != nil {
			return nil, "", fmt.Errorf("%w: %v; taking back its last transaction did not help, and the file as it was could not be put back from %s: %v", ErrDamaged, finding, kept, rerr)
		}
		return nil, "", fmt.Errorf("%w: %v (taking back its last transaction did not help; the file is as it was)", ErrDamaged, finding)
	}
	if repaired != "" {
		msg = repaired + "; " + msg
	}
	return b, msg, nil
}

// check runs bbolt's consistency check over the whole file and returns its first finding.
func check(b *bolt.DB) error {
	return b.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			first = cmp.Or(first, err)
		}
		return first
	})
}

// bbolt's file layout, as far as the check below reads it: two meta pages (0 and 1) naming the root page
// of the buckets, the freelist page and the transaction ID; every page starts with its ID and flags.
const (
	pageHeaderSize = 16
	metaSize       = 64 // magic, version, page size, flags, root bucket, freelist, high water mark, txid, checksum
	boltMagic      = 0xED0CDAED
	branchPage     = 0x01
	leafPage       = 0x02
	freelistPage   = 0x10
	noFreelist     = ^uint64(0)
)

type meta struct {
	page                 uint64 // 0 or 1
	raw                  []byte // the whole page
	root, freelist, txid uint64
	valid                bool
}

// revertUnwritten takes back the database's newest transaction when its pages are not on disk. A disk
// that fails under a commit, or an fsync that reports success without writing (the kernel logs "potential
// data loss"), can leave the newest meta page on disk while pages it names never got there: bbolt panics
// on such a file, at open if the freelist page is missing, later if a page of the tree is. Before bbolt
// opens the file, the meta's own root and freelist pages are looked at; after an unclean stop the whole
// tree is checked too (open), and force says that check found something. The transaction is taken back as
// `bbolt surgery revert-meta-page` does: the older meta page is copied over the newer, and the file as it
// was is kept beside it (path.damaged-<unix time>) for inspection. It returns what it did, for the log
// ("" when nothing: a sound, new or empty file), and the kept file's path; ErrDamaged when the older
// transaction cannot be read either.
func revertUnwritten(path string, force bool) (msg, kept string, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	// Never under a running engine: bbolt holds this lock while the file is open.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return "", "", nil // bbolt says the file is in use
	}
	first := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(first, 0); err != nil {
		return "", "", nil // too short to be a database bbolt wrote; bbolt says what it is
	}
	pageSize := int64(binary.LittleEndian.Uint32(first[pageHeaderSize+8:]))
	if binary.LittleEndian.Uint32(first[pageHeaderSize:]) != boltMagic || pageSize < 1024 || pageSize > 1<<16 {
		return "", "", nil
	}
	read := func(id uint64) []byte {
		b := make([]byte, pageSize)
		if _, err := f.ReadAt(b, int64(id)*pageSize); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return b
	}
	metas := [2]meta{}
	for i := range metas {
		m := meta{page: uint64(i), raw: read(uint64(i))}
		if m.raw != nil {
			body := m.raw[pageHeaderSize : pageHeaderSize+metaSize]
			h := fnv.New64a()
			h.Write(body[:56])
			m.root, m.freelist = binary.LittleEndian.Uint64(body[16:]), binary.LittleEndian.Uint64(body[32:])
			m.txid = binary.LittleEndian.Uint64(body[48:])
			m.valid = binary.LittleEndian.Uint32(body) == boltMagic && h.Sum64() == binary.LittleEndian.Uint64(body[56:])
		}
		metas[i] = m
	}
	newer, older := metas[0], metas[1]
	if older.txid > newer.txid {
		newer, older = older, newer
	}
	// A page is written if it carries its own ID and the kind the meta expects.
	written := func(id uint64, kinds uint16) bool {
		p := read(id)
		return p != nil && binary.LittleEndian.Uint64(p) == id && binary.LittleEndian.Uint16(p[8:])&kinds != 0
	}
	intact := func(m meta) bool {
		return m.valid && written(m.root, branchPage|leafPage) && (m.freelist == noFreelist || written(m.freelist, freelistPage))
	}
	if !force && (!newer.valid || intact(newer)) {
		return "", "", nil // bbolt itself falls back from a meta page whose checksum fails
	}
	if !intact(older) || older.txid == newer.txid {
		return "", "", fmt.Errorf("%w: the transaction before the last (%d) cannot be read either", ErrDamaged, older.txid)
	}
	kept = fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
	if err := copyFile(path, kept); err != nil {
		return "", "", err
	}
	revert := older.raw
	binary.LittleEndian.PutUint64(revert, newer.page)
	if _, err := f.WriteAt(revert, int64(newer.page)*pageSize); err != nil {
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		return "", "", err
	}
	return fmt.Sprintf("the last transaction (%d) is not all on disk: the database is back at transaction %d; the file as it was is kept at %s", newer.txid, older.txid, kept), kept, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
