package otp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/message"
	"flashotp/sms"
	"flashotp/templates"
)

// Channels a verification's steps deliver over (SPEC section 8). ChannelAuto runs the app's workflow.
const (
	ChannelFlashCall = apps.ChannelFlashCall
	ChannelVoice     = apps.ChannelVoice
	ChannelSMS       = apps.ChannelSMS
	ChannelWhatsApp  = apps.ChannelWhatsApp
	ChannelEmail     = apps.ChannelEmail
	ChannelInbound   = apps.ChannelInbound
	ChannelAuto      = apps.ChannelAuto
)

// StepState is where one delivery stands (SPEC section 8).
type StepState string

// Step states. The last three are final.
const (
	StepQueued    StepState = "queued"
	StepSending   StepState = "sending"
	StepSent      StepState = "sent"      // handed to the trunk
	StepDelivered StepState = "delivered" // rang, or answered and played
	StepFailed    StepState = "failed"
	StepCanceled  StepState = "canceled"
)

// ReasonHungUp is a voice call the callee hung up before the prompt's end.
const ReasonHungUp = "hung_up"

// Step is one delivery of a verification over one channel, as the API shows it. Its code is kept only as
// a MAC, in the record beside it.
type Step struct {
	Channel    string    `json:"channel"`
	State      StepState `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Via        string    `json:"via,omitempty"` // sms: how it went out (trunk)
	Trunk      string    `json:"trunk,omitempty"`
	SIPCode    int       `json:"sip_code,omitempty"`
	CodeLength int       `json:"code_length"`
	Locale     string    `json:"locale,omitempty"`   // voice and sms: the prompts' or template's locale
	Encoding   string    `json:"encoding,omitempty"` // sms: gsm7 or ucs2
	Segments   int       `json:"segments,omitempty"` // sms: parts of a concatenated message
	// Attestation is the STIR/SHAKEN attestation (A, B, C) of the call that delivered an inbound step.
	Attestation string `json:"attestation,omitempty"`
	// Timeout is how long the workflow waits for an approval before the next step; 0: no next step.
	Timeout     Duration   `json:"timeout,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
}

// Duration is a time.Duration that JSON writes as Go's text ("20s").
type Duration = apps.Duration

// stepEnded counts a step that reached state on channel (flashotp_steps_ended_total), once it is stored.
func (s *Service) stepEnded(channel string, state StepState) {
	if state.final() {
		s.cfg.Metrics.StepEnded(channel, string(state))
	}
}

func (st StepState) final() bool {
	return st == StepDelivered || st == StepFailed || st == StepCanceled || st == StepSent
}

// plan is one step of a verification's workflow that has not started yet.
type plan struct {
	Channel string   `json:"channel"`
	Timeout Duration `json:"timeout,omitempty"`
}

// ref names step i of verification id to the dialer, which passes it back in its reports: the first
// step's is the verification's ID, as before steps.
func ref(id string, i int) string {
	if i == 0 {
		return id
	}
	return id + "~" + strconv.Itoa(i)
}

// parseRef undoes ref.
func parseRef(r string) (id string, step int) {
	id, n, ok := strings.Cut(r, "~")
	if !ok {
		return r, 0
	}
	step, err := strconv.Atoi(n)
	if err != nil || step < 0 {
		return r, -1
	}
	return id, step
}

// plans resolves a send's (or resend's) channel for app into the steps to run: one, or the app's
// workflow for auto.
func (s *Service) plans(app apps.App, channel string) ([]plan, error) {
	var steps []plan
	switch {
	case channel == ChannelAuto:
		if len(app.Workflow) == 0 {
			return nil, fault.Errorf(fault.InvalidRequest, "channel: auto runs the app's workflow, and app %q has none", app.ID)
		}
		for _, w := range app.Workflow {
			steps = append(steps, plan{Channel: w.Channel, Timeout: w.Timeout})
		}
	case !slices.Contains(apps.Channels, channel):
		return nil, fault.Errorf(fault.InvalidRequest, "channel: want one of %s, %s", strings.Join(apps.Channels, ", "), ChannelAuto)
	case !app.Allows(channel):
		return nil, fault.Errorf(fault.InvalidRequest, "channel: app %q may not use %s (its channels: %s)", app.ID, channel, strings.Join(app.Channels, ", "))
	default:
		steps = []plan{{Channel: channel}}
	}
	for _, p := range steps {
		switch {
		case p.Channel == ChannelVoice && s.cfg.Voice.Prompts == nil:
			return nil, fault.Errorf(fault.InvalidRequest, "channel: voice has no prompts on this engine")
		case !s.overTrunk(p.Channel) && p.Channel != ChannelFlashCall && p.Channel != ChannelVoice && p.Channel != ChannelInbound && s.cfg.Senders[p.Channel] == nil:
			return nil, fault.Errorf(fault.InvalidRequest, "channel: %s is not configured on this engine", p.Channel)
		}
	}
	return steps, nil
}

