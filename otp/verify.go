package otp

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
)

// VerifyRequest is a code the user typed (or the app read from the call log), for one verification, or
// for the newest pending verification of a recipient, as POST /otp/verify's body gives it.
type VerifyRequest struct {
	AppID          string `json:"appid"`
	VerificationID string `json:"verification_id"`
	Recipient      string `json:"recipient"` // used when VerificationID is empty
	Code           string `json:"otp_code"`
	RemoteIP       string `json:"-"` // recorded with the attempt; the HTTP layer sets it, never the body
}

// Attempt is one verify attempt as GET /otp/attempts shows it.
type Attempt struct {
	VerificationID string    `json:"verification_id"`
	At             time.Time `json:"at"`
	Result         string    `json:"result"`
	RemoteIP       string    `json:"remote_ip"`
}

// Verify checks the code. It returns the approved verification, or a *fault.Error whose Code says why not.
// Every attempt is recorded durably before the answer; wrong codes count against the verification's
// attempts and against the recipient's failed_verifications limit.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (Verification, error) {
	code := strings.TrimPrefix(req.Code, "+")
	if len(code) < 4 || len(code) > 15 || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "otp_code: want the code's digits, or the whole caller ID")
	}
	app, err := s.app(req.AppID)
	if err != nil {
		return Verification{}, err
	}
	id := req.VerificationID
	if id == "" {
		if id, err = s.newestPending(ctx, app, req.Recipient); err != nil {
			return Verification{}, err
		}
	} else if !validID(id) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "verification_id: malformed")
	}
	var (
		out    Verification
		result error
		wrong  bool
	)
	var (
		now            time.Time
		before         Status
		attemptsBefore int
		slot           limits.Reservation
		reserved       bool
	)
	err = s.modify(ctx, id, func(rec *record) error {
		if rec.AppID != app.ID {
			return fault.Errorf(fault.NotFound, "no verification %s", id)
		}
		// The attempt takes its slot in the recipient's failed_verifications limit before its code is compared,
		// and gives it back below unless it was a wrong code that was stored: checking for room here and
		// counting after the write let every concurrent guess through the last slot (128 evaluated against 100).
		if !reserved { // modify runs this again when another change came first: the slot is kept meanwhile
			c := check(app, apps.ScopeFailedVerifications, rec.Recipient)
			var ok bool
			var retry time.Duration
			if slot, ok, retry = s.limiter.Reserve(c); !ok {
				return rateLimited(c, retry)
			}
			reserved = true
		}
		now = s.now().UTC()
		before, attemptsBefore = rec.Status, rec.Attempts
		result = s.check(rec, code, now)
		wrong = rec.Attempts > attemptsBefore
		if rec.Status == StatusApproved && before != StatusApproved {
			channel, trunk := rec.approvedBy()
			rec.tally(tallyOp{Kind: tallyApproved, Channel: channel, Trunk: trunk})
		}
		out = rec.Verification
		return nil
	}, func(tx Tx, rec *record) error {
		name := ResultName(result)
		at, err := json.Marshal(Attempt{VerificationID: rec.ID, At: now, Result: name, RemoteIP: req.RemoteIP})
		if err != nil {
			return err
		}
		if err := tx.PutAttempt(rec.ID, s.newID("att_", now), at); err != nil {
			return err
		}
		typ := EventVerifyFailed
		if result == nil {
			typ = EventVerifyOK
		}
		if err := s.event(tx, rec, Event{Type: typ, At: now, Result: name, RemoteIP: req.RemoteIP}); err != nil {
			return err
		}
		if wrong && rec.Attempts == rec.MaxAttempts {
			if err := s.notify(tx, rec, WebhookMaxAttempts, now); err != nil {
				return err
			}
		}
		return s.transitions(tx, rec, before, now)
	})
	if err != nil || !wrong {
		slot.Release()
	}
	if err != nil {
		return Verification{}, s.storeFailed("record verify attempt", err)
	}
	s.withProgress(&out)
	out = withFlashStep(out)
	s.act.verifies.Add(1)
	if result == nil {
		s.act.approved.Add(1)
	}
	s.log.Debug("verify", "verification_id", out.ID, "result", ResultName(result), "attempts", out.Attempts)
	return out, result
}

// transitions records what a change of rec's status from before means: the approved webhook (its count is
// the verify's tally),
// the expired event and webhook, or, for a verification whose attempts are used up, that it can no longer
// expire (its webhook, max_attempts_reached, goes with the attempt).
func (s *Service) transitions(tx Tx, rec *record, before Status, now time.Time) error {
	if rec.Status == before {
		return nil
	}
	switch rec.Status {
	case StatusApproved:
		return s.notify(tx, rec, WebhookApproved, now)
	case StatusExpired:
		if err := s.event(tx, rec, Event{Type: EventExpired, At: rec.ExpiresAt}); err != nil {
			return err
		}
		return s.notify(tx, rec, EventExpired, now)
	case StatusFailed:
		return tx.DeleteExpiry(rec.ID, rec.ExpiresAt)
	}
	return nil
}

// attemptsUsed reports whether rec's wrong codes used up its attempts.
func (rec *record) attemptsUsed() bool { return rec.Attempts >= rec.MaxAttempts }

