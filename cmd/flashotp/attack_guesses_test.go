package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAttackConcurrentGuesses: wrong codes sent all at once, against the built binary, are evaluated no more
// often than the limits allow. Across the verifications of one recipient, failed_verifications (100 per 24h)
// bounds them: before its slot was taken ahead of the comparison, every guess in flight passed the check
// before any was counted (128 evaluated against 100). On one verification max_attempts (5) bounds them.
func TestAttackConcurrentGuesses(t *testing.T) {
	const (
		failedLimit  = 100
		verifs       = 150 // 600 guesses, 4 each: under max_attempts, so each wrong one answers 422
		perVerif     = 4
		maxAttempts  = 5
		oneVerifHits = 50
		victim       = "+14155552671"
		other        = "+447400123456"
	)
	_, c := serve(t, withoutLimits(engineConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")))

	ids := make([]string, verifs)
	for i := range ids {
		a := c.send(victim)
		if a.status != 202 {
			t.Fatalf("send %d: %d %s", i, a.status, a.raw)
		}
		ids[i] = a.body["verification_id"].(string)
	}
	bodies := make([]string, 0, verifs*perVerif)
	for _, id := range ids {
		for range perVerif {
			bodies = append(bodies, fmt.Sprintf(`{"appid":"demo","verification_id":%q,"otp_code":"0000"}`, id))
		}
	}
	got := guessAll(t, c, bodies)
	// A guess of 0000 is right for one verification in 10,000: it approves it, and later ones get 409.
	evaluated := got[422] + got[410]
	if evaluated > failedLimit || got[429] == 0 || got[422]+got[410]+got[429]+got[200]+got[409] != len(bodies) {
		t.Errorf("%d concurrent guesses over %d verifications, failed_verifications %d: answers %v; want at most %d evaluated (422/410), the rest 429",
			len(bodies), verifs, failedLimit, got, failedLimit)
	}
	stored := c.do("GET", "/otp/attempts?limit=500&recipient="+url.QueryEscape(victim), "")
	wrong := 0
	for _, it := range stored.body["items"].([]any) {
		if r := it.(map[string]any)["result"]; r == "invalid_code" || r == "max_attempts_reached" {
			wrong++
		}
	}
	if used := failedUsed(t, c, victim); wrong > failedLimit || wrong != evaluated || used != evaluated {
		t.Errorf("stored wrong attempts %d, failed_verifications used %d, answered wrong %d: want equal, at most %d", wrong, used, evaluated, failedLimit)
	}
	t.Logf("%d guesses over %d verifications: answers %v; stored wrong attempts %d", len(bodies), verifs, got, wrong)

	// One verification, many guesses at once: max_attempts holds, and only the evaluated ones count against
	// the recipient (the rest give their slot back).
	id := c.send(other).body["verification_id"].(string)
	bodies = bodies[:0]
	for range oneVerifHits {
		bodies = append(bodies, fmt.Sprintf(`{"appid":"demo","verification_id":%q,"otp_code":"0000"}`, id))
	}
	got = guessAll(t, c, bodies)
	st := c.do("GET", "/otp/status?verification_id="+id, "")
	attempts := int(st.body["attempts"].(float64))
	if got[200] == 0 && (attempts != maxAttempts || got[422] != maxAttempts-1 || got[410] != oneVerifHits-got[422]) {
		t.Errorf("%d concurrent guesses on one verification, max_attempts %d: answers %v, attempts %d; want %d 422s, the rest 410, attempts %d",
			oneVerifHits, maxAttempts, got, attempts, maxAttempts-1, maxAttempts)
	}
	if used := failedUsed(t, c, other); used != attempts {
		t.Errorf("failed_verifications used %d after %d wrong attempts: refused guesses must give their slot back", used, attempts)
	}
	t.Logf("%d guesses on one verification: answers %v; attempts %d", oneVerifHits, got, attempts)
}

// guessAll posts every body to /otp/verify at once, each on its own connection, from ten loopback addresses,
// and counts the answers by status.
func guessAll(t *testing.T, c client, bodies []string) map[int]int {
	t.Helper()
	var next int
	var nextMu sync.Mutex
	tr := &http.Transport{
		MaxIdleConnsPerHost: -1, // every request its own connection: all in flight together
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nextMu.Lock()
			src := net.IPv4(127, 0, 0, byte(2+next%10))
			next++
			nextMu.Unlock()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
		gate   = make(chan struct{})
	)
	for _, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", c.base+"/otp/verify", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", "demo")
			req.Header.Set("X-API-Secret", "demo-secret")
			<-gate
			res, err := hc.Do(req)
			if err != nil {
				t.Errorf("verify: %v", err)
				return
			}
			res.Body.Close()
			mu.Lock()
			counts[res.StatusCode]++
			mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	return counts
}

// failedUsed is how many wrong codes the recipient's failed_verifications limit holds.
func failedUsed(t *testing.T, c client, recipient string) int {
	t.Helper()
	a := c.do("GET", "/otp/rate-limits?recipient="+url.QueryEscape(recipient), "")
	for _, it := range a.body["items"].([]any) {
		if m := it.(map[string]any); m["scope"] == "failed_verifications" {
			return int(m["used"].(float64))
		}
	}
	t.Fatalf("no failed_verifications in %s", a.raw)
	return 0
}
