package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"flashotp/internal/peers"
	"flashotp/internal/testwait"
)

// The engine killed with SIGKILL at random moments under load, 20 times, restarted each time: every
// verification that got a 202 is still there, its call ended (never left dialing: an interrupted one is
// failed/interrupted), every code the phone saw still verifies, and the bbolt file passes its consistency
// check.
func TestKillUnderLoad(t *testing.T) {
	const kills = 20
	phoneAddr, phone := startPhone(t)
	data := t.TempDir()
	config := withoutLimits(engineConfig(data, phoneAddr, ""))
	type acked struct{ id, recipient string }
	var (
		mu    sync.Mutex
		ackd  []acked
		seq   int
		sends int
	)
	for kill := 0; kill < kills; kill++ {
		p, c := serve(t, config)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					to := fmt.Sprintf("+1415%07d", 2_000_000+seq)
					sends++
					mu.Unlock()
					a, ok := c.trySend(to)
					if !ok {
						return // the engine is gone
					}
					if a.status == 202 {
						mu.Lock()
						ackd = append(ackd, acked{a.body["verification_id"].(string), to})
						mu.Unlock()
					}
				}
			}()
		}
		// The point of the test: the kill comes at a random moment of the load, not when something is done.
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		p.kill(syscall.SIGKILL)
		close(stop)
		wg.Wait()
	}
	if len(ackd) < kills*5 {
		t.Fatalf("only %d sends acknowledged across %d runs: the load was too light to mean anything", len(ackd), kills)
	}

	// After the last kill: restart once more and account for every acknowledged verification.
	p, c := serve(t, config)
	// The phone is a process of its own: what it printed about the calls just before the last kill may still
	// be on its way. No condition says when it is all there; the codes of calls it did not print are simply
	// not checked below.
	time.Sleep(200 * time.Millisecond)
	clis := phoneCLIs(phone)
	states := map[string]int{}
	verified := 0
	for _, a := range ackd {
		st := c.do("GET", "/otp/status?verification_id="+a.id, "")
		if st.status != 200 {
			t.Errorf("acknowledged verification %s lost: %d %s", a.id, st.status, st.raw)
			continue
		}
		call := st.body["call"].(map[string]any)
		state := fmt.Sprintf("%v/%v", call["state"], call["reason"])
		states[state]++
		switch call["state"] {
		case "missed", "answered", "failed":
		default:
			t.Errorf("verification %s left with call %s", a.id, state)
		}
		if cli, ok := clis[a.recipient]; ok && st.body["status"] == "pending" {
			if v := c.verify(a.id, cli[len(cli)-4:]); v.status != 200 {
				t.Errorf("code the phone saw for %s does not verify: %d %s", a.id, v.status, v.raw)
			} else {
				verified++
			}
		}
	}
	p.kill(syscall.SIGTERM)
	t.Logf("%d kills, %d sends, %d acknowledged, calls %v, %d codes the phone saw verified", kills, sends, len(ackd), states, verified)
	if verified == 0 {
		t.Error("no code verified: the phone saw no call")
	}

	checkDB(t, filepath.Join(data, "flashotp.db"))
}

// checkDB opens the bbolt file at path (the engine stopped) and runs bbolt's consistency check on it.
func checkDB(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt consistency check: %v", err)
	}
}

// A second engine on the same data directory fails at once, saying why; the first keeps serving.
func TestSecondEngineRefused(t *testing.T) {
	data := t.TempDir()
	config := engineConfig(data, "127.0.0.1:9", "")
	_, c := serve(t, config)
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	second := start(t, "serve", "--config", path)
	select {
	case <-second.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the second engine is still running")
	}
	if code := second.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(second.stderr.String(), "in use by another process") {
		t.Fatalf("second engine: exit %d, stderr:\n%s", code, second.stderr.String())
	}
	if a := c.do("GET", "/healthz", ""); a.status != 200 {
		t.Fatalf("the first engine stopped serving: %d", a.status)
	}
}