// newestPending returns the newest verification of recipient in app that is still pending, or that failed
// within its TTL because its attempts are used up.
func (s *Service) newestPending(ctx context.Context, app apps.App, recipient string) (string, error) {
	if recipient == "" {
		return "", fault.Errorf(fault.InvalidRequest, "verification_id or recipient: required")
	}
	key, err := recipientKey(recipient)
	if err != nil {
		return "", err
	}
	var id string
	now := s.now()
	err = s.db.View(ctx, func(tx Tx) error {
		for vid, v := range tx.ByRecipient(app.ID, key, "") {
			rec, err := decode(vid, v)
			if err != nil {
				return err
			}
			// One whose attempts are used up answers for itself (max_attempts_reached), as when it was pending.
			if (rec.Status == StatusPending || rec.Status == StatusFailed && rec.attemptsUsed()) && now.Before(rec.ExpiresAt) {
				id = rec.ID
				return nil
			}
			// Only the last TTL's sends can still be pending (a resend renews one).
			if now.Sub(rec.SentAt) >= time.Duration(app.TTL) {
				return nil
			}
		}
		return nil
	})
	if err == nil && id == "" {
		err = fault.Errorf(fault.NotFound, "no pending verification for %s", key)
	}
	return id, err
}

// ResultName names how a verify went: "approved", an error code (invalid_code, expired, …), or "internal".
func ResultName(err error) string {
	if err == nil {
		return "approved"
	}
	return string(fault.CodeOf(err))
}

// check applies one verify attempt to rec, in the order the API promises, and says how it went.
func (s *Service) check(rec *record, code string, now time.Time) error {
	switch {
	case rec.Status == StatusApproved:
		return fault.Errorf(fault.AlreadyVerified, "code already used")
	case rec.Status == StatusFailed && rec.attemptsUsed():
		return fault.Errorf(fault.MaxAttempts, "all %d attempts used", rec.MaxAttempts)
	case rec.Status == StatusFailed:
		return fault.Errorf(fault.Undeliverable, "%s; resend or send again", rec.whyUndelivered())
	case rec.Status == StatusExpired || rec.Status == StatusPending && !now.Before(rec.ExpiresAt):
		rec.Status = StatusExpired
		return fault.Errorf(fault.Expired, "verification expired at %s", rec.ExpiresAt.Format(time.RFC3339))
	case rec.Status != StatusPending:
		return fault.Errorf(fault.NotFound, "verification is %s", rec.Status)
	case rec.attemptsUsed():
		rec.Status = StatusFailed // stored pending by an engine that did not fail it at the last attempt
		return fault.Errorf(fault.MaxAttempts, "all %d attempts used", rec.MaxAttempts)
	}

	// The whole CLI as the call log shows it (E.164, national, 00-international): its last digits are the
	// code. The rest is not checked: it is public (cli_prefix), so it would add nothing against guessing,
	// and phones write it in too many ways.
	if s.matches(rec, code) {
		rec.Status = StatusApproved
		return nil
	}
	rec.Attempts++
	rec.AttemptsRemaining = rec.MaxAttempts - rec.Attempts
	if rec.attemptsUsed() {
		// No code can approve it any more: it is over, as SPEC section 4's failed says, not pending.
		rec.Status = StatusFailed
		return fault.Errorf(fault.MaxAttempts, "wrong code; all %d attempts used", rec.MaxAttempts)
	}
	left := rec.AttemptsRemaining
	e := fault.Errorf(fault.InvalidCode, "wrong code")
	e.AttemptsRemaining = &left
	return e
}

// matches reports whether code is the code of one of rec's live steps, and marks that step as the one
// that approved. Every live code is compared, in constant time each, whichever matches.
func (s *Service) matches(rec *record, code string) bool {
	if rec.current() < 0 { // a record from before steps
		return hmac.Equal(s.mac(rec.ID, code[len(code)-min(len(code), rec.CodeLength):]), rec.CodeMAC)
	}
	hit := -1
	for i, mac := range rec.Codes {
		if mac == nil {
			continue
		}
		st := rec.Steps[i]
		digits := code
		if st.Channel == ChannelFlashCall {
			// The whole CLI as the call log shows it (E.164, national, 00-international): its last digits are
			// the code. The rest is not checked: it is public (cli_prefix), so it would add nothing against
			// guessing, and phones write it in too many ways.
			digits = code[len(code)-min(len(code), st.CodeLength):]
		}
		if hmac.Equal(s.mac(rec.ID, digits), mac) && hit < 0 {
			hit = i
		}
	}
	rec.Approved = hit
	return hit >= 0
}

// approvedBy returns the channel and trunk of the step whose code approved rec.
func (rec *record) approvedBy() (channel, trunk string) {
	if rec.Approved < 0 || rec.Approved >= len(rec.Steps) {
		return ChannelFlashCall, rec.Call.Trunk
	}
	st := rec.Steps[rec.Approved]
	return st.Channel, st.Trunk
}

// whyUndelivered says why no code of rec reached the user.
func (rec *record) whyUndelivered() string {
	i := rec.current()
	if i < 0 || rec.Steps[i].Channel == ChannelFlashCall && len(rec.Steps) == 1 {
		return fmt.Sprintf("the call failed before it rang (%s)", rec.Call.Reason)
	}
	return fmt.Sprintf("no step delivered a code (the last, %s, failed: %s)", rec.Steps[i].Channel, rec.Steps[i].Reason)
}
