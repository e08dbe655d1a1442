package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes by default: signed out after 30 minutes without a request, and 12 hours after
// signing in whatever happens.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
)

// MaxSessions bounds the sessions held: past it, signing in ends the session that was used least recently.
const MaxSessions = 10000

// Session is one signed-in browser.
type Session struct {
	ID        string // the cookie's value: 256 random bits
	CSRF      string // the token every state-changing request carries in X-CSRF-Token
	Operator  Operator
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // CreatedAt + max age: the absolute end
}

// CheckCSRF reports whether token is the session's CSRF token, in constant time.
func (s Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// Sessions are the sessions signed in, in memory: a restart signs everyone out.
type Sessions struct {
	idle, maxAge time.Duration
	now          func() time.Time

	mu   sync.Mutex
	byID map[string]*Session
}

// NewSessions returns an empty set of sessions ending after idle without use and maxAge after they began
// (0: the defaults). now is the clock (nil: time.Now).
func NewSessions(idle, maxAge time.Duration, now func() time.Time) *Sessions {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{idle: idle, maxAge: maxAge, now: now, byID: map[string]*Session{}}
}

// IdleTimeout is how long a session lasts unused.
func (ss *Sessions) IdleTimeout() time.Duration { return ss.idle }

// Begin starts a session for op.
func (ss *Sessions) Begin(op Operator) Session {
	now := ss.now()
	s := &Session{ID: random(), CSRF: random(), Operator: op, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(ss.maxAge)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= MaxSessions {
		ss.evict(now)
	}
	ss.byID[s.ID] = s
	return *s
}

// Get returns the live session id and marks it used; an unknown, idle or too old one: false (and it is
// gone).
func (ss *Sessions) Get(id string) (Session, bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return Session{}, false
	}
	if ss.ended(s, now) {
		delete(ss.byID, id)
		return Session{}, false
	}
	s.LastSeen = now
	return *s, true
}

// End ends session id (signing out); an unknown one is no error.
func (ss *Sessions) End(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// EndOperator ends every session of operator name (removed, or its role changed).
func (ss *Sessions) EndOperator(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.byID {
		if s.Operator.Name == name {
			delete(ss.byID, id)
		}
	}
}

func (ss *Sessions) ended(s *Session, now time.Time) bool {
	return !now.Before(s.ExpiresAt) || now.Sub(s.LastSeen) >= ss.idle
}

// evict drops the ended sessions, and if none had ended, the one used least recently. Under mu.
func (ss *Sessions) evict(now time.Time) {
	var oldest *Session
	for id, s := range ss.byID {
		if ss.ended(s, now) {
			delete(ss.byID, id)
			continue
		}
		if oldest == nil || s.LastSeen.Before(oldest.LastSeen) {
			oldest = s
		}
	}
	if len(ss.byID) >= MaxSessions && oldest != nil {
		delete(ss.byID, oldest.ID)
	}
}

// random is 256 bits from crypto/rand, base64url.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
