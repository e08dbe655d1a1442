package otp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"flashotp/fault"
)

// get reads the record id in tx.
func get(tx Tx, id string) (*record, error) { return decode(id, tx.Verification(id)) }

// decode decodes the record v of verification id; nil is not found.
func decode(id string, v []byte) (*record, error) {
	if v == nil {
		return nil, fault.Errorf(fault.NotFound, "no verification %s", id)
	}
	var rec record
	if err := decodeRecord(v, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &rec, nil
}

// getOwn reads the record id of app appID; another app's is not found.
func getOwn(tx Tx, appID, id string) (*record, error) {
	if !validID(id) {
		return nil, fault.Errorf(fault.InvalidRequest, "verification_id: malformed")
	}
	rec, err := get(tx, id)
	if err == nil && rec.AppID != appID {
		return nil, fault.Errorf(fault.NotFound, "no verification %s", id)
	}
	return rec, err
}

func (s *Service) put(tx Tx, rec *record) error {
	v, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	return tx.PutVerification(rec.ID, v)
}

// storeFailed turns an error of the store (a full, read-only or failing disk) into unavailable: the
// transaction rolled back (but see store.ErrFailed), so the request may be retried. The detail is logged.
// The caller's own errors (a *fault.Error hiding nothing) pass as they are.
func (s *Service) storeFailed(what string, err error) error {
	var e *fault.Error
	if errors.As(err, &e) && e.Err == nil {
		return err
	}
	s.log.Error(what, "err", err)
	e = fault.Errorf(fault.Unavailable, "the store cannot take writes now (a full or failing disk); try again")
	e.RetryAfter = 5 * time.Second
	return e
}

// errUnchanged is returned by a modify mutation that has nothing to change.
var errUnchanged = errors.New("unchanged")

// errRaced is returned inside modify's transaction when the record changed since it was read.
var errRaced = errors.New("record changed meanwhile")

// modify changes the record id: mutate runs on a copy read outside the write transaction, then the result
// is stored, with what write adds beside it, in one group-committed transaction, provided the stored record
// is still the one read; if another change came first, it starts over. Decoding and encoding the record and
// what write adds (events, attempts, webhooks: staged) happen outside the write transaction (the store has
// one writer at a time), so concurrent verifies and outcomes use every core. write only writes.
func (s *Service) modify(ctx context.Context, id string, mutate func(rec *record) error, write func(tx Tx, rec *record) error) error {
	for {
		var raw []byte
		if err := s.db.View(ctx, func(tx Tx) error {
			raw = tx.Verification(id)
			return nil
		}); err != nil {
			return err
		}
		if raw == nil {
			return fault.Errorf(fault.NotFound, "no verification %s", id)
		}
		var rec record
		if err := decodeRecord(raw, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		before, counted := rec.Status, len(rec.Tally)
		if err := mutate(&rec); err != nil {
			return err
		}
		var writes staged
		if err := write(&writes, &rec); err != nil {
			return err
		}
		next, err := encodeRecord(&rec)
		if err != nil {
			return err
		}
		late := len(rec.Tally) != counted && s.now().Sub(rec.CreatedAt) > changeWindow
		err = s.db.Update(ctx, func(tx Tx) error {
			if !tx.VerificationIs(id, raw) {
				return errRaced
			}
			if err := tx.PutVerification(id, next); err != nil {
				return err
			}
			if late {
				// A count on a day a recount would not reach (a receipt days after its message): that day
				// is listed for it.
				if err := s.markDirty(tx, rec.CreatedAt); err != nil {
					return err
				}
			}
			return writes.apply(tx)
		})
		if err == nil {
			s.ended(before, rec.Status)
			s.addTally(&rec, rec.Tally[counted:], 1)
		}
		if !errors.Is(err, errRaced) {
			return err
		}
	}
}

// ended counts a verification whose status moved from before to a final one, once it is stored.
func (s *Service) ended(before, after Status) {
	if after != before && after != StatusPending {
		s.cfg.Metrics.VerificationEnded(string(after))
	}
}
