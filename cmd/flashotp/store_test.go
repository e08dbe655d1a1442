package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flashotp/store"
)

// restore puts a backup and the server key in a new data directory, as docs/operations.md says, and starts
// an engine on them.
func restore(t *testing.T, backup, keyFile string) client {
	t.Helper()
	dir := t.TempDir()
	for from, to := range map[string]string{backup: "flashotp.db", keyFile: store.KeyFile} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, c := serve(t, engineConfig(dir, "127.0.0.1:0", "127.0.0.1:0"))
	return c
}

// `flashotp store backup` of an engine that keeps serving sends: a new engine started on the copy and the
// server key verifies the code of a verification that was pending in it. While the engine runs, --db is
// refused with what to do instead; once it is stopped, --db copies its file, and that copy verifies too.
func TestBinaryStoreBackup(t *testing.T) {
	data := t.TempDir()
	config := strings.Replace(engineConfig(data, "127.0.0.1:0", "127.0.0.1:0"), "http:\n  listen: 127.0.0.1:0\n", "http:\n  listen: 127.0.0.1:0\n  admin_token: t0k\n", 1)
	p, c := serve(t, config)
	sent := c.send(recipient)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	missed := regexp.MustCompile(`^missed call from (\+[0-9]+) to ` + regexp.QuoteMeta(recipient) + `$`)
	cli := p.stdout.waitFor(t, missed, 10*time.Second)[1]
	code := cli[len(cli)-4:]
	c.waitCall(id)

	// Sends go on while the copy is taken.
	stop := make(chan struct{})
	var sends sync.WaitGroup
	sends.Add(1)
	accepted := 0
	go func() {
		defer sends.Done()
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if a, ok := c.trySend(fmt.Sprintf("+1415555%04d", 3000+i)); ok && a.status == 202 {
				accepted++
			}
		}
	}()
	backup := filepath.Join(t.TempDir(), "flashotp-backup.db")
	exit, stdout, stderr := runCLI(t, nil, "store", "backup", backup, "--url", c.base, "--token", "t0k")
	close(stop)
	sends.Wait()
	if exit != 0 || !strings.Contains(stdout, "backed up "+c.base+" to "+backup) || !strings.Contains(stderr, "server key is not in the backup") {
		t.Fatalf("store backup through the API: exit %d\n%s%s", exit, stdout, stderr)
	}
	t.Logf("%s (%d sends accepted meanwhile)", stdout, accepted)
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi.Mode(), err)
	}
	// A running engine holds its file: --db says to use the API, and leaves nothing behind.
	refused := filepath.Join(t.TempDir(), "refused.db")
	exit, _, stderr = runCLI(t, nil, "store", "backup", refused, "--db", filepath.Join(data, "flashotp.db"))
	if exit == 0 || !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, "--url, --token") {
		t.Fatalf("store backup --db under a running engine: exit %d %s", exit, stderr)
	}
	if left, _ := os.ReadDir(filepath.Dir(refused)); len(left) != 0 {
		t.Fatalf("a refused backup left %v", left)
	}

	keyFile := filepath.Join(data, store.KeyFile)
	restored := restore(t, backup, keyFile)
	if a := restored.verify(id, code); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify on the restored copy: %d %s", a.status, a.raw)
	}

	// The engine stopped, its file: the verification is still pending there.
	p.kill(syscall.SIGTERM)
	offline := filepath.Join(t.TempDir(), "offline.db")
	if exit, stdout, stderr := runCLI(t, nil, "store", "backup", offline, "--db", filepath.Join(data, "flashotp.db")); exit != 0 {
		t.Fatalf("store backup --db of a stopped engine: exit %d\n%s%s", exit, stdout, stderr)
	}
	if a := restore(t, offline, keyFile).verify(id, code); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("verify on the copy of the stopped engine's file: %d %s", a.status, a.raw)
	}
}
