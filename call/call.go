// Package call holds a flash call's vocabulary, shared by the dialer, the SIP user agent and the
// verification lifecycle: the Request to dial, the State a call stands in, the Reason a call failed, and
// its one Result. The SIP UA reports what happened on the wire (Facts); Outcome alone turns them into a
// State and a Reason, and Classify is the one place a SIP status code becomes a Reason (SPEC section 2).
// The package imports nothing of flashotp's.
package call

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
	// StateSent is a message (KindMessage) the trunk accepted with a 2xx.
	StateSent State = "sent"
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
	// ReasonNoAnswer is a voice call that rang but was not answered within its AnswerTimeout.
	ReasonNoAnswer Reason = "no_answer"
	// ReasonInterrupted marks a call the engine stopped (shutdown) or lost (crash) before it ended.
	ReasonInterrupted Reason = "interrupted"
)

// Kind is what a Request asks of the callee.
type Kind string

// Request kinds.
const (
	// KindFlash rings the callee and cancels: the caller ID is the code (SPEC section 2).
	KindFlash Kind = ""
	// KindVoice waits for the answer, plays Prompt over RTP (G.711) and hangs up.
	KindVoice Kind = "voice"
	// KindMessage sends Text in a SIP MESSAGE (RFC 3428), From the CLI (a number or an alphanumeric sender).
	KindMessage Kind = "message"
)

// Request is one call (or message) to place, as the dialer builds it for a trunk and the SIP UA dials it.
type Request struct {
	Kind      Kind
	Target    string // host:port requests are sent to: the trunk, or its outbound proxy
	Transport string // udp (default), tcp or tls
	Domain    string // Request-URI and To host; default Target's host
	// Proxy, when set, is the outbound proxy Target points at: it becomes a loose Route (Route: <sip:Proxy;lr>)
	// and Domain must name the trunk.
	Proxy string
	To    string // the dialed number as the trunk wants it: digits, optional '+', tech prefix (* and #)
	CLI   string // caller ID as the trunk wants it: digits, optional '+'
	// UserPhone adds ;user=phone to the Request-URI, To, From and identity URIs.
	UserPhone bool
	// CLIHeaders names where the CLI goes: "from", "pai" (P-Asserted-Identity), "rpid" (Remote-Party-ID).
	// Without "from" the From is anonymous. Empty: from and pai.
	CLIHeaders []string
	Privacy    bool // Privacy: id

	Username     string // digest user, unless AuthUsername is set
	AuthUsername string
	Password     string // digest password; empty: challenges end the call auth_failed
	Realm        string // answer only this realm's challenges; empty: any

	RingTime    time.Duration // how long to let it ring after the first 180/183
	DialTimeout time.Duration // longest wait for the first 180/183
	CancelGuard time.Duration // longest wait for the final answer after CANCEL

	// KindVoice: Prompt is the audio to play once answered, 8 kHz G.711 mu-law samples (sent as PCMU or
	// PCMA, whichever the answer's SDP chose); AnswerTimeout the longest wait for the answer after the
	// first provisional response; Repeat how many more times a DTMF 1 (RFC 4733) from the callee may
	// replay it.
	Prompt        []byte
	AnswerTimeout time.Duration
	Repeat        int
	// KindMessage: Text is the body, sent as text/plain;charset=UTF-8.
	Text string
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

	// KindVoice: AnsweredAt is when the 200 came; Played reports that the prompt was played to its end;
	// Codec is the payload the answer chose (PCMU or PCMA).
	AnsweredAt time.Time
	Played     bool
	Codec      string
}

func (r Result) String() string {
	return fmt.Sprintf("%s code=%d reason=%q rang=%t", r.State, r.SIPCode, r.Reason, r.Rang)
}
