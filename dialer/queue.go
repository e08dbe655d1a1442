package dialer

import "sync"

// fairQueue holds the calls waiting for a trunk, one FIFO per app, and hands them out round-robin across
// apps: one app's burst waits behind its own calls only. It holds at most size calls in all and at most
// size / apps() of one app's, so that a burst cannot take the room of the others.
type fairQueue struct {
	mu     sync.Mutex
	size   int
	apps   func() int // how many apps there are now
	total  int
	byApp  map[string][]Request
	order  []string      // apps with waiting calls, in turn
	ready  chan struct{} // a token while calls wait
	closed bool
}

func newFairQueue(size int, apps func() int) *fairQueue {
	if apps == nil {
		apps = func() int { return 1 }
	}
	return &fairQueue{size: size, apps: apps, byApp: map[string][]Request{}, ready: make(chan struct{}, 1)}
}

// push queues r; it reports false when the queue, or the app's share of it, is full, or the queue closed.
func (q *fairQueue) push(r Request) bool {
	share := max(1, q.size/max(1, q.apps()))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.total >= q.size || len(q.byApp[r.App]) >= share {
		return false
	}
	if len(q.byApp[r.App]) == 0 {
		q.order = append(q.order, r.App)
	}
	q.byApp[r.App] = append(q.byApp[r.App], r)
	q.total++
	q.signal()
	return true
}

func (q *fairQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop takes the next call, the next app's in turn; ok is false when none waits.
func (q *fairQueue) pop() (r Request, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.total == 0 {
		return Request{}, false
	}
	app := q.order[0]
	calls := q.byApp[app]
	r, calls = calls[0], calls[1:]
	q.total--
	q.order = q.order[1:]
	if len(calls) == 0 {
		delete(q.byApp, app)
	} else {
		q.byApp[app] = calls
		q.order = append(q.order, app) // its next call waits for every other app's turn
	}
	if q.total > 0 {
		q.signal()
	}
	return r, true
}

// close refuses further pushes; what waits can still be popped.
func (q *fairQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *fairQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}