// The disk under the database fills up (a real ext4 filesystem, ENOSPC): sends fail cleanly with 503
// unavailable and Retry-After, nothing is half-written, the engine keeps serving, and sends work again as
// soon as there is room.
func TestDiskFull(t *testing.T) {
	disk := newDisk(t, 32)
	phoneAddr, _ := startPhone(t)
	_, c := serve(t, withoutLimits(engineConfig(disk.dir, phoneAddr, "")))
	// Everything but 512 KiB taken by another file: the database outgrows the rest after a few hundred
	// verifications.
	filler := disk.fill(512 << 10)
	if n := c.metric("flashotp_store_errors_total"); n != 0 {
		t.Fatalf("%v store errors before the disk filled", n)
	}

	accepted := 0
	var full answer
	for i := range 20000 {
		a := c.send(fmt.Sprintf("+1415%07d", 2_000_000+i))
		if a.status == 202 {
			accepted++
			continue
		}
		full = a
		break
	}
	if full.status != 503 || errCode(full) != "unavailable" || full.header.Get("Retry-After") == "" {
		t.Fatalf("after %d sends: %d %s, want 503 unavailable with Retry-After", accepted, full.status, full.raw)
	}
	if n := c.metric("flashotp_store_errors_total"); n < 1 {
		t.Errorf("flashotp_store_errors_total = %v with the disk full, want at least 1", n)
	}
	if a := c.do("GET", "/healthz", ""); a.status != 200 {
		t.Fatalf("not serving with the disk full: %d", a.status)
	}
	if listed := c.listAll(); listed != accepted {
		t.Fatalf("%d verifications listed, %d accepted: something was half-written", listed, accepted)
	}
	// Room again: the other file goes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if a := c.send("+14155552671"); a.status != 202 {
		t.Fatalf("send with room again: %d %s", a.status, a.raw)
	}
	t.Logf("%d sends accepted before the disk filled", accepted)
}

// The disk under the database turns read-only while the engine runs, the way ext4 does on a disk error
// (mounted errors=remount-ro; the error raised through the kernel's own trigger_fs_error): sends fail with
// 503 unavailable, acknowledged verifications can still be read, and once the operator has stopped the
// engine, checked and remounted the disk and started it again, every acknowledged verification is there,
// its call ended, and the codes the phone saw verify.
func TestReadOnlyDisk(t *testing.T) {
	disk := newDisk(t, 32)
	phoneAddr, phone := startPhone(t)
	config := withoutLimits(engineConfig(disk.dir, phoneAddr, ""))
	p, c := serve(t, config)
	// Senders until the disk fails under them: calls are in flight when it does.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	const senders = 4
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				a := c.send(fmt.Sprintf("+1415%03d%04d", 200+w, i))
				if a.status != 202 {
					return
				}
				mu.Lock()
				acked = append(acked, a.body["verification_id"].(string))
				mu.Unlock()
			}
		}()
	}
	// The disk fails once calls have ended and others are in flight.
	if !testwait.Until(20*time.Second, func() bool { return len(phoneCLIs(phone)) >= 20 }) {
		t.Fatalf("the phone saw %d calls in 20 s", len(phoneCLIs(phone)))
	}
	disk.fail()
	wg.Wait()
	a := c.send("+14155552671")
	if a.status != 503 || errCode(a) != "unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("send on a read-only disk: %d %s, want 503 unavailable with Retry-After\n%s", a.status, a.raw, p.stderr.String())
	}
	// Reads go on, unless bbolt lost its map of the file (it remaps to grow, and a read-only ext4 refuses
	// that): then they too are 503 unavailable and the engine says it is not ready.
	st, ready := c.do("GET", "/otp/status?verification_id="+acked[0], ""), c.do("GET", "/readyz", "")
	switch {
	case st.status == 200 && ready.status == 200:
	case st.status == 503 && errCode(st) == "unavailable" && ready.status == 503 && strings.Contains(ready.raw, "restart needed"):
	default:
		t.Fatalf("on a read-only disk: status %d %s, readyz %d %s", st.status, st.raw, ready.status, ready.raw)
	}
	p.kill(syscall.SIGTERM)
	if code := p.cmd.ProcessState.ExitCode(); code < 0 {
		t.Fatalf("the engine did not stop on SIGTERM with its disk read-only:\n%s", p.stderr.String())
	}

	disk.repair()
	p, c = serve(t, config)
	// Now and then (about 1 run in 80 with others beside it) the kernel reports a commit's fsync done while
	// its pages never reach the disk ("failed to convert unwritten extents to written extents -- potential
	// data loss!" in dmesg): the newest meta page is on disk, the pages it names are not. The engine takes
	// that transaction back at start (store.revertUnwritten) and logs it; what the transaction held, at
	// most one send per sender, is gone with it.
	repaired := regexp.MustCompile(`msg="store repaired".*`).FindString(p.stderr.String())
	clis := phoneCLIs(phone)
	verified, lost, states := 0, 0, map[string]int{}
	for _, id := range acked {
		st := c.do("GET", "/otp/status?verification_id="+id, "")
		if st.status == 404 && repaired != "" {
			lost++
			continue
		}
		if st.status != 200 {
			t.Fatalf("acknowledged verification %s lost: %d %s", id, st.status, st.raw)
		}
		call := st.body["call"].(map[string]any)
		if s := call["state"]; s != "missed" && s != "answered" && s != "failed" {
			t.Fatalf("verification %s left with call %v", id, call)
		}
		states[fmt.Sprintf("%v/%v", call["state"], call["reason"])]++
		if cli, ok := clis[st.body["recipient"].(string)]; ok && st.body["status"] == "pending" {
			if v := c.verify(id, cli[len(cli)-4:]); v.status != 200 {
				t.Fatalf("code the phone saw for %s does not verify: %d %s", id, v.status, v.raw)
			}
			verified++
		}
	}
	if verified == 0 {
		t.Fatal("no code verified after the repair: the phone saw no call")
	}
	if lost > senders {
		t.Fatalf("%d acknowledged verifications lost with the transaction taken back (%s): more than one commit", lost, repaired)
	}
	if a := c.send("+14155552671"); a.status != 202 {
		t.Fatalf("send after the repair: %d %s", a.status, a.raw)
	}
	p.kill(syscall.SIGTERM)
	checkDB(t, filepath.Join(disk.dir, "flashotp.db"))
	t.Logf("%d verifications acknowledged before the disk error, %d lost with a transaction taken back at start (%q); calls %v, %d codes the phone saw verified", len(acked), lost, repaired, states, verified)
}

