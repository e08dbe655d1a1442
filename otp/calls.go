package otp

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"flashotp/call"
	"flashotp/fault"
)

// CallProgress records a call's dialing and ringing (dialer.Reporter).
//
// Progress is kept in memory and shown by Status; it is written, with its events, when the outcome is
// (CallEnded), so a call costs two durable writes, its verification and its outcome. A crash loses
// progress, never an outcome: the call is then recovered as interrupted.
func (s *Service) CallProgress(id, trunk string, state call.State, at time.Time) {
	v, _ := s.live.LoadOrStore(id, &liveCall{call: Call{State: call.StateQueued}})
	lc := v.(*liveCall)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	at = at.UTC()
	switch {
	case state == call.StateDialing && lc.call.StartedAt == nil:
		lc.call.StartedAt = &at
	case state == call.StateRinging && lc.call.StartedAt != nil:
		pdd := at.Sub(*lc.call.StartedAt).Milliseconds()
		lc.call.PostDialDelayMS = &pdd
	}
	// Reports may arrive out of order: the state only moves forward.
	if stateRank[state] > stateRank[lc.call.State] {
		lc.call.State, lc.call.Trunk = state, trunk
	}
}

// liveCall is the progress of a call in flight.
type liveCall struct {
	mu   sync.Mutex
	call Call
}

// withProgress shows the progress of v's call, if it is in flight.
func (s *Service) withProgress(v *Verification) {
	if isFinal(v.Call.State) {
		return
	}
	if l, ok := s.live.Load(v.ID); ok {
		lc := l.(*liveCall)
		lc.mu.Lock()
		v.Call = lc.call
		lc.mu.Unlock()
	}
}

// CallEnded records a call's outcome (dialer.Reporter), its events, its report counts and its webhook. A
// call that failed before it rang fails its verification: nothing reached the phone. A trunk's rejection
// goes to the number pool, which may quarantine the CLI.
func (s *Service) CallEnded(id, trunk, cli string, res call.Result) {
	// The dialer reports with no context and the Service has no lifetime of its own (Run's ctx ends before
	// the dialer drains): an outcome is recorded whoever waits for it.
	ctx := context.Background()
	if res.State == call.StateFailed && res.SIPCode >= 400 {
		s.numbers.Reject(ctx, cli, res.SIPCode, res.Phrase, res.Rang)
	}
	var pdd int64
	err := s.modify(ctx, id, func(rec *record) error {
		if isFinal(rec.Call.State) {
			return errUnchanged
		}
		pdd = applyOutcome(rec, trunk, res, res.State == call.StateFailed && !res.Rang)
		return nil
	}, func(tx Tx, rec *record) error { return s.recordOutcome(tx, rec, res, pdd) })
	if err != nil && !errors.Is(err, errUnchanged) {
		s.log.Error("record call outcome", "verification_id", id, "err", err)
	}
	s.live.Delete(id)
	s.log.Info("call_"+string(res.State), "verification_id", id, "trunk", trunk, "sip_code", res.SIPCode, "reason", res.Reason)
}

// applyOutcome puts the outcome res of rec's call into rec; failVerification fails a pending verification
// with it. It returns the post-dial delay in ms (0 if it never rang).
func applyOutcome(rec *record, trunk string, res call.Result, failVerification bool) (pdd int64) {
	c := &rec.Call
	c.State, c.SIPCode, c.Reason, c.EarlyMediaPackets = res.State, res.SIPCode, string(res.Reason), res.EarlyMediaPackets
	if trunk != "" {
		c.Trunk = trunk
	}
	if !res.StartedAt.IsZero() {
		started := res.StartedAt.UTC()
		c.StartedAt = &started
	}
	if res.Rang {
		pdd = res.RingingAt.Sub(res.StartedAt).Milliseconds()
		c.PostDialDelayMS = &pdd
	}
	ended := res.EndedAt.UTC()
	c.EndedAt = &ended
	if failVerification && rec.Status == StatusPending {
		rec.Status = StatusFailed
	}
	return pdd
}

// recordOutcome writes, beside rec (whose call applyOutcome ended), what the outcome means: the open-call
// index key goes, the call's events, its report counts and its webhook.
func (s *Service) recordOutcome(tx Tx, rec *record, res call.Result, pdd int64) error {
	c := &rec.Call
	ended := *c.EndedAt
	if err := tx.DeleteOpenCall(rec.ID); err != nil {
		return err
	}
	events := []Event{}
	if c.StartedAt != nil {
		events = append(events, Event{Type: EventCallDialing, At: *c.StartedAt, Trunk: c.Trunk, CLIPrefix: rec.CLIPrefix})
	}
	if res.Rang {
		events = append(events, Event{Type: EventCallRinging, At: res.RingingAt, Trunk: c.Trunk})
	}
	name := "call_" + string(res.State)
	events = append(events, Event{Type: name, At: ended, Trunk: c.Trunk, SIPCode: c.SIPCode, Reason: c.Reason})
	for _, e := range events {
		if err := s.event(tx, rec, e); err != nil {
			return err
		}
	}
	if err := s.count(tx, rec, c.Trunk, func(group string, k *counters) {
		if group == GroupTrunk {
			// A trunk's row counts a call once the trunk has taken it; the others counted it at the send.
			k.Sent++
		}
		switch res.State {
		case call.StateMissed:
			k.Missed++
		case call.StateAnswered:
			k.Answered++
		default:
			k.Failed++
		}
		if res.Rang {
			k.PDD[pddBucket(pdd)]++
		}
	}); err != nil {
		return err
	}
	return s.notify(tx, rec, name, ended)
}

// stateRank orders call states; outcomes rank above every progress state.
var stateRank = map[call.State]int{
	call.StateQueued: 0, call.StateDialing: 1, call.StateRinging: 2,
	call.StateMissed: 3, call.StateAnswered: 3, call.StateFailed: 3,
}

func isFinal(st call.State) bool {
	return st == call.StateMissed || st == call.StateAnswered || st == call.StateFailed
}

// Recover ends the calls a crash left unfinished: each becomes failed with reason interrupted. Their
// verifications stay pending: the INVITE may have gone out (the state is recorded after it leaves, so even
// a queued call may have), and the phone may show the CLI; the user can still enter the code, or the app
// resend. It returns how many calls it ended.
func (s *Service) Recover(ctx context.Context) (int, error) {
	var ids []string
	if err := s.db.View(ctx, func(tx Tx) error {
		ids = slices.Collect(tx.OpenCalls())
		return nil
	}); err != nil {
		return 0, err
	}
	now := s.now().UTC()
	n := 0
	for _, id := range ids {
		ended := false
		err := s.modify(ctx, id, func(rec *record) error {
			if isFinal(rec.Call.State) {
				return errUnchanged
			}
			res := call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted, EndedAt: now}
			if rec.Call.StartedAt != nil {
				res.StartedAt = *rec.Call.StartedAt
			}
			applyOutcome(rec, "", res, false)
			ended = true
			return nil
		}, func(tx Tx, rec *record) error {
			return s.recordOutcome(tx, rec, call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted}, 0)
		})
		if errors.Is(err, errUnchanged) || errors.Is(err, fault.NotFound) {
			// Already ended, or retention took it: only the index key is left.
			err = s.db.Update(ctx, func(tx Tx) error { return tx.DeleteOpenCall(id) })
		}
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}
