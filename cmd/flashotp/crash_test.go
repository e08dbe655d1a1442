package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"flashotp/internal/peers"
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
	time.Sleep(200 * time.Millisecond)
	clis := map[string]string{}
	for _, line := range strings.Split(phone.stdout.String(), "\n") {
		if m := missedLine.FindStringSubmatch(line); m != nil {
			clis[m[2]] = m[1]
		}
	}
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

	db, err := bolt.Open(filepath.Join(data, "flashotp.db"), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
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

// A disk that fills up (here: the file size limit of the process, RLIMIT_FSIZE, set with prlimit) makes
// sends fail cleanly with 503 unavailable and Retry-After, keeps nothing half-written, keeps the engine
// serving, and sends work again once there is room.
func TestDiskFull(t *testing.T) {
	prlimit := peers.Require(t, "prlimit", "util-linux")
	phoneAddr, _ := startPhone(t)
	config := withoutLimits(engineConfig(t.TempDir(), phoneAddr, ""))
	path := filepath.Join(t.TempDir(), "flashotp.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// A soft limit of 1 MiB (the hard one unlimited, so it can be raised again): the database outgrows it
	// after a few hundred verifications.
	p := startCmd(t, exec.Command(prlimit, "--fsize=1048576:unlimited", "--", binary(t), "serve", "--config", path))
	c := client{t, "http://" + p.stderr.waitFor(t, servingLine, 15*time.Second)[1]}

	accepted := 0
	var full answer
	for i := range 5000 {
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
	if a := c.do("GET", "/healthz", ""); a.status != 200 {
		t.Fatalf("not serving with the disk full: %d", a.status)
	}
	// Nothing half-written: the verifications listed are exactly the accepted ones.
	listed := 0
	for cursor := ""; ; {
		page := c.do("GET", "/otp/list?limit=500&cursor="+cursor, "")
		listed += len(page.body["items"].([]any))
		if cursor, _ = page.body["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if listed != accepted {
		t.Fatalf("%d verifications listed, %d accepted", listed, accepted)
	}
	// Room again: raise the running engine's limit.
	if out, err := exec.Command(prlimit, "--pid", fmt.Sprint(p.cmd.Process.Pid), "--fsize=unlimited:unlimited").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v %s", err, out)
	}
	if a := c.send("+14155552671"); a.status != 202 {
		t.Fatalf("send with room again: %d %s", a.status, a.raw)
	}
	t.Logf("%d sends accepted before the disk filled", accepted)
}

// startPhone runs `flashotp phone` in ring mode on a free loopback port, as a trunk of its own.
func startPhone(t *testing.T) (string, *proc) {
	t.Helper()
	port, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	return addr, start(t, "phone", "--listen", addr, "--mode", "ring")
}

// withoutLimits switches the demo app's send limits off in an engineConfig: these tests send hundreds of
// calls to one number range from one address.
func withoutLimits(config string) string {
	return strings.Replace(config, "    api_secret: demo-secret\n", `    api_secret: demo-secret
    rate_limits: {recipient: {limit: 0}, app: {limit: 0}, client: {limit: 0}, prefix: {limit: 0}}
`, 1)
}