// overTrunk reports whether channel's steps go out over the SIP trunk, through the dialer: flash and voice
// calls, and SMS as SIP MESSAGE.
func (s *Service) overTrunk(channel string) bool {
	switch channel {
	case ChannelFlashCall, ChannelVoice:
		return true
	case ChannelSMS:
		return s.cfg.SMS.Via == "" || s.cfg.SMS.Via == sms.ViaTrunk
	}
	return false
}

// isCall reports whether channel's steps are calls: they have a call (Verification.Call).
func isCall(channel string) bool { return channel == ChannelFlashCall || channel == ChannelVoice }

// delivery is a step ready to go: what is stored (its Step and code MAC) and what is submitted.
type delivery struct {
	step Step
	mac  []byte
	req  dialer.Request
	// picked is the flash call's CLI: its prefix and pattern go into the verification.
	prefix, pattern string
	// msg, when not nil, goes to its channel's Sender instead of the dialer.
	msg *message.Message
	// dial is an inbound step's number to call: the verification's dial_number once the step is added.
	dial string
}

// prepare draws the code of step i of rec over p.Channel and builds what goes out: nothing is stored or
// sent. codeLength is the send's own (0: the app's for the channel).
func (s *Service) prepare(ctx context.Context, app apps.App, rec *record, to Recipient, i int, p plan, codeLength int, locale string) (delivery, error) {
	if codeLength == 0 {
		codeLength = app.CodeLengthFor(p.Channel)
	}
	d := delivery{step: Step{Channel: p.Channel, State: StepQueued, CodeLength: codeLength, Timeout: p.Timeout}}
	d.req = dialer.Request{App: app.ID, ID: ref(rec.ID, i), To: to.E164}
	if p.Channel == ChannelInbound {
		// Nothing goes out: the user calls. The step is sent once the number is handed out.
		number, err := s.numbers.DialNumber(app.InboundPool, to.Country)
		if err != nil {
			return d, err
		}
		d.dial, d.step.State, d.step.CodeLength = number, StepSent, 0
		d.req.Kind = call.KindMessage // no call: Call stays as it is
		return d, nil
	}
	if p.Channel == ChannelFlashCall {
		picked, err := s.pick(ctx, app.ID, rec.From, to, codeLength)
		if err != nil {
			return d, err
		}
		d.mac, d.prefix, d.pattern = s.mac(rec.ID, picked.Code), picked.Prefix, picked.Pattern
		d.req.CLI, d.req.Trunks = picked.CLI, picked.Trunks
		return d, nil
	}
	if codeLength < apps.MinRandomCodeLength || codeLength > apps.MaxRandomCodeLength {
		return d, fault.Errorf(fault.InvalidRequest, "code_length: %s codes have %d to %d digits", p.Channel, apps.MinRandomCodeLength, apps.MaxRandomCodeLength)
	}
	code, err := randomCode(codeLength)
	if err != nil {
		return d, err
	}
	d.mac = s.mac(rec.ID, code)
	var callerID string
	switch p.Channel {
	case ChannelVoice:
		prompt, err := s.cfg.Voice.Prompts.Prompt(locale, code)
		if err != nil {
			return d, fmt.Errorf("voice prompt: %w", err)
		}
		d.step.Locale = s.cfg.Voice.Prompts.Match(locale)
		d.req.Kind, d.req.Prompt = call.KindVoice, prompt
		d.req.AnswerTimeout, d.req.Repeat = s.cfg.Voice.AnswerTimeout, s.cfg.Voice.Repeat
		callerID = s.cfg.Voice.CallerID
	case ChannelSMS:
		text, used, err := templates.Render(app.Templates, p.Channel, locale, app.Locale,
			templates.Data{Code: code, App: app.ID, Minutes: templates.MinutesOf(time.Duration(app.TTL))})
		if err != nil {
			return d, fmt.Errorf("sms text of app %s: %w", app.ID, err)
		}
		text = templates.AndroidHash(text, app.AndroidAppHash)
		if err := sms.CheckText(text); err != nil {
			return d, fmt.Errorf("sms text of app %s: %w", app.ID, err)
		}
		enc, segments := sms.Measure(text)
		d.step.Locale, d.step.Via, d.step.Encoding, d.step.Segments = used, s.cfg.SMS.Via, string(enc), segments
		d.req.Kind, d.req.Text = call.KindMessage, text
		callerID = s.cfg.SMS.Sender
		if !s.overTrunk(ChannelSMS) {
			d.msg = &message.Message{Ref: d.req.ID, App: app.ID, Channel: ChannelSMS, To: to.E164, From: callerID, Text: text, Code: code, Locale: used}
			return d, nil
		}
	default: // whatsapp, email: the sender renders its channel's own form
		m, err := s.compose(app, p.Channel, locale, code)
		if err != nil {
			return d, fmt.Errorf("%s message of app %s: %w", p.Channel, app.ID, err)
		}
		m.Ref, m.App, m.Channel, m.Code, m.To = d.req.ID, app.ID, p.Channel, code, to.E164
		if p.Channel == ChannelEmail {
			m.To = to.Email
		}
		d.step.Locale, d.msg = m.Locale, &m
		return d, nil
	}
	if callerID != "" {
		d.req.CLI = callerID
		return d, nil
	}
	// No caller ID of the channel's own: a number of the app's pools (its code digits mean nothing here).
	picked, err := s.pick(ctx, app.ID, rec.From, to, app.CodeLength)
	if err != nil {
		return d, err
	}
	d.req.CLI, d.req.Trunks = picked.CLI, picked.Trunks
	return d, nil
}

