// Package dialer turns "call this number from this CLI" into flash calls on the configured trunks. It owns
// admission (a bounded queue), pacing (per-trunk calls per second and concurrent calls), trunk failover and
// the rule that every accepted call ends in exactly one reported outcome.
//
// Failover: a call moves to the next trunk only when the trunk gave no provisional response and failed as
// a broken trunk does (silence, transport error, 408, 5xx). Once an INVITE has had any 1xx it is never
// dialed again: a second flash call would put a second code on the user's phone.
package dialer

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"flashotp/call"
	"flashotp/fault"
	"flashotp/metrics"
)

// Why Submit and Available refuse a call. They return each wrapped in a *fault.Error of code
// fault.Unavailable, whose message is the caller's answer.
var (
	// ErrQueueFull: the queue of calls waiting for a trunk is full ("no capacity for the call").
	ErrQueueFull = errors.New("dialer queue full")
	// ErrStopped: Stop has been called ("no capacity for the call").
	ErrStopped = errors.New("dialer stopped")
	// ErrTrunksDown: every trunk the call may use is marked down ("no trunk can take the call", with the
	// trunks): none can take it until an OPTIONS probe brings one back. The *fault.Error's RetryAfter is the
	// time until the next probe of one of them, at least a second.
	ErrTrunksDown = errors.New("every trunk is down")
)

// noCapacity is a call refused for err, ErrQueueFull or ErrStopped.
func noCapacity(err error) *fault.Error {
	return fault.Errorf(fault.Unavailable, "no capacity for the call: %w", err)
}

// Caller places one SIP call, and probes a trunk with OPTIONS; *sip.UA is one (cmd/flashotp checks it).
type Caller interface {
	Dial(ctx context.Context, c call.Request, progress func(call.State, time.Time)) call.Result
	Options(ctx context.Context, target, transport string) (int, error)
}

// Reporter receives each call's progress and its one outcome. A Reporter must be safe for concurrent use:
// progress reports of one call may arrive concurrently and out of order (dialing after ringing), but
// always before that call's CallEnded.
type Reporter interface {
	// CallProgress is called with StateDialing and StateRinging as they happen, from the call's own
	// goroutine: it must not block (no store write), or it would hold back reading the 180 and the CANCEL.
	CallProgress(id, trunk string, state call.State, at time.Time)
	// CallEnded is called exactly once per accepted call, with its outcome and the CLI it presented.
	CallEnded(id, trunk, cli string, res call.Result)
}

// Config configures a Dialer.
type Config struct {
	Settings
	Metrics *metrics.Metrics // nil: none
	Trunks  []Trunk          // tried by Priority, then by Weight
	// Apps says how many apps there are now (nil: one): an app may fill at most QueueSize / Apps() of the
	// queue, so that its burst leaves room for the others, apps made while running included.
	Apps func() int
}

// Request is one call (or message) to place.
type Request struct {
	App    string   // the app it is for: the queue takes apps in turn
	ID     string   // names the call to the Reporter (the verification and its step)
	To     string   // E.164 with '+'
	CLI    string   // E.164 with '+'; a message's sender may also be alphanumeric
	Trunks []string // the trunks this CLI may go out on; empty: any

	// Kind is what the call does (call.KindFlash when empty). A voice call holds one of the trunk's
	// max_calls channels while it is answered and played, as a flash call does while it rings; a message
	// (call.KindMessage) takes a max_cps token but no channel: it holds nothing once answered.
	Kind          call.Kind
	Prompt        []byte        // call.KindVoice: the audio, 8 kHz mu-law
	AnswerTimeout time.Duration // call.KindVoice
	Repeat        int           // call.KindVoice: replays a DTMF 1 may ask for
	Text          string        // call.KindMessage: the body
}

type trunk struct {
	Trunk
	limiter *rate.Limiter // nil: no limit
	slots   chan struct{} // nil: no limit

	failures  atomic.Int32 // failures in a row that a healthy trunk would not give (no answer, 408, 5xx)
	down      atomic.Bool  // marked down: used only when no trunk is up, probed with OPTIONS
	nextProbe atomic.Int64 // unix nanoseconds of the next OPTIONS probe while down

	// What TrunkStatus shows.
	inFlight                 atomic.Int64 // calls and messages placed on it and not ended
	missed, answered, failed atomic.Int64 // calls ended on it, by outcome
	failovers                atomic.Int64 // calls that failed on it and moved to the next trunk
	rate                     *meter       // calls and messages placed, per second
	probeMu                  sync.Mutex
	lastProbe                Probe // the latest OPTIONS probe; At zero: none yet
}

