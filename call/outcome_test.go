package call

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		code int
		want Reason
	}{
		{0, ReasonTrunkError},
		{300, ReasonClientError}, {302, ReasonClientError},
		{400, ReasonClientError},
		{401, ReasonAuthFailed}, {407, ReasonAuthFailed},
		{403, ReasonRejected}, {603, ReasonRejected},
		{404, ReasonNotFound}, {410, ReasonNotFound}, {484, ReasonNotFound},
		{408, ReasonUnavailable}, {480, ReasonUnavailable},
		{486, ReasonBusy}, {600, ReasonBusy},
		{487, ReasonClientError}, {488, ReasonClientError}, {499, ReasonClientError},
		{500, ReasonTrunkError}, {503, ReasonTrunkError}, {599, ReasonTrunkError},
		{604, ReasonTrunkError}, {606, ReasonTrunkError},
	}
	for _, tc := range tests {
		if got := Classify(tc.code); got != tc.want {
			t.Errorf("Classify(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

// TestOutcome has one row per way a call ends: what the UA saw on the wire, and the state and reason it is.
func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		facts  Facts
		state  State
		reason Reason
	}{
		{"refused: a number is not digits", Facts{Refused: true}, StateFailed, ReasonClientError},
		{"not sent, or no response at all", Facts{}, StateFailed, ReasonTrunkError},
		{"rang, cancelled, 487", Facts{Final: 487, Provisional: true, Rang: true, Cancelled: true, CancelAnswered: true}, StateMissed, ReasonNone},
		{"rang, caller gave up after the ring, 487", Facts{Final: 487, Provisional: true, Rang: true, Cancelled: true}, StateMissed, ReasonNone},
		{"200 OK", Facts{Final: 200, Provisional: true, Rang: true}, StateAnswered, ReasonNone},
		{"200 OK racing the CANCEL", Facts{Final: 200, Provisional: true, Rang: true, Cancelled: true, CancelAnswered: true}, StateAnswered, ReasonNone},
		{"486 after the ring", Facts{Final: 486, Provisional: true, Rang: true}, StateFailed, ReasonBusy},
		{"486 after the CANCEL", Facts{Final: 486, Provisional: true, Rang: true, Cancelled: true}, StateFailed, ReasonBusy},
		{"487 without a CANCEL", Facts{Final: 487, Provisional: true}, StateFailed, ReasonClientError},
		{"401 that auth cannot satisfy", Facts{Final: 401}, StateFailed, ReasonAuthFailed},
		{"503 before any 1xx", Facts{Final: 503}, StateFailed, ReasonTrunkError},
		{"no 1xx before dial_timeout", Facts{Stopped: StopNoRing}, StateFailed, ReasonNoRing},
		{"100 only, dial_timeout, CANCEL, 487", Facts{Final: 487, Provisional: true, Cancelled: true, CancelAnswered: true, Stopped: StopNoRing}, StateFailed, ReasonNoRing},
		{"100 only, dial_timeout, CANCEL, 180, 487", Facts{Final: 487, Provisional: true, Rang: true, Cancelled: true, Stopped: StopNoRing}, StateFailed, ReasonNoRing},
		{"100 only, dial_timeout, CANCEL answered, no 487", Facts{Provisional: true, Cancelled: true, CancelAnswered: true, Stopped: StopNoRing}, StateFailed, ReasonNoRing},
		{"100 only, dial_timeout, CANCEL unanswered", Facts{Provisional: true, Cancelled: true, Stopped: StopNoRing}, StateFailed, ReasonTrunkError},
		{"interrupted before any 1xx", Facts{Stopped: StopInterrupted}, StateFailed, ReasonInterrupted},
		{"100 only, interrupted, CANCEL, 487", Facts{Final: 487, Provisional: true, Cancelled: true, CancelAnswered: true, Stopped: StopInterrupted}, StateFailed, ReasonInterrupted},
		{"100 only, interrupted, CANCEL unanswered", Facts{Provisional: true, Cancelled: true, Stopped: StopInterrupted}, StateFailed, ReasonTrunkError},
		{"rang, CANCEL answered, 487 never came", Facts{Provisional: true, Rang: true, Cancelled: true, CancelAnswered: true}, StateMissed, ReasonNone},
		{"rang, CANCEL unanswered, nothing more", Facts{Provisional: true, Rang: true, Cancelled: true}, StateFailed, ReasonTrunkError},
		{"100, then the transaction ended", Facts{Provisional: true}, StateFailed, ReasonTrunkError},
		{"voice: rang, no answer in time, CANCEL, 487", Facts{Final: 487, Provisional: true, Rang: true, Cancelled: true, CancelAnswered: true, Stopped: StopNoAnswer}, StateFailed, ReasonNoAnswer},
		{"voice: rang, no answer in time, CANCEL answered, no 487", Facts{Provisional: true, Rang: true, Cancelled: true, CancelAnswered: true, Stopped: StopNoAnswer}, StateFailed, ReasonNoAnswer},
		{"voice: answered, prompt cut by shutdown", Facts{Final: 200, Provisional: true, Rang: true, Interrupted: true}, StateFailed, ReasonInterrupted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, reason := Outcome(tc.facts)
			if state != tc.state || reason != tc.reason {
				t.Errorf("Outcome(%+v) = %s %q, want %s %q", tc.facts, state, reason, tc.state, tc.reason)
			}
		})
	}
}
