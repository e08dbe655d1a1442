package otp

import (
	"context"
	"errors"
	"fmt"
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

// withProgress shows the progress of v's newest step's call, if it is in flight.
func (s *Service) withProgress(v *Verification) {
	i := len(v.Steps) - 1
	if i >= 0 && v.Steps[i].State.final() || i < 0 && isFinal(v.Call.State) {
		return
	}
	l, ok := s.live.Load(ref(v.ID, max(i, 0)))
	if !ok {
		return
	}
	lc := l.(*liveCall)
	lc.mu.Lock()
	c := lc.call
	lc.mu.Unlock()
	if i < 0 {
		v.Call = c
		return
	}
	// Steps are shared with the stored record: the shown one is a copy.
	v.Steps = slices.Clone(v.Steps)
	st := &v.Steps[i]
	if c.State != call.StateQueued {
		st.State, st.Trunk, st.StartedAt = StepSending, c.Trunk, c.StartedAt
	}
	if isCall(st.Channel) {
		v.Call = c
	}
}

// CallEnded records a call's outcome (dialer.Reporter), its events, its report counts and its webhook.
// r names the verification and its step (ref). A step that failed to deliver (a call that failed before
// it rang, a message refused) starts the workflow's next step; with none left and no code delivered, the
// verification fails. A trunk's rejection of a call goes to the number pool, which may quarantine the CLI.
// An outcome the store failed to take is written again every second (Run) until it is stored.
func (s *Service) CallEnded(r, trunk, cli string, res call.Result) {
	// The dialer reports with no context and the Service has no lifetime of its own (Run's ctx ends before
	// the dialer drains): an outcome is recorded whoever waits for it.
	ctx := context.Background()
	channel, err := s.recordEnded(ctx, endedCall{r, trunk, res})
	if fault.CodeOf(err) == fault.Unavailable {
		id, i := parseRef(r)
		s.log.Error("record call outcome; it is written again every second until the store takes it", "verification_id", id, "step", i, "err", err)
		s.unrecorded.add(endedCall{r, trunk, res})
	} else if err != nil && !errors.Is(err, errUnchanged) {
		id, i := parseRef(r)
		s.log.Error("record call outcome", "verification_id", id, "step", i, "err", err)
	}
	if res.State == call.StateFailed && res.SIPCode >= 400 && isCall(channel) {
		s.numbers.Reject(ctx, cli, res.SIPCode, res.Phrase, res.Rang)
	}
	s.live.Delete(r)
	id, i := parseRef(r)
	if !isCall(channel) {
		s.log.Debug("message_"+string(res.State), "verification_id", id, "step", i, "trunk", trunk, "sip_code", res.SIPCode, "reason", res.Reason)
	} else {
		s.log.Debug("call_"+string(res.State), "verification_id", id, "trunk", trunk, "sip_code", res.SIPCode, "reason", res.Reason)
	}
}

// endedCall is a call's outcome as the dialer reported it.
type endedCall struct {
	ref, trunk string
	res        call.Result
}

// unrecorded are the outcomes the store failed to take (it was out of reach): kept in memory and written
// again by Run, so that a call's record does not stay in flight while its engine lives on. An engine that
// dies with some is taken over, or ends them at its restart, as any call in flight.
type unrecorded struct {
	mu    sync.Mutex
	calls []endedCall
}

// maxUnrecorded bounds the outcomes kept for another try: past it the oldest go (their calls then end as
// interrupted at the engine's restart or take-over).
const maxUnrecorded = 100_000

func (u *unrecorded) add(c endedCall) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) >= maxUnrecorded {
		u.calls = u.calls[1:]
	}
	u.calls = append(u.calls, c)
}

func (u *unrecorded) take() []endedCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.calls
	u.calls = nil
	return out
}

// RecordUnrecorded writes again the outcomes the store failed to take; those it fails again wait for the
// next try. It returns how many are still waiting.
func (s *Service) RecordUnrecorded(ctx context.Context) (int, error) {
	var lastErr error
	for _, c := range s.unrecorded.take() {
		if _, err := s.recordEnded(ctx, c); fault.CodeOf(err) == fault.Unavailable {
			s.unrecorded.add(c)
			lastErr = err
		}
	}
	s.unrecorded.mu.Lock()
	defer s.unrecorded.mu.Unlock()
	if n := len(s.unrecorded.calls); n > 0 {
		return n, fmt.Errorf("%d call outcomes still not stored: %w", n, lastErr)
	}
	return 0, nil
}

// allRecorded reports whether every outcome reported is stored.
func (s *Service) allRecorded() bool {
	s.unrecorded.mu.Lock()
	defer s.unrecorded.mu.Unlock()
	return len(s.unrecorded.calls) == 0
}