// Dialer places calls. Start it once; Stop it once.
type Dialer struct {
	cfg    Config
	caller Caller
	rep    Reporter
	log    *slog.Logger
	trunks []*trunk

	mu      sync.RWMutex // guards stopped
	stopped bool
	queue   *fairQueue

	ctx    context.Context // cancelled by Stop: calls in flight CANCEL
	cancel context.CancelFunc
	wg     sync.WaitGroup // dispatcher, calls and reporters

	// reports hands a call's outcome to an idle reporter goroutine (reporter); reporters counts them.
	reports   chan func()
	reporters atomic.Int32
}

// New returns a Dialer over caller that reports to rep.
func New(cfg Config, caller Caller, rep Reporter, log *slog.Logger) *Dialer {
	if log == nil {
		log = slog.Default()
	}
	d := &Dialer{cfg: cfg, caller: caller, rep: rep, log: log, queue: newFairQueue(cfg.QueueSize, cfg.Apps), reports: make(chan func())}
	for _, t := range cfg.Trunks {
		// Trunks from the config have their defaults already; one built by hand gets them here.
		t = t.WithDefaults(t.Transport)
		tr := &trunk{Trunk: t, rate: newMeter(time.Now)}
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

// Start starts dispatching queued calls and probing trunks that are down.
func (d *Dialer) Start() {
	d.wg.Add(2)
	go d.dispatch()
	go d.probe()
}

// Submit queues a call. It never blocks: a full queue, or a full share of it for r.App, is ErrQueueFull;
// every trunk of r.Trunks down is ErrTrunksDown (each in a *fault.Error).
// Once Submit returned nil, the Reporter will hear exactly one CallEnded for r.ID.
func (d *Dialer) Submit(r Request) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.stopped {
		return noCapacity(ErrStopped)
	}
	if err := d.up(r.Trunks); err != nil {
		return err
	}
	if !d.queue.push(r) {
		return noCapacity(ErrQueueFull)
	}
	return nil
}

// Available says why a call on trunks (empty: any trunk) would be refused now, if it would: ErrStopped, or
// ErrTrunksDown when every one of them is marked down (each in a *fault.Error). A call already queued still goes to a down trunk:
// its INVITE may reach the phone, a refusal now costs the caller only a retry.
func (d *Dialer) Available(trunks []string) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.stopped {
		return noCapacity(ErrStopped)
	}
	return d.up(trunks)
}

// up returns ErrTrunksDown, in a *fault.Error with the time to the next probe, if every trunk of allowed (empty: every trunk) is marked down. Names that match
// no trunk are left to dispatch, which ends such a call trunk_error.
func (d *Dialer) up(allowed []string) error {
	var down []string
	next := int64(0)
	for _, t := range d.trunks {
		if len(allowed) > 0 && !slices.Contains(allowed, t.Name) {
			continue
		}
		if !t.down.Load() {
			return nil
		}
		down = append(down, t.Name)
		if p := t.nextProbe.Load(); next == 0 || p < next {
			next = p
		}
	}
	if len(down) == 0 {
		return nil
	}
	// The probe loop looks every second: the probe may come up to a second after its time.
	retry := time.Until(time.Unix(0, next)) + time.Second
	e := fault.Errorf(fault.Unavailable, "no trunk can take the call: %w: %v", ErrTrunksDown, down)
	e.RetryAfter = max(retry, time.Second)
	return e
}

// Stopped reports whether Stop was called: no call is accepted any more.
func (d *Dialer) Stopped() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.stopped
}

// QueueLen returns the number of calls waiting for a trunk.
func (d *Dialer) QueueLen() int { return d.queue.len() }

// Stop stops admission, CANCELs the calls in flight, ends queued calls as interrupted and waits for every
// call's outcome, or for ctx.
func (d *Dialer) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		d.queue.close()
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
	for {
		r, ok := d.queue.pop()
		if !ok {
			if d.ctx.Err() != nil {
				return // stopped, and nothing waits
			}
			select {
			case <-d.queue.ready:
			case <-d.ctx.Done():
			}
			continue
		}
		if d.ctx.Err() != nil {
			d.endUnplaced(r, "", call.ReasonInterrupted)
			continue
		}
		order := d.order(r.Trunks)
		if len(order) == 0 {
			d.log.Error("no configured trunk may carry this caller ID", "allowed", r.Trunks)
			d.endUnplaced(r, "", call.ReasonTrunkError)
			continue
		}
		first := -1
		for i, t := range order {
			if t.tryAcquire(r.Kind) {
				first = i
				break
			}
		}
		if first < 0 {
			// Every trunk is at its limit: wait for the preferred one.
			if !order[0].acquire(d.ctx, r.Kind) {
				d.endUnplaced(r, "", call.ReasonInterrupted)
				continue
			}
			first = 0
		}
		d.wg.Add(1)
		go d.run(r, order, first)
	}
}

