package otp

import (
	"context"
	"errors"
	"time"

	"flashotp/call"
	"flashotp/dialer"
)

// advance starts step i of verification id, the first of its plan, if the verification still waits for
// it: pending, before its expiry, with step i-1 its newest. It runs after the step before failed to
// deliver, or when its timeout passed (SweepExpired). A step that cannot start fails at once and the
// workflow goes on.
func (s *Service) advance(ctx context.Context, id string, i int) {
	var cur *record
	err := s.db.View(ctx, func(tx Tx) (err error) {
		cur, err = get(tx, id)
		return err
	})
	if err != nil || !cur.waitsFor(i, s.now()) {
		return
	}
	app, ok := s.cfg.Apps.Get(cur.AppID)
	if !ok {
		s.log.Warn("workflow stopped: the app is gone", "verification_id", id, "appid", cur.AppID)
		return
	}
	to := Recipient{E164: cur.phone(), Country: cur.Country, Email: cur.Email}
	var d delivery
	slot, perr := s.allowStep(app, cur.Plan[0].Channel)
	reason := "rate_limited"
	if perr == nil {
		d, perr = s.prepare(ctx, app, cur, to, i, cur.Plan[0], 0, cur.Locale)
		reason = string(call.ReasonUnavailable)
	}
	now := s.now().UTC()
	if perr != nil {
		// Nothing can go out on this channel now (its rate limit, no caller ID left, a prompt missing): it
		// fails as a call that never left, and the next step goes.
		s.log.Warn("workflow step not started", "verification_id", id, "channel", cur.Plan[0].Channel, "err", perr)
		d.step = Step{Channel: cur.Plan[0].Channel, State: StepFailed, Reason: reason, EndedAt: &now}
		d.mac, d.msg, d.req = nil, nil, dialer.Request{ID: ref(id, i), Kind: call.KindMessage} // no call: Call stays
	}
	next := false
	err = s.modify(ctx, id, func(rec *record) error {
		next = false
		if !rec.waitsFor(i, now) {
			return errUnchanged
		}
		rec.Plan = rec.Plan[1:]
		rec.add(d, now, s.cfg.MinCodeSpace) // a step that did not start leaves the call as it was: no Kind of a call
		// A delivery more on this channel (the verification was counted at its send), or one that never went.
		op := tallyOp{Kind: tallyStep, Channel: d.step.Channel}
		if perr != nil {
			next = rec.stepFailed(i, now)
			op.Kind = tallyStepFailed
		}
		rec.tally(op)
		rec.Node = s.node()
		return nil
	}, func(tx Tx, rec *record) error {
		if !rec.Next.IsZero() {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		e := Event{Type: EventStepStarted, At: now, Channel: d.step.Channel, Step: i, CLIPrefix: d.prefix, Reason: d.step.Reason}
		if err := s.event(tx, rec, e); err != nil {
			return err
		}
		return s.notify(tx, rec, EventStepStarted, now)
	})
	if err != nil || perr != nil {
		slot.Release() // not started here (another report started it), or not at all: its place goes back
	}
	if err != nil {
		if !errors.Is(err, errUnchanged) {
			s.log.Error("start workflow step", "verification_id", id, "step", i, "err", err)
		}
		return
	}
	s.act.steps.Add(1)
	s.log.Debug("step_started", "verification_id", id, "step", i, "channel", d.step.Channel)
	if perr != nil {
		s.stepEnded(d.step.Channel, StepFailed)
		if next {
			s.advance(ctx, id, i+1)
		}
		return
	}
	if err := s.submit(d); err != nil {
		now := s.now()
		s.CallEnded(d.req.ID, "", "", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, StartedAt: now, EndedAt: now})
	}
}

// waitsFor reports whether rec waits for its step i to start at now.
func (rec *record) waitsFor(i int, now time.Time) bool {
	return rec.Status == StatusPending && len(rec.Plan) > 0 && rec.current() == i-1 && now.Before(rec.ExpiresAt)
}

// stepFailed decides, at now, what the failure of rec's step i to deliver means: the workflow's next step
// when i is the newest and one is left (due now: rec.Next is now, and its index key makes the sweeper start
// it should the engine stop before advance does), or, when nothing is left to send or in flight and no code
// can approve, a failed verification. It reports whether the next step is due.
func (rec *record) stepFailed(i int, now time.Time) (next bool) {
	if rec.Status != StatusPending {
		return false
	}
	if i == rec.current() && len(rec.Plan) > 0 && now.Before(rec.ExpiresAt) {
		rec.Next = now.UTC()
		return true
	}
	if len(rec.Plan) == 0 && !rec.inFlight() && !rec.live() {
		rec.Status = StatusFailed
	}
	return false
}
