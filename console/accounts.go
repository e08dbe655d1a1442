package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"flashotp/fault"
)

// The roles: a viewer reads everything and changes nothing; an admin also changes what the admin API
// changes.
const (
	RoleViewer = "viewer"
	RoleAdmin  = "admin"
)

// TokenOperator is the name of whoever signs in with the admin token (an admin).
const TokenOperator = "admin"

// Password lengths: bcrypt reads 72 bytes at most, and a longer password would be cut silently.
const (
	MinPassword = 12
	MaxPassword = 72
)

// ErrBadCredentials is returned by Authenticate for an unknown operator or a wrong password alike.
var ErrBadCredentials = errors.New("unknown operator or wrong password")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Operator is a named console account as it is shown: never its password hash.
type Operator struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// stored is an account as the store keeps it.
type stored struct {
	Operator
	Hash []byte `json:"hash"` // bcrypt
}

// Store keeps the accounts, each an opaque record under its name; flashotp/store implements it.
type Store interface {
	// LoadOperators calls fn with every account.
	LoadOperators(ctx context.Context, fn func(name string, record []byte) error) error
	// PutOperator stores record under name; nil removes name.
	PutOperator(ctx context.Context, name string, record []byte) error
}

// Accounts are the operators, loaded once and kept in memory; changes are written through to the store.
type Accounts struct {
	db   Store
	cost int
	now  func() time.Time
	// dummy is compared against for an unknown name, so that a sign-in takes as long whether or not the
	// operator exists: a hash of the same cost as the operators'.
	dummy []byte

	mu  sync.RWMutex
	ops map[string]stored
}

// LoadAccounts reads the accounts from db. cost is bcrypt's (0: bcrypt.DefaultCost; tests take
// bcrypt.MinCost).
func LoadAccounts(ctx context.Context, db Store, cost int) (*Accounts, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("flashotp: no such operator"), cost)
	if err != nil {
		return nil, err
	}
	a := &Accounts{db: db, cost: cost, now: time.Now, dummy: dummy}
	a.ops, err = a.load(ctx)
	return a, err
}

func (a *Accounts) load(ctx context.Context) (map[string]stored, error) {
	ops := map[string]stored{}
	err := a.db.LoadOperators(ctx, func(name string, record []byte) error {
		var s stored
		if err := json.Unmarshal(record, &s); err != nil {
			return fmt.Errorf("operator %q: unreadable record: %w", name, err)
		}
		ops[name] = s
		return nil
	})
	return ops, err
}

// Reload reads the accounts again from the store, as another engine sharing it left them: an operator
// added there signs in here once Reload returns. It returns the operators removed there (or removed and made
// again, another role or password), whose sessions here are the caller's to end (Sessions.EndOperator). It reads under the lock every change here writes under.
func (a *Accounts) Reload(ctx context.Context) (removed []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ops, err := a.load(ctx)
	if err != nil {
		return nil, err
	}
	for name, old := range a.ops {
		// Removed, or removed and made again (another role, another password): its sessions go.
		if cur, ok := ops[name]; !ok || cur.Role != old.Role || !bytes.Equal(cur.Hash, old.Hash) {
			removed = append(removed, name)
		}
	}
	a.ops = ops
	return removed, nil
}

// Add creates an operator. The name is 1 to 64 of a-z, 0-9, '.', '_' and '-' (starting with a letter or
// digit), the role viewer or admin, the password 12 to 72 bytes.
func (a *Accounts) Add(ctx context.Context, name, role, password string) (Operator, error) {
	switch {
	case !nameRE.MatchString(name):
		return Operator{}, fault.Errorf(fault.InvalidRequest, "name: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
	case name == TokenOperator:
		return Operator{}, fault.Errorf(fault.InvalidRequest, "name: %q is whoever signs in with the admin token", TokenOperator)
	case role != RoleViewer && role != RoleAdmin:
		return Operator{}, fault.Errorf(fault.InvalidRequest, "role: want %s or %s", RoleViewer, RoleAdmin)
	case len(password) < MinPassword || len(password) > MaxPassword:
		return Operator{}, fault.Errorf(fault.InvalidRequest, "password: want %d to %d bytes", MinPassword, MaxPassword)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return Operator{}, err
	}
	s := stored{Operator: Operator{Name: name, Role: role, CreatedAt: a.now().UTC().Truncate(time.Second)}, Hash: hash}
	record, err := json.Marshal(s)
	if err != nil {
		return Operator{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ops[name]; ok {
		return Operator{}, fault.Errorf(fault.Conflict, "operator %q exists", name)
	}
	if err := a.db.PutOperator(context.WithoutCancel(ctx), name, record); err != nil {
		return Operator{}, err
	}
	a.ops[name] = s
	return s.Operator, nil
}

// Remove deletes an operator; its sessions are the caller's to end (Sessions.EndOperator).
func (a *Accounts) Remove(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ops[name]; !ok {
		return fault.Errorf(fault.NotFound, "no operator %q", name)
	}
	if err := a.db.PutOperator(context.WithoutCancel(ctx), name, nil); err != nil {
		return err
	}
	delete(a.ops, name)
	return nil
}

// List returns the operators by name.
func (a *Accounts) List() []Operator {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]Operator, 0, len(a.ops))
	for _, s := range a.ops {
		out = append(out, s.Operator)
	}
	slices.SortFunc(out, func(x, y Operator) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// Get returns operator name as it is now (a removed operator: false).
func (a *Accounts) Get(name string) (Operator, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	s, ok := a.ops[name]
	return s.Operator, ok
}

// Authenticate returns the operator whose name and password these are; else ErrBadCredentials, after as
// long as a right name would have taken.
func (a *Accounts) Authenticate(name, password string) (Operator, error) {
	a.mu.RLock()
	s, ok := a.ops[name]
	a.mu.RUnlock()
	hash := s.Hash
	if !ok {
		hash = a.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return Operator{}, ErrBadCredentials
	}
	return s.Operator, nil
}