// order returns the trunks a call may use (allowed, if not empty, names them) in the order it tries them:
// by priority, and within one priority in a random order weighted by weight; trunks that are down come
// after all trunks that are up.
func (d *Dialer) order(allowed []string) []*trunk {
	up := make([]*trunk, 0, len(d.trunks))
	var down []*trunk
	for _, t := range d.trunks {
		if len(allowed) > 0 && !slices.Contains(allowed, t.Name) {
			continue
		}
		if t.down.Load() {
			down = append(down, t)
		} else {
			up = append(up, t)
		}
	}
	weightedShuffle(up)
	weightedShuffle(down)
	return append(up, down...)
}

// weightedShuffle orders ts by priority and, within each priority, draws them one by one with probability
// proportional to their weight.
func weightedShuffle(ts []*trunk) {
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Priority < ts[j].Priority })
	for start := 0; start < len(ts); {
		end := start
		total := 0
		for end < len(ts) && ts[end].Priority == ts[start].Priority {
			total += ts[end].Weight
			end++
		}
		for i := start; i < end-1; i++ {
			n := rand.IntN(total)
			j := i
			for ; n >= ts[j].Weight; j++ {
				n -= ts[j].Weight
			}
			ts[i], ts[j] = ts[j], ts[i]
			total -= ts[i].Weight
		}
		start = end
	}
}

// endUnplaced ends a call that never left.
func (d *Dialer) endUnplaced(r Request, trunk string, reason call.Reason) {
	now := time.Now()
	d.cfg.Metrics.CallEnded(trunk, string(call.StateFailed), string(reason), false)
	d.rep.CallEnded(r.ID, trunk, r.CLI, call.Result{State: call.StateFailed, Reason: reason, StartedAt: now, EndedAt: now})
}

// channel reports whether a call of kind holds one of the trunk's channels: a message does not.
func (t *trunk) channel(kind call.Kind) bool { return t.slots != nil && kind != call.KindMessage }

