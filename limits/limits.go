// Package limits is flashotp's one limiter: every rate limit of the API (per recipient, per app, per API
// key and client address, per destination prefix, failed verifications per recipient, failed
// authentications per address) is a Rule checked here, with the same sliding-window semantics and the same
// report (GET /otp/rate-limits).
//
// A rule allows at most Limit events in any Window: the limiter keeps each key's last Limit event times (a
// sliding log), so "5 per 10 minutes" means exactly that, never 10 across a window boundary. A key whose
// events have all left their window is dropped by Sweep. State is in memory (a restart starts every
// window afresh, docs/api.md says so), or, for engines sharing a database, in the database (Shared), so that
// a limit holds across them.
package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Rule is one limit: at most Limit events per Window in the scope.
type Rule struct {
	Scope  string
	Limit  int
	Window time.Duration
}

// Off reports whether the rule limits nothing (a zero limit switches a rule off).
func (r Rule) Off() bool { return r.Limit <= 0 || r.Window <= 0 }

// Check is one rule applied to one key.
type Check struct {
	Rule
	Key string
}

// Window is a rule's window. Its text is a Go duration ("10m0s"), as GET /otp/rate-limits shows it.
type Window time.Duration

// MarshalText writes w as a Go duration.
func (w Window) MarshalText() ([]byte, error) { return []byte(time.Duration(w).String()), nil }

// Status is where one key stands under one rule.
type Status struct {
	Scope   string    `json:"scope"`
	Key     string    `json:"key"`
	Limit   int       `json:"limit"`
	Window  Window    `json:"window"`
	Used    int       `json:"used"`
	ResetAt time.Time `json:"reset_at"` // when the oldest counted event leaves the window (now if none)
}

// Limiter counts events per scope and key. It is safe for concurrent use.
type Limiter struct {
	now  func() time.Time
	mu   sync.Mutex
	logs map[string]*eventLog // scope + NUL + key → its recent events

	shared Shared // nil: the logs above
	slog   *slog.Logger
}

// Shared keeps the limiter's events where the engines sharing a store all see them (SPEC section 10: five
// sends per recipient per 10 minutes is five in total, not five per engine). Each event has an ID the
// limiter makes; a check counts the events of its scope and key in its window, and the newest Limit of them
// as the in-memory log does.
type Shared interface {
	// Allow records event id at for every check if none of them is full, as one transaction across
	// engines, and returns the index of the first full one (-1: none) and how long until it has room.
	Allow(ctx context.Context, checks []Check, id string, at time.Time) (denied int, retryAfter time.Duration, err error)
	// Add records event id of c at, full or not.
	Add(ctx context.Context, c Check, id string, at time.Time) error
	// Remove forgets event id of c.
	Remove(ctx context.Context, c Check, id string) error
	// Count returns how many events c has in its window at now (at most c.Limit) and, when it has any,
	// when the oldest of those counted leaves the window.
	Count(ctx context.Context, c Check, now time.Time) (used int, resetAt time.Time, err error)
	// Sweep deletes the events that have left their windows at now.
	Sweep(ctx context.Context, now time.Time) error
}

// sharedTimeout bounds each call to a Shared store. When one fails, the limiter lets the event through
// (and logs it): a store that cannot be reached fails the send, verify or sign-in anyway, as unavailable.
const sharedTimeout = 2 * time.Second

// NewShared returns a limiter whose events are in s, reading time from now (nil: time.Now).
func NewShared(s Shared, now func() time.Time, log *slog.Logger) *Limiter {
	l := New(now)
	l.shared, l.slog = s, log
	if l.slog == nil {
		l.slog = slog.Default()
	}
	return l
}

// eventID is a new event's ID in a Shared store.
func eventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sharedCall runs fn with a bounded context and logs its error.
func (l *Limiter) sharedCall(what string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	err := fn(ctx)
	if err != nil {
		l.slog.Error("rate limit store", "what", what, "err", err)
	}
	return err
}

// eventLog is a ring of the last Limit event times (unix nanoseconds), oldest at head.
type eventLog struct {
	times  []int64
	head   int
	n      int
	window time.Duration
}

// New returns a limiter reading time from now (nil: time.Now).
func New(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, logs: map[string]*eventLog{}}
}

func (l *Limiter) log(c Check, create bool) *eventLog {
	id := c.Scope + "\x00" + c.Key
	lg := l.logs[id]
	if lg == nil && create {
		lg = &eventLog{times: make([]int64, c.Limit), window: c.Window}
		l.logs[id] = lg
	}
	if lg != nil && len(lg.times) != c.Limit {
		// The rule changed (an app's limits were edited): keep the newest events that still fit.
		nl := &eventLog{times: make([]int64, max(c.Limit, 1)), window: c.Window}
		for i := max(0, lg.n-c.Limit); i < lg.n; i++ {
			nl.push(lg.at(i))
		}
		l.logs[id], lg = nl, nl
	}
	return lg
}

func (g *eventLog) at(i int) int64 { return g.times[(g.head+i)%len(g.times)] }

func (g *eventLog) push(t int64) {
	if g.n < len(g.times) {
		g.times[(g.head+g.n)%len(g.times)] = t
		g.n++
		return
	}
	g.times[g.head] = t
	g.head = (g.head + 1) % len(g.times)
}

// remove forgets the newest event at time t, if the log still holds one.
func (g *eventLog) remove(t int64) {
	for i := g.n - 1; i >= 0; i-- {
		if g.at(i) != t {
			continue
		}
		for j := i; j+1 < g.n; j++ {
			g.times[(g.head+j)%len(g.times)] = g.at(j + 1)
		}
		g.n--
		return
	}
}

