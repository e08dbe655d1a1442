package dialer

import (
	"strings"
	"testing"
)

// Apps take turns: a burst from one app does not delay the next call of another by more than one turn,
// and no app holds more than its share of the queue, which follows the number of apps.
func TestFairQueue(t *testing.T) {
	apps := 2
	q := newFairQueue(10, func() int { return apps })
	for i := 0; i < 8; i++ {
		ok := q.push(Request{App: "bulk", ID: "b" + string(rune('0'+i))})
		if want := i < 5; ok != want {
			t.Fatalf("bulk push %d accepted %v, want %v (share 10/2)", i, ok, want)
		}
	}
	for _, id := range []string{"s0", "s1", "s2", "s3"} {
		if !q.push(Request{App: "small", ID: id}) {
			t.Fatalf("small push %s refused with room left", id)
		}
	}
	apps = 1 // an app went: bulk may fill the rest
	if !q.push(Request{App: "bulk", ID: "b5"}) {
		t.Fatal("bulk push refused after its share grew")
	}
	if q.push(Request{App: "third", ID: "t0"}) || q.len() != 10 {
		t.Fatalf("push beyond the queue's size accepted (len %d)", q.len())
	}
	var order []string
	for r, ok := q.pop(); ok; r, ok = q.pop() {
		order = append(order, r.ID)
	}
	if got, want := strings.Join(order, " "), "b0 s0 b1 s1 b2 s2 b3 s3 b4 b5"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	q.close()
	if q.push(Request{App: "late"}) {
		t.Fatal("push after close accepted")
	}
}