// acquire waits for the trunk's pacing token and, for a call, a free channel; it reports false if ctx
// ended first.
func (t *trunk) acquire(ctx context.Context, kind call.Kind) bool {
	if t.limiter != nil && t.limiter.Wait(ctx) != nil {
		return false
	}
	if t.channel(kind) {
		select {
		case t.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// tryAcquire takes a token and, for a call, a channel only if both are free now.
func (t *trunk) tryAcquire(kind call.Kind) bool {
	if t.channel(kind) {
		select {
		case t.slots <- struct{}{}:
		default:
			return false
		}
	}
	if t.limiter != nil && !t.limiter.Allow() {
		t.release(kind)
		return false
	}
	return true
}

func (t *trunk) release(kind call.Kind) {
	if t.channel(kind) {
		<-t.slots
	}
}

// failover reports whether a failed call may be placed again on another trunk: only if the trunk gave no
// provisional response and failed the way an unreachable or broken trunk does (no answer at all, transport
// error, 408 or 5xx). Once any 1xx came, the phone may have the call: never again.
func failover(res call.Result) bool {
	if res.State != call.StateFailed || res.Provisional {
		return false
	}
	switch {
	case res.SIPCode == 0:
		// Silence or a transport error; not a call the UA refused itself, nor one the engine stopped.
		return res.Reason == call.ReasonTrunkError || res.Reason == call.ReasonNoRing
	case res.SIPCode == 408, res.SIPCode >= 500 && res.SIPCode < 600:
		return true
	}
	return false
}

// run places the call on order[i], which the caller has acquired, and fails over down the order while
// failover allows.
func (d *Dialer) run(r Request, order []*trunk, i int) {
	defer d.wg.Done()
	for {
		t := order[i]
		req, err := t.call(r, d.cfg)
		if err != nil {
			t.release(r.Kind)
			d.log.Error("number not formattable for trunk", "trunk", t.Name, "err", err)
			d.endUnplaced(r, t.Name, call.ReasonClientError)
			return
		}
		sent := false
		t.inFlight.Add(1)
		t.rate.add()
		res := d.caller.Dial(d.ctx, req, func(s call.State, at time.Time) {
			if s == call.StateDialing {
				sent = true
				d.cfg.Metrics.CallStarted(t.Name)
			}
			d.rep.CallProgress(r.ID, t.Name, s, at)
		})
		t.release(r.Kind)
		t.inFlight.Add(-1)
		t.count(res.State)
		d.cfg.Metrics.CallEnded(t.Name, string(res.State), string(res.Reason), sent)
		if res.Rang {
			toCancel := time.Duration(-1)
			if !res.CancelledAt.IsZero() {
				toCancel = res.CancelledAt.Sub(res.RingingAt)
			}
			d.cfg.Metrics.Ringing(t.Name, res.RingingAt.Sub(res.StartedAt), toCancel)
		}
		d.health(t, res)
		if !failover(res) || d.ctx.Err() != nil {
			d.ended(r, t.Name, res)
			return
		}
		next := -1
		for j := i + 1; j < len(order); j++ {
			if order[j].tryAcquire(r.Kind) {
				next = j
				break
			}
		}
		if next < 0 {
			d.ended(r, t.Name, res)
			return
		}
		t.failovers.Add(1)
		d.log.Warn("trunk failed before any provisional, failing over", "trunk", t.Name, "next", order[next].Name, "sip_code", res.SIPCode, "reason", res.Reason)
		i = next
	}
}

// maxReporters bounds the reporter goroutines (a few MiB of stacks at most). A report waits for its group
// commit, some 25 ms on two busy cores, so 2,500 calls/s keep about 60 of them busy; past maxReporters, a
// call's goroutine reports itself.
const maxReporters = 256

// ended reports the call's outcome (Reporter.CallEnded) from a reporter: an idle one, or a new one while
// there are fewer than maxReporters, else from the call's own goroutine. A report decodes and encodes the
// verification's record, deep enough to grow a goroutine's stack: a reporter's grows once and stays grown,
// where each call's goroutine, new for every call, would grow and copy its stack every time (5% of the
// engine's CPU at 2,500 calls/s). Stop waits for every report (wg).
func (d *Dialer) ended(r Request, trunk string, res call.Result) {
	report := func() { d.rep.CallEnded(r.ID, trunk, r.CLI, res) }
	select {
	case d.reports <- report:
		return
	default:
	}
	if d.reporters.Add(1) > maxReporters {
		d.reporters.Add(-1)
		report()
		return
	}
	d.wg.Add(1)
	go d.reporter(report)
}

// reporter runs report, then the reports handed to it, until the dialer stops; calls that end after that
// start reporters of their own, which end after their one report.
func (d *Dialer) reporter(report func()) {
	defer d.wg.Done()
	defer d.reporters.Add(-1)
	for {
		report()
		select {
		case report = <-d.reports:
		case <-d.ctx.Done():
			return
		}
	}
}

// health counts the trunk's failures in a row and marks it down after DownAfter of them.
func (d *Dialer) health(t *trunk, res call.Result) {
	if !failover(res) {
		if res.Responded {
			t.failures.Store(0)
		}
		return
	}
	if t.failures.Add(1) >= int32(t.DownAfter) && t.down.CompareAndSwap(false, true) {
		t.nextProbe.Store(time.Now().Add(t.OptionsInterval).UnixNano())
		d.log.Warn("trunk down", "trunk", t.Name, "failures", t.failures.Load(), "sip_code", res.SIPCode, "reason", res.Reason)
	}
}

// probe sends OPTIONS to each trunk that is down, every OptionsInterval, until it answers.
func (d *Dialer) probe() {
	defer d.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case now := <-tick.C:
			for _, t := range d.trunks {
				if !t.down.Load() || now.UnixNano() < t.nextProbe.Load() {
					continue
				}
				t.nextProbe.Store(now.Add(t.OptionsInterval).UnixNano())
				ctx, cancel := context.WithTimeout(d.ctx, probeTimeout)
				d.options(ctx, t)
				cancel()
			}
		}
	}
}

// Down returns the names of the trunks marked down.
func (d *Dialer) Down() []string {
	var names []string
	for _, t := range d.trunks {
		if t.down.Load() {
			names = append(names, t.Name)
		}
	}
	return names
}
