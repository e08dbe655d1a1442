package otp

import (
	"context"
	"errors"
	"strings"
	"time"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/stir"
)

// Channel inbound (SPEC section 8): the send hands out dial_number, a number of the app's inbound_pool,
// and sends nothing; the user calls that number from the phone being verified; the engine rejects the call
// unanswered (the trunk's inbound_reject, 603 by default) and a call from the recipient's number to the
// verification's dial_number within its lifetime approves it. The caller ID is the proof, as far as the
// trunk that delivered it is trusted (its inbound_trust headers).

// Events of an inbound call.
const (
	EventInboundMatched = "inbound_call_matched"
)

// InboundCall is a call that came in from an inbound trunk, as the SIP layer read it.
type InboundCall struct {
	Trunk  string
	Called string // the number called, as the trunk sent it (the Request-URI's user part)
	Caller string // the caller ID from the first trusted header that had one; "" when withheld
	// Identity is the call's STIR/SHAKEN Identity header, "" without one. With Config.Identity set, it is
	// verified: a call whose PASSporT does not verify approves nothing.
	Identity string
}

// Results of an inbound call (the label of flashotp_inbound_calls_total).
const (
	InboundMatched  = "matched"  // it approved a verification
	InboundWithheld = "withheld" // no caller ID, or one that is no phone number
	InboundNoMatch  = "no_match" // no pending inbound verification of the caller for the number called
	// InboundIdentity: the call's PASSporT did not verify, or its attestation is below what the app asks.
	InboundIdentity = "identity_refused"
)

// inboundSearch bounds how many of a caller's verifications an inbound call looks through, newest first.
const inboundSearch = 20

// InboundCallReceived matches c against the pending inbound verifications: a verification of an app whose
// inbound_pool has the number called, for the caller's number, with that dial_number, before it expires.
// The match approves it (event inbound_call_matched and its webhook, then approved). It returns the result
// (InboundMatched, InboundWithheld, InboundNoMatch or InboundIdentity; "error" when the store failed),
// counted in the metrics, and the verification approved, if any; the call is rejected whatever the result
// (the SIP layer's part).
func (s *Service) InboundCallReceived(ctx context.Context, c InboundCall) (result, id string, err error) {
	result, id, err = s.inboundCall(ctx, c)
	if err != nil {
		result = "error"
	}
	s.cfg.Metrics.InboundCall(c.Trunk, result)
	return result, id, err
}

func (s *Service) inboundCall(ctx context.Context, c InboundCall) (result, id string, err error) {
	var attest string
	var identityErr error
	if c.Identity != "" && s.cfg.Identity != nil {
		var r stir.Result
		r, identityErr = s.cfg.Identity.Verify(ctx, c.Identity, c.Caller, c.Called)
		attest = r.Attest
	}
	called, err1 := e164Of(c.Called)
	caller, err2 := e164Of(c.Caller)
	switch {
	case err1 != nil:
		s.log.Debug("inbound call to no phone number", "trunk", c.Trunk, "called", c.Called)
		return InboundNoMatch, "", nil
	case c.Caller == "" || err2 != nil:
		s.log.Debug("inbound call refused: no caller ID", "trunk", c.Trunk, "called", called)
		return InboundWithheld, "", nil
	case identityErr != nil:
		s.log.Info("inbound call refused: its PASSporT does not verify", "trunk", c.Trunk, "called", called, "err", identityErr)
		return InboundIdentity, "", nil
	}
	attestTooLow := false
	now := s.now().UTC()
	for _, app := range s.cfg.Apps.List() {
		if !app.Allows(ChannelInbound) || app.InboundPool == "" || !s.numbers.HasNumber(app.InboundPool, called) {
			continue
		}
		if !attested(attest, app.InboundAttestation) {
			attestTooLow = true
			continue
		}
		id, err := s.pendingInbound(ctx, app, caller, called, now)
		if err != nil {
			return "", "", err
		}
		if id == "" {
			continue
		}
		err = s.approveInbound(ctx, id, c.Trunk, attest, called, now)
		switch {
		case errors.Is(err, errUnchanged):
			continue // approved, expired or ended meanwhile
		case err != nil:
			return "", "", s.storeFailed("record inbound call", err)
		}
		s.act.approved.Add(1)
		s.log.Debug(EventInboundMatched, "verification_id", id, "trunk", c.Trunk)
		return InboundMatched, id, nil
	}
	if attestTooLow {
		s.log.Info("inbound call refused: its attestation is below the app's inbound_attestation", "trunk", c.Trunk, "called", called, "attestation", attest)
		return InboundIdentity, "", nil
	}
	s.log.Debug("inbound call refused: no pending verification of the caller for this number", "trunk", c.Trunk, "called", called)
	return InboundNoMatch, "", nil
}

// attested reports whether a call's attestation (A best, "" none) is at least want ("" asks for none).
func attested(got, want string) bool {
	return want == "" || got != "" && got <= want
}

// e164Of reads a number as a trunk sends it in a URI's user part (+E.164, or E.164 digits without '+',
// visual separators allowed) as E.164 with '+'.
func e164Of(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fault.Errorf(fault.InvalidRecipient, "no number")
	}
	if !strings.HasPrefix(s, "+") {
		s = "+" + strings.TrimPrefix(s, "00")
	}
	return recipientKey(s)
}

// pendingInbound returns the newest pending inbound verification of app for caller whose dial_number is
// called, or "".
func (s *Service) pendingInbound(ctx context.Context, app apps.App, caller, called string, now time.Time) (string, error) {
	var id string
	err := s.db.View(ctx, func(tx Tx) error {
		n := 0
		for vid, v := range tx.ByRecipient(app.ID, caller, "") {
			if n++; n > inboundSearch {
				return nil
			}
			rec, err := decode(vid, v)
			if err != nil {
				return err
			}
			if rec.waitsInbound(called, now) {
				id = vid
				return nil
			}
		}
		return nil
	})
	return id, err
}

// waitsInbound reports whether rec waits, at now, for a call to called.
func (rec *record) waitsInbound(called string, now time.Time) bool {
	i := rec.current()
	return rec.Status == StatusPending && now.Before(rec.ExpiresAt) && i >= 0 &&
		rec.Steps[i].Channel == ChannelInbound && rec.DialNumber == called
}

// approveInbound approves verification id by the call just matched, from trunk, attested attest ("": not).
func (s *Service) approveInbound(ctx context.Context, id, trunk, attest, called string, now time.Time) error {
	var before Status
	return s.modify(ctx, id, func(rec *record) error {
		if !rec.waitsInbound(called, now) {
			return errUnchanged
		}
		i := rec.current()
		before = rec.Status
		st := &rec.Steps[i]
		st.State, st.DeliveredAt, st.Trunk, st.Attestation = StepDelivered, &now, trunk, attest
		rec.Status, rec.Approved = StatusApproved, i
		rec.tally(tallyOp{Kind: tallyApproved, Channel: ChannelInbound, Trunk: trunk})
		return nil
	}, func(tx Tx, rec *record) error {
		e := Event{Type: EventInboundMatched, At: now, Channel: ChannelInbound, Step: rec.Approved, Trunk: trunk}
		if attest != "" {
			e.Result = "attestation " + attest
		}
		if err := s.event(tx, rec, e); err != nil {
			return err
		}
		if err := s.notify(tx, rec, EventInboundMatched, now); err != nil {
			return err
		}
		return s.transitions(tx, rec, before, now)
	})
}