// randomCode returns n random digits from crypto/rand.
func randomCode(n int) (string, error) {
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			return "", err
		}
		b[i] = byte('0' + d.Int64())
	}
	return string(b), nil
}

// add appends d to rec as its newest step: the verification's call becomes this step's, when a call.
func (rec *record) add(d delivery, now time.Time, minCodeSpace int) {
	if d.dial != "" { // an inbound step: handed out now
		at := now
		rec.DialNumber, d.step.SentAt = d.dial, &at
	}
	rec.Steps = append(rec.Steps, d.step)
	rec.Codes = append(rec.Codes, d.mac)
	if d.prefix != "" {
		rec.CLIPrefix, rec.CLIPattern = d.prefix, d.pattern
	}
	if d.req.Kind != call.KindMessage {
		rec.Call = Call{State: call.StateQueued}
	}
	rec.Next = time.Time{}
	if d.step.Timeout > 0 {
		rec.Next = now.Add(time.Duration(d.step.Timeout))
	}
	rec.retire(minCodeSpace)
}

// retire keeps the live codes' joint code space at or above min_code_space: with k codes live, a guess
// hits one of them k times as often. The oldest live codes go first; the newest always stays.
func (rec *record) retire(minCodeSpace int) {
	for {
		var p float64
		oldest, live := -1, 0
		for i, mac := range rec.Codes {
			if mac == nil {
				continue
			}
			live++
			if oldest < 0 {
				oldest = i
			}
			p += 1 / rec.space(i)
		}
		if live <= 1 || 1/p >= float64(minCodeSpace) {
			return
		}
		rec.Codes[oldest] = nil
	}
}

// space is the number of codes step i's code was drawn from: 10^digits (a flash call's pools may give
// fewer, never below min_code_space, which numberpool enforces).
func (rec *record) space(i int) float64 {
	sp := 1.0
	for range rec.Steps[i].CodeLength {
		sp *= 10
	}
	return sp
}

// live reports whether any step's code can still approve rec.
func (rec *record) live() bool {
	for _, m := range rec.Codes {
		if m != nil {
			return true
		}
	}
	return len(rec.Steps) == 0 && rec.CodeMAC != nil
}

// current returns the index of rec's newest step; -1 for a record from before steps.
func (rec *record) current() int { return len(rec.Steps) - 1 }

// stepEnded applies the outcome res of step i's call (or message) to rec. It reports whether the step
// failed to deliver: its code cannot have reached the user.
func applyStep(rec *record, i int, trunk string, res call.Result) (failed bool) {
	st := &rec.Steps[i]
	if trunk != "" {
		st.Trunk = trunk
	}
	st.SIPCode = res.SIPCode
	if !res.StartedAt.IsZero() {
		at := res.StartedAt.UTC()
		st.StartedAt = &at
	}
	ended := res.EndedAt.UTC()
	st.EndedAt = &ended
	switch {
	case st.Channel == ChannelFlashCall && res.Rang:
		st.State = StepDelivered
		at := res.RingingAt.UTC()
		st.DeliveredAt = &at
	case st.Channel == ChannelFlashCall && res.State == call.StateAnswered:
		st.State, st.DeliveredAt = StepDelivered, &ended
	case st.Channel == ChannelVoice && res.State == call.StateAnswered && res.Played:
		st.State, st.DeliveredAt = StepDelivered, &ended
	case st.Channel == ChannelVoice && res.State == call.StateAnswered:
		// It hung up mid-prompt: some digits may have been heard, so the code stays; the workflow goes on.
		st.State, st.Reason = StepFailed, ReasonHungUp
		return true
	case res.State == call.StateSent:
		st.State, st.SentAt = StepSent, &ended
	default:
		st.State, st.Reason = StepFailed, string(res.Reason)
		rec.Codes[i] = nil
		return true
	}
	return false
}

// errNoStep is a report of a step the record does not have.
var errNoStep = errors.New("no such step")

// to returns rec's recipient for a step over channel: its number, or its address for an email.
func (rec *record) to(app apps.App, channel string) (Recipient, error) {
	if channel == ChannelEmail {
		if rec.Email == "" {
			return Recipient{}, fault.Errorf(fault.InvalidRequest, "channel: this verification has no email address")
		}
		return Recipient{E164: rec.phone(), Country: rec.Country, Email: rec.Email}, nil
	}
	if rec.phone() == "" {
		return Recipient{}, fault.Errorf(fault.InvalidRequest, "channel: this verification has no phone number")
	}
	r, err := checkRecipient(rec.Recipient, app)
	r.Email = rec.Email
	return r, err
}

// phone returns rec's phone number, or "" for an email-only verification.
func (rec *record) phone() string {
	if strings.HasPrefix(rec.Recipient, "+") {
		return rec.Recipient
	}
	return ""
}