// disk is an ext4 filesystem on a loop device, mounted at dir for one test (it needs root: the real kernel
// paths of a full and a failing disk, not an emulation).
type disk struct {
	t        *testing.T
	dir, dev string
}

func newDisk(t *testing.T, sizeMiB int64) *disk {
	t.Helper()
	if os.Geteuid() != 0 {
		peers.Missing(t, "needs root to mount a loop device")
	}
	losetup := peers.Require(t, "losetup", "mount")
	mkfs := peers.Require(t, "mkfs.ext4", "e2fsprogs")
	image := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(image, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(image, sizeMiB<<20); err != nil {
		t.Fatal(err)
	}
	// -m 0: no blocks kept back for root, who runs this test and the engine.
	run(t, mkfs, "-q", "-F", "-m", "0", image)
	d := &disk{t: t, dir: t.TempDir(), dev: strings.TrimSpace(run(t, losetup, "--find", "--show", image))}
	t.Cleanup(func() {
		if err := exec.Command("umount", d.dir).Run(); err != nil {
			_ = exec.Command("umount", "--lazy", d.dir).Run()
		}
		_ = exec.Command(losetup, "--detach", d.dev).Run()
	})
	d.mount()
	return d
}

func (d *disk) mount() { run(d.t, "mount", "-o", "errors=remount-ro", d.dev, d.dir) }

// fill takes all the free space but leave bytes with a file of its own, and returns the file's path.
func (d *disk) fill(leave int64) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		d.t.Fatal(err)
	}
	path := filepath.Join(d.dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*st.Bsize-leave); err != nil {
		d.t.Fatal(err)
	}
	return path
}

// fail raises an ext4 error on the filesystem, as a failing disk would: it turns read-only at once.
func (d *disk) fail() {
	knob := filepath.Join("/sys/fs/ext4", filepath.Base(d.dev), "trigger_fs_error")
	if err := os.WriteFile(knob, []byte("test: the disk failed\n"), 0o200); err != nil {
		d.t.Fatal(err)
	}
}

