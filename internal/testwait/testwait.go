// Package testwait is how a test waits for something to happen: it polls a condition until it holds, and
// fails the test naming what it waited for when the time is up. Tests wait on conditions, never a fixed
// sleep that guesses how long the engine takes (too short on a loaded machine, too long everywhere else).
// A sleep stays only where time passing is the behaviour under test (a real-clock cooldown, an outage), and
// a comment there says so.
package testwait

import (
	"testing"
	"time"
)

// Poll is how often For asks again.
const Poll = 10 * time.Millisecond

// For waits until cond reports true, asking every Poll, and fails t naming what if timeout passes first.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Until waits until cond reports true, asking every Poll, and reports whether it did before timeout passed:
// for a test whose failure says more than what it waited for (the last answer, a goroutine dump, a log).
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Poll)
	}
	return true
}
