package otp

import (
	"context"
	"encoding/json"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"flashotp/apps"
	"flashotp/fault"
)

// Page is one page of a listing, newest first. NextCursor, when not empty, gets the next page; pages stay
// stable while new records arrive (they come before the first page, never inside a later one).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Query filters a listing. Since and Until bound the time of creation (inclusive, exclusive).
type Query struct {
	AppID     string
	Recipient string
	Status    string // list: a verification status
	Channel   string // list
	Type      string // logs: an event type
	ID        string // logs and attempts: one verification
	Since     time.Time
	Until     time.Time
	Limit     int
	Cursor    string
}

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// maxScan bounds how many index keys one page may examine: a filter that matches rarely returns a short
// page (or none) with a cursor to go on from, rather than reading the whole store.
func maxScan(limit int) int { return max(20*limit, 2000) }

func (q *Query) check(prefixes ...string) error {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return fault.Errorf(fault.InvalidRequest, "limit: want 1 to %d", MaxLimit)
	}
	if q.Cursor != "" && !validULID(q.Cursor, prefixes...) {
		return fault.Errorf(fault.InvalidRequest, "cursor: not one this API gave")
	}
	if q.ID != "" && !validID(q.ID) {
		return fault.Errorf(fault.InvalidRequest, "verification_id: malformed")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return fault.Errorf(fault.InvalidRequest, "since: must be before until")
	}
	if q.Recipient != "" {
		to, err := checkRecipient(q.Recipient, apps.App{})
		if err != nil {
			return err
		}
		q.Recipient = to.E164
	}
	return nil
}

func validULID(id string, prefixes ...string) bool {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(id, p); ok && len(rest) == ulid.EncodedSize {
			_, err := ulid.ParseStrict(rest)
			return err == nil
		}
	}
	return false
}

// idTime is the time in a prefixed ULID.
func idTime(id string) time.Time {
	u, err := ulid.ParseStrict(id[strings.IndexByte(id, '_')+1:])
	if err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time())
}

// bound is the first ID with idPrefix above every ID made before t.
func bound(idPrefix string, t time.Time) string {
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t))
	return idPrefix + u.String()
}

// before is the ID a page of q starts below: its cursor, or the first ID with idPrefix made at until.
func (q *Query) before(idPrefix string) string {
	before := ""
	if !q.Until.IsZero() {
		before = bound(idPrefix, q.Until)
	}
	if q.Cursor != "" && (before == "" || q.Cursor < before) {
		before = q.Cursor
	}
	return before
}

// scanPage walks records newest first (as from q.before, down to since) and calls take with each until it
// has limit items or maxScan records were read, or take fails.
func scanPage(records iter.Seq2[string, []byte], q Query, take func(id string, v []byte) (bool, error)) (next string, err error) {
	taken, read := 0, 0
	for id, v := range records {
		if !q.Since.IsZero() && idTime(id).Before(q.Since) {
			break
		}
		read++
		ok, err := take(id, v)
		if err != nil {
			return "", err
		}
		if ok {
			taken++
		}
		if taken == q.Limit || read == maxScan(q.Limit) {
			return id, nil
		}
	}
	return "", nil
}

// Status returns the verification id of app appID.
func (s *Service) Status(ctx context.Context, appID, id string) (Verification, error) {
	var rec *record
	err := s.db.View(ctx, func(tx Tx) error {
		var err error
		rec, err = getOwn(tx, appID, id)
		return err
	})
	if err != nil {
		return Verification{}, err
	}
	return s.view(rec), nil
}

// view is rec as the API shows it now: expired once past expires_at, with its call's live progress.
func (s *Service) view(rec *record) Verification {
	v := rec.Verification
	if v.Status == StatusPending && !s.now().Before(v.ExpiresAt) {
		v.Status = StatusExpired
	}
	s.withProgress(&v)
	return withFlashStep(v)
}

// List returns the app's verifications, newest first.
func (s *Service) List(ctx context.Context, q Query) (Page[Verification], error) {
	if err := q.check("otp_"); err != nil {
		return Page[Verification]{}, err
	}
	switch Status(q.Status) {
	case "", StatusPending, StatusApproved, StatusExpired, StatusFailed, StatusCanceled:
	default:
		return Page[Verification]{}, fault.Errorf(fault.InvalidRequest, "status: want pending, approved, expired, failed or canceled")
	}
	if q.Channel != "" && !slices.Contains(listChannels, q.Channel) {
		return Page[Verification]{}, fault.Errorf(fault.InvalidRequest, "channel: want one of %s", strings.Join(listChannels, ", "))
	}
	page := Page[Verification]{Items: []Verification{}}
	err := s.db.View(ctx, func(tx Tx) error {
		records := tx.ByApp(q.AppID, q.before("otp_"))
		if q.Recipient != "" {
			records = tx.ByRecipient(q.AppID, q.Recipient, q.before("otp_"))
		}
		var err error
		page.NextCursor, err = scanPage(records, q, func(id string, raw []byte) (bool, error) {
			rec, err := decode(id, raw)
			if err != nil {
				return false, err
			}
			v := s.view(rec)
			if q.Status != "" && string(v.Status) != q.Status || q.Channel != "" && !hasStep(v, q.Channel) {
				return false, nil
			}
			page.Items = append(page.Items, v)
			return true, nil
		})
		return err
	})
	return page, err
}

