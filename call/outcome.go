package call

// Classify maps a final SIP status code of an INVITE to its failure reason. It is the one place that
// does; code 0 stands for a transport error or no response.
func Classify(code int) Reason {
	switch code {
	case 486, 600:
		return ReasonBusy
	case 603, 403:
		return ReasonRejected
	case 404, 484, 410:
		return ReasonNotFound
	case 480, 408:
		return ReasonUnavailable
	case 401, 407:
		return ReasonAuthFailed
	}
	switch {
	case code >= 300 && code < 500:
		return ReasonClientError
	default: // 5xx, 6xx not named above, 0
		return ReasonTrunkError
	}
}

// Stop says why the UA ended a call itself, before a final response came.
type Stop uint8

// Why the UA stopped a call.
const (
	// StopNone: it did not, or it sent CANCEL as a flash call does once the phone rang (ring_time ran out,
	// or the caller gave up after the ring).
	StopNone Stop = iota
	// StopNoRing: no 180/183 came within the dial timeout.
	StopNoRing
	// StopInterrupted: the caller gave up (shutdown) before the phone rang.
	StopInterrupted
	// StopNoAnswer: a voice call rang, but no answer came within its AnswerTimeout.
	StopNoAnswer
)

// Facts is what happened on the wire to one call's INVITE, as the SIP UA saw it: what Outcome needs.
type Facts struct {
	// Final is the status code of the final response that ended the INVITE; 0 when none did.
	Final int
	// Refused reports whether the UA refused to send the INVITE (a number that is not digits).
	Refused bool
	// Provisional reports whether any 1xx came; Rang whether a 180 or 183 did.
	Provisional, Rang bool
	// Cancelled reports whether the UA sent (or tried to send) CANCEL; CancelAnswered whether a 200
	// answered it.
	Cancelled, CancelAnswered bool
	// Stopped says why the UA stopped the call, the first time it did.
	Stopped Stop
	// Interrupted reports whether the caller gave up (shutdown) while an answered voice call played its
	// prompt: the UA hung up at once.
	Interrupted bool
}

// reason is the failure reason of a call the UA stopped for s; ReasonNone for StopNone.
func (s Stop) reason() Reason {
	switch s {
	case StopNoRing:
		return ReasonNoRing
	case StopInterrupted:
		return ReasonInterrupted
	case StopNoAnswer:
		return ReasonNoAnswer
	}
	return ReasonNone
}

// Outcome names the State a call ended in and, when it failed, the Reason (SPEC section 2). It is the one
// place that does: the UA reports Facts, Outcome classifies them.
func Outcome(f Facts) (State, Reason) {
	switch {
	case f.Refused:
		return StateFailed, ReasonClientError
	case f.Final >= 200 && f.Final < 300 && f.Interrupted:
		return StateFailed, ReasonInterrupted
	case f.Final >= 200 && f.Final < 300:
		return StateAnswered, ReasonNone
	case f.Final == 487 && f.Cancelled:
		if r := f.Stopped.reason(); r != ReasonNone {
			return StateFailed, r
		}
		return StateMissed, ReasonNone // the flash call: rang, cancelled, missed
	case f.Final != 0:
		return StateFailed, Classify(f.Final)
	}
	// No final response: no answer at all, a transport error, or nothing after the CANCEL.
	switch {
	case f.Stopped != StopNone && !f.CancelAnswered && f.Provisional:
		// It had answered (a 1xx), then nothing, not even to the CANCEL: the trunk went away mid-call.
		return StateFailed, ReasonTrunkError
	case f.Stopped != StopNone:
		return StateFailed, f.Stopped.reason()
	case f.Rang && f.CancelAnswered:
		// The trunk confirmed the CANCEL but never sent the 487 (an RFC 2543 peer): the call was missed.
		return StateMissed, ReasonNone
	}
	return StateFailed, ReasonTrunkError
}
