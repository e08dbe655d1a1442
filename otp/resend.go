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
	Channel        string `json:"channel"` // optional: the channel of the newest step
}

// Resend sends a new step for a pending (or undeliverable) verification, on req.Channel (default: the
// newest step's) with a new code; the old codes stop working at once, what is left of the workflow is
// dropped, and the verification gets a fresh TTL. Attempts are not reset: a resend does not buy more
// guesses. Refused within the app's resend_cooldown of the last send (unless that step failed to
// deliver), while the last call is still in flight, and after max_resends.
func (s *Service) Resend(ctx context.Context, req ResendRequest) (Verification, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Verification{}, err
	}
	if req.Channel == ChannelAuto {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "channel: a resend goes on one channel, not auto")
	}
	if req.Channel != "" {
		if _, err := s.plans(app, req.Channel); err != nil {
			return Verification{}, err // before the lookup: a body that is wrong whatever it names
		}
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
	channel := req.Channel
	if channel == "" {
		channel = ChannelFlashCall
		if i := cur.current(); i >= 0 {
			channel = cur.Steps[i].Channel
		}
	}
	plans, err := s.plans(app, channel)
	if err != nil {
		return Verification{}, err
	}
	to, err := cur.to(app, channel)
	if err != nil {
		return Verification{}, err
	}
	if err := s.guard(ctx, app, to, plans[0], cur.Reference); err != nil {
		return Verification{}, err
	}
	codeLength := 0
	if channel == ChannelFlashCall {
		codeLength = cur.CodeLength // a flash call's code keeps its length: the app reads it off the CLI
	}
	// A flash call after flash calls keeps the flash-call form: the new call takes the first step's place.
	keepForm := cur.flashForm() && channel == ChannelFlashCall
	i := cur.nextStep()
	if keepForm {
		i = 0
	}
	locale, _ := checkLocale(cur.Locale, app) // stored checked; empty: the app's
	d, err := s.prepare(ctx, app, cur, to, i, plans[0], codeLength, locale)
	if err != nil {
		return Verification{}, err
	}
	var rec *record
	var counted int // the entries of rec's tally before the resend
	err = s.db.Update(ctx, func(tx Tx) error {
		var err error
		if rec, err = getOwn(tx, app.ID, req.VerificationID); err != nil {
			return err
		}
		counted = len(rec.Tally)
		if !rec.SentAt.Equal(cur.SentAt) {
			e := fault.Errorf(fault.ResendTooSoon, "another resend of this verification came first")
			e.RetryAfter = time.Duration(app.ResendCooldown) + time.Second
			return e
		}
		if err := s.resendable(rec, time.Duration(app.ResendCooldown), app.MaxResends, now); err != nil {
			return err
		}
		if len(rec.Steps) != len(cur.Steps) {
			e := fault.Errorf(fault.ResendTooSoon, "the workflow started another step meanwhile")
			e.RetryAfter = time.Second
			return e
		}
		rec.Status, rec.Resends, rec.SentAt = StatusPending, rec.Resends+1, now
		// The old codes stop working; the rest of the workflow is dropped: the app chose the channel.
		if keepForm {
			rec.CodeMAC, rec.CLIPrefix, rec.CLIPattern, rec.Call = d.mac, d.prefix, d.pattern, Call{State: call.StateQueued}
		} else {
			rec.upgrade()
			for i := range rec.Codes {
				rec.Codes[i] = nil
			}
			if !rec.Next.IsZero() {
				if err := tx.DeleteExpiry(rec.ID, rec.Next); err != nil {
					return err
				}
			}
			rec.Plan = nil
			rec.add(d, now, s.cfg.MinCodeSpace)
		}
		rec.ExpiresAt = now.Add(time.Duration(app.TTL))
		rec.tally(tallyOp{Kind: tallySent, Channel: channel})
		rec.Node = s.node()
		if err := s.put(tx, rec); err != nil {
			return err
		}
		if err := tx.PutExpiry(rec.ID, rec.ExpiresAt); err != nil {
			return err
		}
		e := Event{Type: EventResend, At: now, CLIPrefix: d.prefix}
		if channel != ChannelFlashCall {
			e.Channel, e.Step = channel, rec.current()
		}
		return s.event(tx, rec, e)
	})
	if err != nil {
		return Verification{}, s.storeFailed("store resend", err)
	}
	s.addTally(rec, rec.Tally[counted:], 1)
	if err := s.submit(d); err != nil {
		// The old codes are already dead; the verification shows the step failed, and may be resent.
		s.CallEnded(d.req.ID, "", "", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, StartedAt: now, EndedAt: now})
		return Verification{}, err
	}
	s.act.resends.Add(1)
	s.log.Debug("resend", "verification_id", rec.ID, "resends", rec.Resends, "cli_prefix", rec.CLIPrefix)
	return rec.public(), nil
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
	if rec.inFlight() {
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