// recordEnded writes c's outcome into its verification (CallEnded) and returns its step's channel; when
// that step failed to deliver, the workflow's next step starts.
func (s *Service) recordEnded(ctx context.Context, c endedCall) (channel string, err error) {
	r, trunk, res := c.ref, c.trunk, c.res
	id, i := parseRef(r)
	var (
		pdd   int64
		next  bool
		state StepState // the step's state once the outcome is applied
	)
	err = s.modify(ctx, id, func(rec *record) error {
		pdd, next = 0, false
		if i < 0 || i > rec.current() && !(i == 0 && rec.current() < 0) {
			return errNoStep
		}
		if rec.current() < 0 { // a record from before steps
			if isFinal(rec.Call.State) {
				return errUnchanged
			}
			channel = ChannelFlashCall
			pdd = applyOutcome(rec, trunk, res, res.State == call.StateFailed && !res.Rang)
			state = flashStep(rec.Call, rec.CodeLength).State
			rec.tally(outcomeOp(rec, i, res, pdd))
			return nil
		}
		st := rec.Steps[i]
		if st.State.final() {
			return errUnchanged
		}
		channel = st.Channel
		if isCall(channel) {
			pdd = applyOutcome(rec, trunk, res, false)
		}
		if applyStep(rec, i, trunk, res) {
			next = rec.stepFailed(i, s.now())
		}
		state = rec.Steps[i].State
		rec.tally(outcomeOp(rec, i, res, pdd))
		return nil
	}, func(tx Tx, rec *record) error {
		if next {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		return s.recordOutcome(tx, rec, i, res, pdd)
	})
	if err != nil {
		return channel, err
	}
	s.stepEnded(channel, state)
	s.act.outcome(string(res.State))
	if next {
		s.advance(ctx, id, i+1)
	}
	return channel, nil
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

// inFlight reports whether any of rec's steps has no outcome yet.
func (rec *record) inFlight() bool {
	for _, st := range rec.Steps {
		if !st.State.final() {
			return true
		}
	}
	return len(rec.Steps) == 0 && !isFinal(rec.Call.State)
}

// recordOutcome writes, beside rec (whose step i applyStep ended), what the outcome means: the step's
// events and its webhook.
func (s *Service) recordOutcome(tx Tx, rec *record, i int, res call.Result, pdd int64) error {
	channel, trunk, ended := ChannelFlashCall, rec.Call.Trunk, res.EndedAt.UTC()
	var sipCode int
	var reason string
	if i < len(rec.Steps) {
		st := rec.Steps[i]
		channel, trunk, sipCode, reason = st.Channel, st.Trunk, st.SIPCode, st.Reason
		if st.EndedAt != nil {
			ended = *st.EndedAt
		}
	} else if rec.Call.EndedAt != nil {
		sipCode, reason, ended = rec.Call.SIPCode, rec.Call.Reason, *rec.Call.EndedAt
	}
	step := func(e Event) Event {
		if channel != ChannelFlashCall || i > 0 {
			e.Channel, e.Step = channel, i
		}
		return e
	}
	var events []Event
	name := "call_" + string(res.State)
	switch {
	case !isCall(channel):
		name = EventMessageSent
		if res.State != call.StateSent {
			name = EventMessageFailed
		}
		events = append(events, step(Event{Type: name, At: ended, Trunk: trunk, SIPCode: sipCode, Reason: reason}))
	default:
		if !res.StartedAt.IsZero() {
			events = append(events, step(Event{Type: EventCallDialing, At: res.StartedAt, Trunk: trunk, CLIPrefix: rec.CLIPrefix}))
		} else if rec.Call.StartedAt != nil {
			events = append(events, step(Event{Type: EventCallDialing, At: *rec.Call.StartedAt, Trunk: trunk, CLIPrefix: rec.CLIPrefix}))
		}
		if res.Rang {
			events = append(events, step(Event{Type: EventCallRinging, At: res.RingingAt, Trunk: trunk}))
		}
		if channel == ChannelVoice && !res.AnsweredAt.IsZero() {
			events = append(events, step(Event{Type: EventVoiceAnswered, At: res.AnsweredAt, Trunk: trunk}))
		}
		if channel == ChannelVoice && res.Played {
			name = EventVoicePlayed
		}
		events = append(events, step(Event{Type: name, At: ended, Trunk: trunk, SIPCode: sipCode, Reason: reason}))
	}
	for _, e := range events {
		if err := s.event(tx, rec, e); err != nil {
			return err
		}
	}
	return s.notify(tx, rec, name, ended)
}

// outcomeOp is what the outcome res of rec's step i (applied) counts in the reports.
func outcomeOp(rec *record, i int, res call.Result, pdd int64) tallyOp {
	op := tallyOp{Kind: tallyOutcome, Channel: ChannelFlashCall, Trunk: rec.Call.Trunk, State: outcomeFailed, PDD: -1}
	if i < len(rec.Steps) {
		op.Channel, op.Trunk = rec.Steps[i].Channel, rec.Steps[i].Trunk
	}
	switch res.State {
	case call.StateMissed:
		op.State = outcomeMissed
	case call.StateAnswered:
		op.State = outcomeAnswered
	case call.StateSent:
		op.State = outcomeSent
	}
	if res.Rang {
		op.PDD = int(pdd)
	}
	return op
}

// stateRank orders call states; outcomes rank above every progress state.
var stateRank = map[call.State]int{
	call.StateQueued: 0, call.StateDialing: 1, call.StateRinging: 2,
	call.StateMissed: 3, call.StateAnswered: 3, call.StateFailed: 3,
}

func isFinal(st call.State) bool {
	return st == call.StateMissed || st == call.StateAnswered || st == call.StateFailed
}

// interrupted is the outcome Recover gives a call a crash left unfinished, as its reports count it.
var interrupted = call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted}

// Recover ends the calls a crash left unfinished: each step in flight fails with reason interrupted.
// Their verifications stay pending: the INVITE may have gone out (the state is recorded after it leaves,
// so even a queued call may have), and the phone may show the CLI; the user can still enter the code, or
// the app resend. It returns how many calls it ended.
//
// First, after an unclean stop, it counts the reports of the days it may have touched again (tally.go).
func (s *Service) Recover(ctx context.Context) (int, error) {
	if s.cfg.Nodes != nil {
		// Before anything else: the lease says this engine is alive, so that no other takes its calls over.
		if err := s.cfg.Nodes.Renew(ctx, s.cfg.Node, s.cfg.Lease); err != nil {
			return 0, fmt.Errorf("node lease: %w", err)
		}
	}
	days, from, err := s.recountReports(ctx)
	if err != nil {
		return 0, fmt.Errorf("count the reports again: %w", err)
	} else if len(days) > 0 {
		s.log.Warn("report counts of the days before an unclean stop counted again from the records", "days", days)
	}
	// The calls in flight: the records of the last changeWindow that say so (none after a clean stop), and
	// those an engine before issue 18 listed in its open-call index.
	var ids, listed []string
	if err := s.db.View(ctx, func(tx Tx) error {
		listed = slices.Collect(tx.OpenCalls())
		return nil
	}); err != nil {
		return 0, err
	}
	if !from.IsZero() {
		if ids, err = s.inFlight(ctx, from, s.owns); err != nil {
			return 0, err
		}
	}
	for _, id := range listed {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return s.interrupt(ctx, ids, listed)
}

// inFlight returns the verifications created since from whose call or message is in flight, of those
// mine keeps.
func (s *Service) inFlight(ctx context.Context, from time.Time, mine func(*record) bool) ([]string, error) {
	var ids []string
	err := s.db.View(ctx, func(tx Tx) error {
		for id, v := range tx.VerificationsFrom(bound("otp_", from)) {
			rec, err := decode(id, v)
			if err != nil {
				return err
			}
			if rec.inFlight() && mine(rec) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	return ids, err
}

// interrupt ends the calls and messages in flight of the verifications ids as failed, interrupted (an
// engine stopped without their outcome); listed are those of the open-call list of an engine before issue
// 18, taken off it. A workflow whose newest step it ends goes on: its next step is due at once, and the
// sweeper (on the engine that sweeps) starts it. It returns how many it ended.
func (s *Service) interrupt(ctx context.Context, ids, listed []string) (int, error) {
	now := s.now().UTC()
	n := 0
	for _, id := range ids {
		var ended []int
		var channels []string // of the steps ended, for the metrics
		var next bool         // the workflow's next step is due
		err := s.modify(ctx, id, func(rec *record) error {
			ended, channels, next = ended[:0], channels[:0], false
			res := call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted, EndedAt: now}
			if rec.Call.StartedAt != nil {
				res.StartedAt = *rec.Call.StartedAt
			}
			if rec.current() < 0 {
				if isFinal(rec.Call.State) {
					return errUnchanged
				}
				applyOutcome(rec, "", res, false)
				ended, channels = append(ended, 0), append(channels, ChannelFlashCall)
				rec.tally(outcomeOp(rec, 0, interrupted, 0))
				return nil
			}
			for i := range rec.Steps {
				if rec.Steps[i].State.final() {
					continue
				}
				if isCall(rec.Steps[i].Channel) {
					applyOutcome(rec, "", res, false)
				}
				// The code may have gone out: it stays.
				mac := rec.Codes[i]
				applyStep(rec, i, "", res)
				rec.Codes[i] = mac
				// The workflow goes on: its next step is due now, and the sweeper starts it.
				next = next || rec.stepFailed(i, now)
				ended, channels = append(ended, i), append(channels, rec.Steps[i].Channel)
				rec.tally(outcomeOp(rec, i, interrupted, 0))
			}
			if len(ended) == 0 {
				return errUnchanged
			}
			return nil
		}, func(tx Tx, rec *record) error {
			if next {
				if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
					return err
				}
			}
			for _, i := range ended {
				if err := s.recordOutcome(tx, rec, i, interrupted, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, errUnchanged) || errors.Is(err, fault.NotFound) {
			err = nil // already ended, or retention took it
		}
		if err == nil && slices.Contains(listed, id) {
			err = s.db.Update(ctx, func(tx Tx) error { return tx.DeleteOpenCall(id) })
		}
		if err != nil {
			return n, err
		}
		for _, ch := range channels {
			s.stepEnded(ch, StepFailed)
		}
		n += len(ended)
	}
	return n, nil
}
