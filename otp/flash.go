package otp

import (
	"time"

	"flashotp/call"
)

// A verification that has only ever been flash calls, with no workflow, keeps the form records had before
// steps: its code in CodeMAC, its latest call in Call, no Steps stored. It is the path most sends take, and
// its record stays as small as it was. The API still shows it a step, made from its call (withFlashStep);
// a resend on another channel turns it into a verification with steps (upgrade).

// flashForm reports whether rec keeps a flash call's form: no steps stored.
func (rec *record) flashForm() bool { return len(rec.Steps) == 0 }

// public is rec as the API shows it.
func (rec *record) public() Verification { return withFlashStep(rec.Verification) }

// withFlashStep gives a verification of the flash-call form its one step, made from its latest call.
func withFlashStep(v Verification) Verification {
	if len(v.Steps) == 0 {
		v.Steps = []Step{flashStep(v.Call, v.CodeLength)}
	}
	return v
}

// flashStep is the step a flash call c stands for.
func flashStep(c Call, codeLength int) Step {
	st := Step{Channel: ChannelFlashCall, CodeLength: codeLength, Trunk: c.Trunk, SIPCode: c.SIPCode, StartedAt: c.StartedAt, EndedAt: c.EndedAt}
	switch c.State {
	case call.StateQueued, "":
		st.State = StepQueued
	case call.StateDialing, call.StateRinging:
		st.State = StepSending
	case call.StateMissed, call.StateAnswered:
		st.State = StepDelivered
	default:
		st.State, st.Reason = StepFailed, c.Reason
	}
	if c.PostDialDelayMS != nil && c.StartedAt != nil {
		// It rang: the caller ID reached the phone, whatever came after.
		at := c.StartedAt.Add(time.Duration(*c.PostDialDelayMS) * time.Millisecond)
		st.State, st.Reason, st.DeliveredAt = StepDelivered, "", &at
	} else if c.State == call.StateAnswered {
		st.DeliveredAt = c.EndedAt
	}
	return st
}

// upgrade turns a record of the flash-call form into one with steps: its call becomes its first step,
// with its code.
func (rec *record) upgrade() {
	if !rec.flashForm() {
		return
	}
	rec.Steps = []Step{flashStep(rec.Call, rec.CodeLength)}
	rec.Codes = [][]byte{rec.CodeMAC}
	rec.CodeMAC = nil
}

// nextStep is the index the next step of rec takes.
func (rec *record) nextStep() int { return max(len(rec.Steps), 1) }
