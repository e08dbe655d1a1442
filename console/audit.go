package console

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"flashotp/fault"
)

// Entry is one thing an operator did: who, what, to what, when and from where.
type Entry struct {
	ID       string    `json:"id"` // aud_ + ULID: sorts by time
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Role     string    `json:"role"`
	Action   string    `json:"action"`           // "POST /admin/pools/{name}/release", "reveal", "sign_in", "sign_out"
	Target   string    `json:"target,omitempty"` // what it was done to: a path, a verification ID
	Detail   string    `json:"detail,omitempty"` // the request's body, secrets redacted, cut at 1 KiB
	IP       string    `json:"ip"`
	Status   int       `json:"status,omitempty"` // the HTTP status answered
}

// AuditStore keeps the audit log, each entry an opaque record under its ID; flashotp/store implements it.
type AuditStore interface {
	PutAudit(ctx context.Context, id string, record []byte) error
	// Audit calls fn with the entries below the ID before (empty: from the newest), newest first, until fn
	// returns false.
	Audit(ctx context.Context, before string, fn func(id string, record []byte) bool) error
}

// Audit is the audit log.
type Audit struct {
	db  AuditStore
	now func() time.Time

	mu      sync.Mutex // ULIDs monotonic within a millisecond
	entropy *ulid.MonotonicEntropy
}

// NewAudit returns the audit log kept in db; now is the clock (nil: time.Now).
func NewAudit(db AuditStore, now func() time.Time) *Audit {
	if now == nil {
		now = time.Now
	}
	return &Audit{db: db, now: now, entropy: ulid.Monotonic(rand.Reader, 0)}
}

// MaxDetail bounds Entry.Detail.
const MaxDetail = 1024

// Record writes e, stamped with its ID and time.
func (a *Audit) Record(ctx context.Context, e Entry) (Entry, error) {
	a.mu.Lock()
	e.At = a.now().UTC()
	e.ID = "aud_" + ulid.MustNew(ulid.Timestamp(e.At), a.entropy).String()
	a.mu.Unlock()
	if len(e.Detail) > MaxDetail {
		e.Detail = e.Detail[:MaxDetail] + "…"
	}
	record, err := json.Marshal(e)
	if err != nil {
		return Entry{}, err
	}
	return e, a.db.PutAudit(context.WithoutCancel(ctx), e.ID, record)
}

// Page is a page of the audit log and the cursor to the next (empty: the last page).
type Page struct {
	Items      []Entry `json:"items"`
	NextCursor string  `json:"next_cursor"`
}

// List returns up to limit entries (1 to 500) below cursor, newest first.
func (a *Audit) List(ctx context.Context, cursor string, limit int) (Page, error) {
	if limit < 1 || limit > 500 {
		return Page{}, fault.Errorf(fault.InvalidRequest, "limit: want 1 to 500")
	}
	if cursor != "" {
		if len(cursor) != 4+ulid.EncodedSize || cursor[:4] != "aud_" {
			return Page{}, fault.Errorf(fault.InvalidRequest, "cursor: not one this API gave")
		}
		if _, err := ulid.ParseStrict(cursor[4:]); err != nil {
			return Page{}, fault.Errorf(fault.InvalidRequest, "cursor: not one this API gave")
		}
	}
	page := Page{Items: []Entry{}}
	var bad error
	err := a.db.Audit(ctx, cursor, func(id string, record []byte) bool {
		if len(page.Items) == limit {
			page.NextCursor = page.Items[limit-1].ID
			return false
		}
		var e Entry
		if err := json.Unmarshal(record, &e); err != nil {
			bad = fmt.Errorf("audit entry %s: %w", id, err)
			return false
		}
		page.Items = append(page.Items, e)
		return true
	})
	if err == nil {
		err = bad
	}
	return page, err
}
