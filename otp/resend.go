package otp

import (
	"context"
	"fmt"
	"time"

	"flashotp/call"
	"flashotp/fault"
)

// ResendRequest asks for a new call, with a new code, for a verification, as POST /otp/resend's body
// gives it.
type ResendRequest struct {
	AppID          string `json:"appid"`
	VerificationID string `json:"verification_id"`
	Channel        string `json:"channel"` // optional: flashcall
}

// Resend places a new flash call for a pending (or undeliverable) verification, with a new CLI and so a
// new code; the old code stops working at once and the verification gets a fresh TTL. Attempts are not
// reset: a resend does not buy more guesses. Refused within the app's resend_cooldown of the last send
// (unless that call failed before it rang), while the last call is still in flight, and after max_resends.
func (s *Service) Resend(ctx context.Context, req ResendRequest) (Verification, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Verification{}, err
	}
	if req.Channel != "" && req.Channel != ChannelFlashCall {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "channel: must be %q", ChannelFlashCall)
	}
	var cur *record
	if err := s.db.View(ctx, func(tx Tx) error {
		cur, err = getOwn(tx, app.ID, req.VerificationID)
		return err
	}); err != nil {
		return Verification{}, err
	}
	now := s.now().UTC()
	if err := s.resendable(cur, time.Duration(app.ResendCooldown), app.MaxResends, now); err != nil {
		return Verification{}, err
	}
	// The app's guards as they are now: its settings may have changed since the first send.
	to, err := s.guard(ctx, app, cur.Recipient, cur.Reference)
	if err != nil {
		return Verification{}, err
	}
	picked, err := s.pick(ctx, app.ID, cur.From, to, cur.CodeLength)
	if err != nil {
		return Verification{}, err
	}
	var rec *record
	err = s.db.Update(ctx, func(tx Tx) error {
		var err error
		if rec, err = getOwn(tx, app.ID, req.VerificationID); err != nil {
			return err
		}
		if !rec.SentAt.Equal(cur.SentAt) {
			e := fault.Errorf(fault.ResendTooSoon, "another resend of this verification came first")
			e.RetryAfter = time.Duration(app.ResendCooldown) + time.Second
			return e
		}
		if err := s.resendable(rec, time.Duration(app.ResendCooldown), app.MaxResends, now); err != nil {
			return err
		}
		rec.Status, rec.Resends, rec.SentAt = StatusPending, rec.Resends+1, now
		rec.CLIPrefix, rec.CLIPattern, rec.CodeMAC = picked.Prefix, picked.Pattern, s.mac(rec.ID, picked.Code)
		rec.ExpiresAt = now.Add(time.Duration(app.TTL))
		rec.Call = Call{State: call.StateQueued}
		if err := s.put(tx, rec); err != nil {
			return err
		}
		if err := tx.PutExpiry(rec.ID, rec.ExpiresAt); err != nil {
			return err
		}
		if err := tx.PutOpenCall(rec.ID); err != nil {
			return err
		}
		if err := s.event(tx, rec, Event{Type: EventResend, At: now, CLIPrefix: rec.CLIPrefix}); err != nil {
			return err
		}
		return s.count(tx, rec, "", func(_ string, c *counters) { c.Sent++ })
	})
	if err != nil {
		return Verification{}, s.storeFailed("store resend", err)
	}
	if err := s.submit(rec, picked); err != nil {
		// The old code is already dead; the verification shows the call failed, and may be resent.
		s.CallEnded(rec.ID, "", "", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, StartedAt: now, EndedAt: now})
		return Verification{}, err
	}
	s.log.Info("resend", "verification_id", rec.ID, "resends", rec.Resends, "cli_prefix", rec.CLIPrefix)
	return rec.Verification, nil
}

// undelivered reports whether rec's last call failed before it rang (SPEC section 2.7): nothing reached
// the phone, so the resend cooldown, which spares the user calls in a row, has nothing to spare.
// max_resends and the send limits still bound the calls.
func (rec *record) undelivered() bool { return rec.Status == StatusFailed && !rec.attemptsUsed() }

// resendable says why rec may not be resent now, if it may not.
func (s *Service) resendable(rec *record, cooldown time.Duration, maxResends int, now time.Time) error {
	switch {
	case rec.Status == StatusApproved:
		return fault.Errorf(fault.AlreadyVerified, "code already used")
	case rec.attemptsUsed(): // failed for good, also past its expires_at
		return fault.Errorf(fault.MaxAttempts, "all %d attempts used; send a new verification", rec.MaxAttempts)
	case rec.Status == StatusExpired || (rec.Status == StatusPending || rec.Status == StatusFailed) && !now.Before(rec.ExpiresAt):
		return fault.Errorf(fault.Expired, "verification expired at %s; send a new one", rec.ExpiresAt.Format(time.RFC3339))
	case rec.Status == StatusCanceled:
		return fault.Errorf(fault.NotFound, "verification is %s", rec.Status)
	case rec.Resends >= maxResends:
		e := fault.Errorf(fault.RateLimited, "max_resends (%d) used; send a new verification", maxResends)
		e.RetryAfter, e.Scope = max(rec.ExpiresAt.Sub(now), time.Second), "max_resends"
		return e
	case now.Before(rec.SentAt.Add(cooldown)) && !rec.undelivered():
		e := fault.Errorf(fault.ResendTooSoon, "resend_cooldown is %s", cooldown)
		e.RetryAfter = rec.SentAt.Add(cooldown).Sub(now)
		return e
	}
	if !isFinal(rec.Call.State) {
		e := fault.Errorf(fault.ResendTooSoon, "the last call is still %s", s.callState(rec))
		e.RetryAfter = time.Second
		return e
	}
	return nil
}

func (s *Service) callState(rec *record) string {
	v := rec.Verification
	s.withProgress(&v)
	return fmt.Sprint(v.Call.State)
}
