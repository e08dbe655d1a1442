package metrics

import (
	"sync"
	"sync/atomic"
)

// pulse counts the sends and wakes whoever waits for the next one (the console's live streams), at the cost
// of one atomic add and one atomic load a send while nobody waits.
type pulse struct {
	total   atomic.Uint64
	waiting atomic.Bool
	mu      sync.Mutex
	next    chan struct{} // closed at the next send; nil while nobody waits
}

// fire counts a send and wakes the waiters. A waiter that arrives while fire runs may sleep until the send
// after: its reader has the live samples, one a second, to fall back on.
func (p *pulse) fire() {
	p.total.Add(1)
	if !p.waiting.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next != nil {
		close(p.next)
		p.next = nil
	}
	p.waiting.Store(false)
}

// wait returns the sends so far and a channel closed at the next send.
func (p *pulse) wait() (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = make(chan struct{})
	}
	p.waiting.Store(true)
	return p.total.Load(), p.next
}

// NextSend returns the sends accepted so far (every POST /otp/send answered, as Sent counts them) and a
// channel closed when the next one is: the console's live stream tells a page at once. A nil *Metrics
// counts nothing and never closes it.
func (m *Metrics) NextSend() (uint64, <-chan struct{}) {
	if m == nil {
		return 0, nil
	}
	return m.sends.wait()
}