// drop forgets the events that left the window.
func (g *eventLog) drop(now int64) {
	for g.n > 0 && now-g.at(0) >= int64(g.window) {
		g.head = (g.head + 1) % len(g.times)
		g.n--
	}
}

// Allow records one event for every check if none of them is full, and reports the first full one and how
// long until it has room. Either every check counts the event or none does.
func (l *Limiter) Allow(checks ...Check) (denied *Check, retryAfter time.Duration) {
	if l.shared != nil {
		denied, retryAfter, _ = l.allowShared(checks, eventID())
		return denied, retryAfter
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allow(now, checks...)
}

// allow is Allow at now, with l.mu held.
func (l *Limiter) allow(now int64, checks ...Check) (denied *Check, retryAfter time.Duration) {
	for i := range checks {
		c := &checks[i]
		if c.Off() {
			continue
		}
		g := l.log(*c, false)
		if g == nil {
			continue
		}
		g.drop(now)
		if g.n >= c.Limit {
			return c, time.Duration(g.at(0) + int64(c.Window) - now)
		}
	}
	for _, c := range checks {
		if !c.Off() {
			l.log(c, true).push(now)
		}
	}
	return nil, 0
}

// allowShared is Allow on the shared store, recording event id; it reports whether it recorded it.
func (l *Limiter) allowShared(checks []Check, id string) (denied *Check, retryAfter time.Duration, recorded bool) {
	var live []Check // the checks that limit something; of checks[at[i]]
	var at []int
	for k, c := range checks {
		if !c.Off() {
			live, at = append(live, c), append(at, k)
		}
	}
	if len(live) == 0 {
		return nil, 0, false
	}
	i := -1
	err := l.sharedCall("allow", func(ctx context.Context) error {
		var err error
		i, retryAfter, err = l.shared.Allow(ctx, live, id, l.now())
		return err
	})
	if err != nil || i < 0 {
		return nil, 0, err == nil
	}
	return &checks[at[i]], retryAfter, false
}

// Reservation is one event Reserve recorded, to be kept or given back.
type Reservation struct {
	l  *Limiter
	id string // scope + NUL + key; empty when the rule is off (nothing was recorded)
	at int64
	// c and event are the check and the event ID of a reservation in a Shared store.
	c     Check
	event string
}

// Reserve records one event for c if it has room, as Allow does, and returns it so that the caller can give
// it back (Release) when what it counted did not happen. It lets a caller claim a slot before doing the work
// the limit bounds: checking room first and counting afterwards lets any number of concurrent callers
// through the same last slot.
func (l *Limiter) Reserve(c Check) (r Reservation, ok bool, retryAfter time.Duration) {
	if l.shared != nil {
		id := eventID()
		denied, retry, recorded := l.allowShared([]Check{c}, id)
		if denied != nil {
			return Reservation{}, false, retry
		}
		if recorded {
			r = Reservation{l: l, c: c, event: id}
		}
		return r, true, 0
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if denied, retry := l.allow(now, c); denied != nil {
		return Reservation{}, false, retry
	}
	r = Reservation{l: l}
	if !c.Off() {
		r.id, r.at = c.Scope+"\x00"+c.Key, now
	}
	return r, true, 0
}

// Release gives the reserved event back, as if it had never been recorded. Releasing twice, or an event
// that already left its window, changes nothing.
func (r *Reservation) Release() {
	if r.l != nil && r.event != "" {
		l, c, id := r.l, r.c, r.event
		r.l = nil
		_ = l.sharedCall("release", func(ctx context.Context) error { return l.shared.Remove(ctx, c, id) })
		return
	}
	if r.l == nil || r.id == "" {
		return
	}
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	r.l = nil
	// Not l.log: that would resize the log to a rule the app may have edited since.
	if g := l.logs[r.id]; g != nil {
		g.remove(r.at)
	}
}

// Full reports whether c has no room now, and how long until it has.
func (l *Limiter) Full(c Check) (bool, time.Duration) {
	s := l.Status(c)
	if c.Off() || s.Used < c.Limit {
		return false, 0
	}
	return true, s.ResetAt.Sub(l.now())
}

// Add records one event for c without checking it (a failed authentication is counted, not refused).
func (l *Limiter) Add(c Check) {
	if c.Off() {
		return
	}
	if l.shared != nil {
		_ = l.sharedCall("add", func(ctx context.Context) error { return l.shared.Add(ctx, c, eventID(), l.now()) })
		return
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.log(c, true)
	g.drop(now)
	g.push(now)
}

// Status reports where c's key stands.
func (l *Limiter) Status(c Check) Status {
	now := l.now()
	s := Status{Scope: c.Scope, Key: c.Key, Limit: c.Limit, Window: Window(c.Window), ResetAt: now.UTC()}
	if c.Off() {
		return s
	}
	if l.shared != nil {
		_ = l.sharedCall("count", func(ctx context.Context) error {
			used, reset, err := l.shared.Count(ctx, c, now)
			if err == nil && used > 0 {
				s.Used, s.ResetAt = used, reset.UTC()
			}
			return err
		})
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if g := l.log(c, false); g != nil {
		g.drop(now.UnixNano())
		s.Used = g.n
		if g.n > 0 {
			s.ResetAt = time.Unix(0, g.at(0)+int64(c.Window)).UTC()
		}
	}
	return s
}

// Sweep drops the keys whose events have all left their windows; it returns how many keys remain.
func (l *Limiter) Sweep() int {
	if l.shared != nil {
		_ = l.sharedCall("sweep", func(ctx context.Context) error { return l.shared.Sweep(ctx, l.now()) })
		return 0
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, g := range l.logs {
		if g.drop(now); g.n == 0 {
			delete(l.logs, id)
		}
	}
	return len(l.logs)
}