// repair is the operator's part once the engine is stopped: unmount, check, mount again.
func (d *disk) repair() {
	run(d.t, "umount", d.dir)
	// e2fsck exits 1 when it corrected errors (the one fail raised).
	if out, err := exec.Command(peers.Require(d.t, "e2fsck", "e2fsprogs"), "-f", "-y", d.dev).CombinedOutput(); err != nil {
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() > 1 {
			d.t.Fatalf("e2fsck: %v\n%s", err, out)
		}
	}
	d.mount()
}

// run runs a command the test needs to succeed and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// phoneCLIs maps each recipient to the CLI of the last missed call a `flashotp phone` printed for it.
func phoneCLIs(phone *proc) map[string]string {
	clis := map[string]string{}
	for _, line := range strings.Split(phone.stdout.String(), "\n") {
		if m := missedLine.FindStringSubmatch(line); m != nil {
			clis[m[2]] = m[1]
		}
	}
	return clis
}

// listAll counts the verifications GET /otp/list gives, page by page.
func (c client) listAll() int {
	n := 0
	for cursor := ""; ; {
		page := c.do("GET", "/otp/list?limit=500&cursor="+cursor, "")
		n += len(page.body["items"].([]any))
		if cursor, _ = page.body["next_cursor"].(string); cursor == "" {
			return n
		}
	}
}

// startPhone runs `flashotp phone` in ring mode on a free loopback port, as a trunk of its own.
func startPhone(t *testing.T) (string, *proc) {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	return addr, start(t, "phone", "--listen", addr, "--mode", "ring")
}

// withoutLimits switches the demo app's send limits off in an engineConfig: these tests send hundreds of
// calls to one number range from one address.
func withoutLimits(config string) string {
	return strings.Replace(config, "    api_secret: demo-secret\n", `    api_secret: demo-secret
    rate_limits: {recipient: {limit: 0}, app: {limit: 0}, client: {limit: 0}, prefix: {limit: 0}}
`, 1)
}

// Report counts stay in memory for up to a second before they are stored (otp/tally.go). The engine killed
// with SIGKILL under load, 5 times, and restarted: its reports say exactly what its records say, each
// verification sent once and each call's outcome counted once (a recount from GET /otp/list).
func TestReportsAfterKill(t *testing.T) {
	phoneAddr, _ := startPhone(t)
	config := withoutLimits(engineConfig(t.TempDir(), phoneAddr, ""))
	var seq atomic.Int64
	for range 5 {
		p, c := serve(t, config)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, ok := c.trySend(fmt.Sprintf("+1415%07d", 3_000_000+seq.Add(1))); !ok {
						return // the engine is gone
					}
				}
			})
		}
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		p.kill(syscall.SIGKILL)
		close(stop)
		wg.Wait()
	}
	// The restart ends the calls the last kill interrupted: every call has its outcome.
	p, c := serve(t, config)
	defer p.kill(syscall.SIGTERM)
	recount := map[string]float64{}
	for cursor := ""; ; {
		page := c.do("GET", "/otp/list?limit=500&cursor="+cursor, "")
		for _, it := range page.body["items"].([]any) {
			v := it.(map[string]any)
			recount["sent"]++
			switch state := v["call"].(map[string]any)["state"]; state {
			case "missed", "answered", "failed":
				recount[state.(string)]++
			default:
				t.Errorf("verification %v left with call %v", v["verification_id"], state)
			}
		}
		if cursor, _ = page.body["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if recount["sent"] < 50 {
		t.Fatalf("only %v verifications stored across 5 runs: the load was too light to mean anything", recount["sent"])
	}
	reported := map[string]float64{}
	for _, row := range c.do("GET", "/otp/reports?group_by=day", "").body["rows"].([]any) {
		for _, k := range []string{"sent", "missed", "answered", "failed"} {
			reported[k] += row.(map[string]any)[k].(float64)
		}
	}
	t.Logf("records: %v; reports: %v", recount, reported)
	for _, k := range []string{"sent", "missed", "answered", "failed"} {
		if reported[k] != recount[k] {
			t.Errorf("%s: the reports say %v, the records %v", k, reported[k], recount[k])
		}
	}
}
