package main

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flashotp/internal/testwait"
)

// What a load balancer sees of a SIGTERM: /readyz answers 503 at once while sends and status reads still
// succeed for http.drain_delay, then the engine stops cleanly and takes no more connections. Calls that
// were ringing when it stopped are CANCELled and recorded missed (the phones show a missed call), as a
// restart shows.
func TestDrainOnSIGTERM(t *testing.T) {
	data := t.TempDir()
	config := engineConfig(data, "127.0.0.1:0", "127.0.0.1:0")
	config = strings.Replace(config, "  drain_delay: 0s\n", "  drain_delay: 3s\n", 1)
	config = strings.Replace(config, "dialer:\n", "dialer:\n  ring_time: 30s\n", 1) // rings until the stop
	p, c := serve(t, config)

	ringing := func(id string) {
		t.Helper()
		var a answer
		rang := testwait.Until(10*time.Second, func() bool {
			a = c.do("GET", "/otp/status?verification_id="+id, "")
			state := a.body["call"].(map[string]any)["state"]
			if state != "ringing" && state != "queued" && state != "dialing" {
				t.Fatalf("call %s not ringing: %s", id, a.raw)
			}
			return state == "ringing"
		})
		if !rang {
			t.Fatalf("call %s not ringing: %s", id, a.raw)
		}
	}
	first := c.send(recipient)
	if first.status != 202 {
		t.Fatalf("send: %d %s", first.status, first.raw)
	}
	id1 := first.body["verification_id"].(string)
	ringing(id1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ready answer
	draining := testwait.Until(2*time.Second, func() bool {
		var err error
		if ready, err = c.tryDo("GET", "/readyz", ""); err != nil {
			t.Fatalf("readyz during the drain: %v", err)
		}
		return ready.status == 503
	})
	if !draining {
		t.Fatalf("readyz still %d %s after SIGTERM", ready.status, ready.raw)
	}
	if ready.body["reason"] != "shutting down" || ready.header.Get("Retry-After") == "" {
		t.Fatalf("readyz while draining: %d %v %s", ready.status, ready.header, ready.raw)
	}
	// Still serving: a send is accepted and dialed, a status read answers.
	other := "+33612345678"
	second := c.send(other)
	if second.status != 202 {
		t.Fatalf("send during the drain: %d %s", second.status, second.raw)
	}
	id2 := second.body["verification_id"].(string)
	ringing(id2)
	if a := c.do("GET", "/otp/status?verification_id="+id1, ""); a.status != 200 {
		t.Fatalf("status during the drain: %d %s", a.status, a.raw)
	}

	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("engine still running 20 s after SIGTERM:\n%s", p.stderr)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.stderr)
	}
	if _, err := c.tryDo("GET", "/healthz", ""); err == nil {
		t.Fatal("the API still answers after the engine stopped")
	}
	p.stderr.waitFor(t, regexp.MustCompile(`flashotp draining.* drain_delay=3s`), time.Second)

	// The phone showed both calls as missed; the restarted engine says so, and their codes work.
	_, c = serve(t, config)
	for _, tc := range []struct{ id, to string }{{id1, recipient}, {id2, other}} {
		v := c.do("GET", "/otp/status?verification_id="+tc.id, "")
		call := v.body["call"].(map[string]any)
		if call["state"] != "missed" || call["sip_code"] != 487.0 || call["reason"] != "" || v.body["status"] != "pending" {
			t.Fatalf("call ringing at the stop recorded as %v, status %v; want missed 487, pending", call, v.body["status"])
		}
		cli := p.stdout.waitFor(t, regexp.MustCompile(`^missed call from (\+[0-9]+) to `+regexp.QuoteMeta(tc.to)+`$`), time.Second)[1]
		if a := c.verify(tc.id, cli[len(cli)-4:]); a.status != 200 || a.body["status"] != "approved" {
			t.Fatalf("verify the missed call's code after the restart: %d %s", a.status, a.raw)
		}
	}
}
