// Package dialer turns "call this number from this CLI" into flash calls on the configured trunks. It owns
// admission (a bounded queue), pacing (per-trunk calls per second and concurrent calls), trunk failover and
// the rule that every accepted call ends in exactly one reported outcome.
//
// Failover: a call moves to the next trunk only when the trunk gave no response at all (transport error or
// silence). Once an INVITE has had any response it is never dialed again: a second flash call would put a
// second code on the user's phone.
package dialer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"flashotp/sip"
)

// Errors returned by Submit.
var (
	// ErrQueueFull is returned when the queue of calls waiting for a trunk is full.
	ErrQueueFull = errors.New("dialer queue full")
	// ErrStopped is returned once Stop has been called.
	ErrStopped = errors.New("dialer stopped")
)

// Caller places one SIP call; *sip.UA is one.
type Caller interface {
	Dial(ctx context.Context, c sip.Call, progress func(sip.State, time.Time)) sip.Result
}

var _ Caller = (*sip.UA)(nil)

// Reporter receives each call's progress and its one outcome. A Reporter must be safe for concurrent use:
// progress reports of one call may arrive concurrently and out of order (dialing after ringing), but
// always before that call's CallEnded.
type Reporter interface {
	// CallProgress is called with StateDialing and StateRinging as they happen.
	CallProgress(id, trunk string, state sip.State, at time.Time)
	// CallEnded is called exactly once per accepted call, with its outcome.
	CallEnded(id, trunk string, res sip.Result)
}

// Trunk is one trunk the dialer may use, with its limits (0: none).
type Trunk struct {
	Name     string
	Address  string
	Username string
	Password string
	MaxCPS   int
	MaxCalls int
}

// Config configures a Dialer.
type Config struct {
	Trunks      []Trunk // in order of preference
	RingTime    time.Duration
	DialTimeout time.Duration
	CancelGuard time.Duration
	QueueSize   int
}

// Request is one flash call to place.
type Request struct {
	ID  string // the verification it belongs to; passed back to the Reporter
	To  string // E.164 with '+'
	CLI string // E.164 with '+'
}

type trunk struct {
	Trunk
	limiter *rate.Limiter // nil: no limit
	slots   chan struct{} // nil: no limit
}

// Dialer places calls. Start it once; Stop it once.
type Dialer struct {
	cfg    Config
	caller Caller
	rep    Reporter
	log    *slog.Logger
	trunks []*trunk

	mu      sync.RWMutex // guards stopped against Submit's send on queue
	stopped bool
	queue   chan Request

	ctx    context.Context // cancelled by Stop: calls in flight CANCEL
	cancel context.CancelFunc
	wg     sync.WaitGroup // dispatcher and calls
}

// New returns a Dialer over caller that reports to rep.
func New(cfg Config, caller Caller, rep Reporter, log *slog.Logger) *Dialer {
	if log == nil {
		log = slog.Default()
	}
	d := &Dialer{cfg: cfg, caller: caller, rep: rep, log: log, queue: make(chan Request, cfg.QueueSize)}
	for _, t := range cfg.Trunks {
		tr := &trunk{Trunk: t}
		if t.MaxCPS > 0 {
			tr.limiter = rate.NewLimiter(rate.Limit(t.MaxCPS), t.MaxCPS)
		}
		if t.MaxCalls > 0 {
			tr.slots = make(chan struct{}, t.MaxCalls)
		}
		d.trunks = append(d.trunks, tr)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// Start starts dispatching queued calls.
func (d *Dialer) Start() {
	d.wg.Add(1)
	go d.dispatch()
}

// Submit queues a call. It never blocks: a full queue is ErrQueueFull. Once Submit returned nil, the
// Reporter will hear exactly one CallEnded for r.ID.
func (d *Dialer) Submit(r Request) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.stopped {
		return ErrStopped
	}
	select {
	case d.queue <- r:
		return nil
	default:
		return ErrQueueFull
	}
}

// QueueLen returns the number of calls waiting for a trunk.
func (d *Dialer) QueueLen() int { return len(d.queue) }

// Stop stops admission, CANCELs the calls in flight, ends queued calls as interrupted and waits for every
// call's outcome, or for ctx.
func (d *Dialer) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		close(d.queue)
	}
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Dialer) dispatch() {
	defer d.wg.Done()
	for r := range d.queue {
		if d.ctx.Err() != nil {
			d.interrupted(r)
			continue
		}
		t := d.trunks[0]
		if !t.acquire(d.ctx) {
			d.interrupted(r)
			continue
		}
		d.wg.Add(1)
		go d.run(r, 0)
	}
}

func (d *Dialer) interrupted(r Request) {
	now := time.Now()
	d.rep.CallEnded(r.ID, "", sip.Result{State: sip.StateFailed, Reason: sip.ReasonInterrupted, StartedAt: now, EndedAt: now})
}

// acquire waits for the trunk's pacing token and a free channel; it reports false if ctx ended first.
func (t *trunk) acquire(ctx context.Context) bool {
	if t.limiter != nil && t.limiter.Wait(ctx) != nil {
		return false
	}
	if t.slots != nil {
		select {
		case t.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// tryAcquire takes a token and a channel only if both are free now.
func (t *trunk) tryAcquire() bool {
	if t.slots != nil {
		select {
		case t.slots <- struct{}{}:
		default:
			return false
		}
	}
	if t.limiter != nil && !t.limiter.Allow() {
		t.release()
		return false
	}
	return true
}

func (t *trunk) release() {
	if t.slots != nil {
		<-t.slots
	}
}

// run places the call on trunk i, which the caller has acquired, failing over while trunks stay silent.
func (d *Dialer) run(r Request, i int) {
	defer d.wg.Done()
	for {
		t := d.trunks[i]
		// Progress is recorded beside the call, not in its way: a durable write must never hold back
		// reading the 180 or sending the CANCEL. The outcome is reported after every progress write.
		var progress sync.WaitGroup
		res := d.caller.Dial(d.ctx, sip.Call{
			Target: t.Address, To: r.To, CLI: r.CLI,
			Username: t.Username, Password: t.Password,
			RingTime: d.cfg.RingTime, DialTimeout: d.cfg.DialTimeout, CancelGuard: d.cfg.CancelGuard,
		}, func(s sip.State, at time.Time) {
			progress.Add(1)
			go func() {
				defer progress.Done()
				d.rep.CallProgress(r.ID, t.Name, s, at)
			}()
		})
		t.release()
		progress.Wait()
		if res.State != sip.StateFailed || res.Responded || res.Reason == sip.ReasonInterrupted || d.ctx.Err() != nil {
			d.rep.CallEnded(r.ID, t.Name, res)
			return
		}
		next := -1
		for j := i + 1; j < len(d.trunks); j++ {
			if d.trunks[j].tryAcquire() {
				next = j
				break
			}
		}
		if next < 0 {
			d.rep.CallEnded(r.ID, t.Name, res)
			return
		}
		d.log.Warn("trunk gave no response, failing over", "trunk", t.Name, "next", d.trunks[next].Name, "reason", res.Reason)
		i = next
	}
}