// listChannels are the channels a listing may filter by: SPEC section 8's.
var listChannels = apps.Channels

// hasStep reports whether v has a step on channel.
func hasStep(v Verification, channel string) bool {
	return slices.ContainsFunc(v.Steps, func(st Step) bool { return st.Channel == channel })
}

// Found is a verification found by its ID alone, with what only the engine's operators may see beside it.
type Found struct {
	Verification
	// Email is the address of its email steps, if any (a verification of a phone number may have one).
	Email string
}

// Find returns verification id, whichever app's it is: for the engine's operators, never an app's API.
func (s *Service) Find(ctx context.Context, id string) (Found, error) {
	if !validID(id) {
		return Found{}, fault.Errorf(fault.InvalidRequest, "verification_id: malformed")
	}
	var rec *record
	err := s.db.View(ctx, func(tx Tx) error {
		var err error
		rec, err = get(tx, id)
		return err
	})
	if err != nil {
		return Found{}, err
	}
	return Found{Verification: s.view(rec), Email: rec.Email}, nil
}

// EventTypes are the event types of the logs.
var EventTypes = []string{EventSendRequested, EventCallDialing, EventCallRinging, EventCallMissed, EventCallAnswered,
	EventCallFailed, EventVerifyFailed, EventVerifyOK, EventResend, EventExpired,
	EventStepStarted, EventVoiceAnswered, EventVoicePlayed, EventMessageSent, EventMessageDelivered, EventMessageFailed}

// Logs returns the app's activity events, newest recorded first.
func (s *Service) Logs(ctx context.Context, q Query) (Page[Event], error) {
	if err := q.check("evt_"); err != nil {
		return Page[Event]{}, err
	}
	if q.Type != "" && !slices.Contains(EventTypes, q.Type) {
		return Page[Event]{}, fault.Errorf(fault.InvalidRequest, "type: want one of %s", strings.Join(EventTypes, ", "))
	}
	page := Page[Event]{Items: []Event{}}
	err := s.db.View(ctx, func(tx Tx) error {
		var err error
		page.NextCursor, err = scanPage(tx.Events(q.AppID, q.before("evt_")), q, func(id string, v []byte) (bool, error) {
			e, err := decodeEvent(id, v)
			if err != nil {
				return false, err
			}
			if q.Type != "" && e.Type != q.Type || q.ID != "" && e.VerificationID != q.ID || q.Recipient != "" && e.Recipient != q.Recipient {
				return false, nil
			}
			page.Items = append(page.Items, e)
			return true, nil
		})
		return err
	})
	return page, err
}

// Attempts returns the verify attempts of one verification, or of a recipient's verifications, newest
// first (at most q.Limit).
func (s *Service) Attempts(ctx context.Context, q Query) (Page[Attempt], error) {
	if err := q.check(); err != nil {
		return Page[Attempt]{}, err
	}
	if (q.ID == "") == (q.Recipient == "") {
		return Page[Attempt]{}, fault.Errorf(fault.InvalidRequest, "verification_id or recipient: give one")
	}
	page := Page[Attempt]{Items: []Attempt{}}
	err := s.db.View(ctx, func(tx Tx) error {
		ids := []string{q.ID}
		if q.ID != "" {
			if _, err := getOwn(tx, q.AppID, q.ID); err != nil {
				return err
			}
		} else {
			ids = nil
			for id := range tx.ByRecipient(q.AppID, q.Recipient, "") {
				ids = append(ids, id)
				if len(ids) == q.Limit {
					break
				}
			}
		}
		for _, id := range ids {
			for _, v := range tx.Attempts(id) {
				var a Attempt
				if err := json.Unmarshal(v, &a); err != nil {
					return err
				}
				page.Items = append(page.Items, a)
			}
		}
		return nil
	})
	slices.SortStableFunc(page.Items, func(a, b Attempt) int { return b.At.Compare(a.At) })
	page.Items = page.Items[:min(len(page.Items), q.Limit)]
	return page, err
}
