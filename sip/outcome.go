package sip

import (
	"fmt"
	"time"
)

// State is where a call stands. The last three are outcomes: every call ends in exactly one of them.
type State string

// Call states, as the API shows them in call.state.
const (
	StateQueued   State = "queued"
	StateDialing  State = "dialing"
	StateRinging  State = "ringing"
	StateMissed   State = "missed"
	StateAnswered State = "answered"
	StateFailed   State = "failed"
)

// Reason says why a call failed (SPEC section 2).
type Reason string

// Failure reasons.
const (
	ReasonNone        Reason = ""
	ReasonBusy        Reason = "busy"
	ReasonRejected    Reason = "rejected"
	ReasonNotFound    Reason = "not_found"
	ReasonUnavailable Reason = "unavailable"
	ReasonAuthFailed  Reason = "auth_failed"
	ReasonClientError Reason = "client_error"
	ReasonTrunkError  Reason = "trunk_error"
	ReasonNoRing      Reason = "no_ring"
	// ReasonInterrupted marks a call the engine stopped (shutdown) or lost (crash) before it ended.
	ReasonInterrupted Reason = "interrupted"
)

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

// Result is the outcome of one flash call.
type Result struct {
	State   State  // StateMissed, StateAnswered or StateFailed
	SIPCode int    // the INVITE's final status code; 0 when none came
	Reason  Reason // why it failed; empty unless State is StateFailed
	// Rang reports whether a 180 or 183 came: the CLI reached the phone's call log.
	Rang bool
	// Responded reports whether the trunk sent any response to the INVITE.
	Responded bool
	// Provisional reports whether any 1xx came. Before one, a silent or failing (408, 5xx) trunk may be
	// replaced by another; after one, the call is never placed again.
	Provisional bool
	// EarlyMediaPackets counts the RTP packets that came from the address the callee's SDP named.
	EarlyMediaPackets uint64
	// Phrase is the final response's reason phrase and Reason header, when it failed: what the trunk said.
	Phrase    string
	CallID    string
	StartedAt time.Time // INVITE sent
	RingingAt time.Time // first 180/183; zero if none
	// CancelledAt is when the ring-then-cancel CANCEL went out; zero if none did.
	CancelledAt time.Time
	EndedAt     time.Time
}

func (r Result) String() string {
	return fmt.Sprintf("%s code=%d reason=%q rang=%t", r.State, r.SIPCode, r.Reason, r.Rang)
}
