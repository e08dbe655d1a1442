package metrics

import (
	"testing"
	"time"
)

// A waiter hears of the next send at once, with the count; sends nobody waits for are counted all the same.
func TestNextSend(t *testing.T) {
	m := New()
	m.Sent(time.Millisecond) // nobody waits
	total, next := m.NextSend()
	if total != 1 {
		t.Fatalf("total %d, want 1", total)
	}
	select {
	case <-next:
		t.Fatal("woken before a send")
	default:
	}
	_, again := m.NextSend() // two waiters share the next send
	m.Sent(time.Millisecond)
	for _, ch := range []<-chan struct{}{next, again} {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatal("a waiter was not woken by the send")
		}
	}
	if total, _ := m.NextSend(); total != 2 {
		t.Errorf("total %d, want 2", total)
	}
	var none *Metrics
	if total, ch := none.NextSend(); total != 0 || ch != nil {
		t.Errorf("nil Metrics: %d %v", total, ch)
	}
}
