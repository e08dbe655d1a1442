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
	// Timeout is how long the workflow waits for an approval before the next step; 0: no next step.
	Timeout     Duration   `json:"timeout,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
}

// Duration is a time.Duration that JSON writes as Go's text ("20s").
type Duration = apps.Duration

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
		case !s.overTrunk(p.Channel) && p.Channel != ChannelFlashCall && p.Channel != ChannelVoice && s.cfg.Senders[p.Channel] == nil:
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
}

// prepare draws the code of step i of rec over p.Channel and builds what goes out: nothing is stored or
// sent. codeLength is the send's own (0: the app's for the channel).
func (s *Service) prepare(ctx context.Context, app apps.App, rec *record, to Recipient, i int, p plan, codeLength int, locale string) (delivery, error) {
	if codeLength == 0 {
		codeLength = app.CodeLengthFor(p.Channel)
	}
	d := delivery{step: Step{Channel: p.Channel, State: StepQueued, CodeLength: codeLength, Timeout: p.Timeout}}
	d.req = dialer.Request{App: app.ID, ID: ref(rec.ID, i), To: to.E164}
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
	perr := s.allowStep(app, cur.Plan[0].Channel)
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
	err = s.modify(ctx, id, func(rec *record) error {
		if !rec.waitsFor(i, now) {
			return errUnchanged
		}
		rec.Plan = rec.Plan[1:]
		rec.add(d, now, s.cfg.MinCodeSpace) // a step that did not start leaves the call as it was: no Kind of a call
		return nil
	}, func(tx Tx, rec *record) error {
		if perr == nil {
			if err := tx.PutOpenCall(rec.ID); err != nil {
				return err
			}
		}
		if !rec.Next.IsZero() {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		e := Event{Type: EventStepStarted, At: now, Channel: d.step.Channel, Step: i, CLIPrefix: d.prefix, Reason: d.step.Reason}
		if err := s.event(tx, rec, e); err != nil {
			return err
		}
		if err := s.count(tx, rec, d.step.Channel, "", func(group string, c *counters) {
			if group == GroupChannel {
				c.Sent++ // a delivery more on this channel; the verification was counted at its send
			}
		}); err != nil {
			return err
		}
		return s.notify(tx, rec, EventStepStarted, now)
	})
	if err != nil {
		if !errors.Is(err, errUnchanged) {
			s.log.Error("start workflow step", "verification_id", id, "step", i, "err", err)
		}
		return
	}
	s.log.Info("step_started", "verification_id", id, "step", i, "channel", d.step.Channel)
	if perr != nil {
		s.afterFailedStep(ctx, id, i)
		return
	}
	if err := s.submit(d); err != nil {
		now := s.now()
		s.CallEnded(d.req.ID, "", "", call.Result{State: call.StateFailed, Reason: call.ReasonTrunkError, StartedAt: now, EndedAt: now})
	}
}

// afterFailedStep goes on from step i, which failed without a call: the next step, or the verification
// fails when none is left and no code went out.
func (s *Service) afterFailedStep(ctx context.Context, id string, i int) {
	next := false
	err := s.modify(ctx, id, func(rec *record) error {
		if rec.Status != StatusPending || rec.current() != i {
			return errUnchanged
		}
		if len(rec.Plan) > 0 {
			next = true
			return errUnchanged
		}
		if rec.live() {
			return errUnchanged
		}
		rec.Status = StatusFailed
		return nil
	}, func(Tx, *record) error { return nil })
	if err != nil && !errors.Is(err, errUnchanged) {
		s.log.Error("end workflow", "verification_id", id, "err", err)
	}
	if next {
		s.advance(ctx, id, i+1)
	}
}

// waitsFor reports whether rec waits for its step i to start at now.
func (rec *record) waitsFor(i int, now time.Time) bool {
	return rec.Status == StatusPending && len(rec.Plan) > 0 && rec.current() == i-1 && now.Before(rec.ExpiresAt)
}

// compose writes a whatsapp or email step's message: Config.Compose, or the channel's text template.
func (s *Service) compose(app apps.App, channel, locale, code string) (message.Message, error) {
	if s.cfg.Compose != nil {
		return s.cfg.Compose(app, channel, locale, code)
	}
	text, used, err := templates.Render(app.Templates, channel, locale, app.Locale,
		templates.Data{Code: code, App: app.ID, Minutes: templates.MinutesOf(time.Duration(app.TTL))})
	return message.Message{Text: text, Locale: used}, err
}

// submit sends d out: to its channel's Sender (in the background: the step's outcome comes back through
// messageEnded), or to the dialer, whose refusal it returns.
func (s *Service) submit(d delivery) error {
	if d.msg == nil {
		return s.dialer.Submit(d.req)
	}
	sender := s.cfg.Senders[d.msg.Channel]
	if sender == nil {
		return fault.Errorf(fault.Unavailable, "no sender for %s on this engine", d.msg.Channel)
	}
	limit := s.cfg.MessageTimeout
	if limit <= 0 {
		limit = 30 * time.Second
	}
	if t := time.Duration(d.step.Timeout); t > 0 && t < limit {
		limit = t
	}
	m := *d.msg
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		started := s.now()
		res := sender.Send(ctx, m)
		s.messageEnded(m.Ref, started, res)
	}()
	return nil
}

// messageEnded records what a Sender's carrier said of the message of step ref when it was handed over, as
// a call's outcome is recorded: sent, or failed with its reason (the next step goes).
func (s *Service) messageEnded(ref string, started time.Time, res message.Result) {
	out := call.Result{State: call.StateSent, StartedAt: started, EndedAt: res.At, Phrase: res.Detail}
	if res.At.IsZero() {
		out.EndedAt = s.now()
	}
	if res.State != message.Sent {
		out.State, out.Reason = call.StateFailed, call.Reason(res.Reason)
		if out.Reason == "" {
			out.Reason = message.ReasonUnavailable
		}
	}
	if res.Detail != "" && res.State != message.Sent {
		s.log.Warn("message not sent", "ref", ref, "reason", out.Reason, "detail", res.Detail)
	}
	s.CallEnded(ref, "", "", out)
}

// MessageReceipt records what a carrier reported of a step's message after it was sent (message.Receipts):
// delivered (or read), or failed, which drops its code and starts the workflow's next step when it is the
// newest. A receipt for a step that is not a message's, or that came before, changes nothing.
func (s *Service) MessageReceipt(r message.Receipt) {
	ctx := context.Background()
	id, i := parseRef(r.Ref)
	if !validID(id) || i < 0 {
		s.log.Warn("receipt for no step", "ref", r.Ref)
		return
	}
	at := r.At.UTC()
	if at.IsZero() {
		at = s.now().UTC()
	}
	var next, changed bool
	var typ string
	err := s.modify(ctx, id, func(rec *record) error {
		next, changed = false, false
		if i >= len(rec.Steps) || isCall(rec.Steps[i].Channel) {
			return errNoStep
		}
		st := &rec.Steps[i]
		switch {
		case r.State == message.Delivered || r.State == message.Read:
			if st.State == StepDelivered || st.State == StepFailed {
				return errUnchanged
			}
			st.State, st.DeliveredAt, typ = StepDelivered, &at, EventMessageDelivered
		case r.State == message.Failed:
			if st.State == StepFailed || st.State == StepDelivered {
				return errUnchanged // a receipt never undoes another
			}
			st.State, st.Reason, st.EndedAt, typ = StepFailed, r.Reason, &at, EventMessageFailed
			rec.Codes[i] = nil
			if rec.Status == StatusPending && i == rec.current() {
				switch {
				case len(rec.Plan) > 0 && at.Before(rec.ExpiresAt):
					next, rec.Next = true, time.Time{}
				case !rec.live():
					rec.Status = StatusFailed
				}
			}
		default:
			return errUnchanged
		}
		changed = true
		return nil
	}, func(tx Tx, rec *record) error {
		st := rec.Steps[i]
		if err := s.event(tx, rec, Event{Type: typ, At: at, Channel: st.Channel, Step: i, Reason: st.Reason}); err != nil {
			return err
		}
		if typ == EventMessageFailed {
			if err := s.count(tx, rec, st.Channel, "", func(_ string, c *counters) { c.Failed++ }); err != nil {
				return err
			}
		}
		return s.notify(tx, rec, typ, at)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		s.log.Warn("record receipt", "ref", r.Ref, "err", err)
		return
	}
	if changed {
		s.log.Info(typ, "verification_id", id, "step", i, "reason", r.Reason)
	}
	if next {
		s.advance(ctx, id, i+1)
	}
}

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
