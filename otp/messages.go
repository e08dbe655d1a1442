package otp

import (
	"context"
	"errors"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/fault"
	"flashotp/message"
	"flashotp/templates"
)

// compose writes a whatsapp or email step's message from the app's templates and the built-in ones: an
// email's subject, text and HTML parts, another channel's text.
func (s *Service) compose(app apps.App, channel, locale, code string) (message.Message, error) {
	d := templates.Data{Code: code, App: app.ID, Minutes: templates.MinutesOf(time.Duration(app.TTL))}
	if channel == ChannelEmail {
		e, err := templates.RenderEmail(app.Templates, locale, app.Locale, d)
		return message.Message{Subject: e.Subject, Text: e.Text, HTML: e.HTML, Locale: e.Locale}, err
	}
	text, used, err := templates.Render(app.Templates, channel, locale, app.Locale, d)
	return message.Message{Text: text, Locale: used}, err
}

// submit sends d out: to its channel's Sender (in the background: the step's outcome comes back through
// messageEnded), or to the dialer, whose refusal it returns.
func (s *Service) submit(d delivery) error {
	if d.step.Channel == ChannelInbound {
		return nil // the user calls
	}
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
	s.sending.Add(1)
	go func() {
		defer s.sending.Done()
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
	var typ, channel string
	err := s.modify(ctx, id, func(rec *record) error {
		next, changed = false, false
		if i >= len(rec.Steps) || isCall(rec.Steps[i].Channel) {
			return errNoStep
		}
		st := &rec.Steps[i]
		channel = st.Channel
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
			rec.tally(tallyOp{Kind: tallyMsgFailed, Channel: st.Channel})
			rec.Codes[i] = nil
			next = rec.stepFailed(i, s.now())
		default:
			return errUnchanged
		}
		changed = true
		return nil
	}, func(tx Tx, rec *record) error {
		st := rec.Steps[i]
		if next {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		if err := s.event(tx, rec, Event{Type: typ, At: at, Channel: st.Channel, Step: i, Reason: st.Reason}); err != nil {
			return err
		}
		return s.notify(tx, rec, typ, at)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		s.log.Warn("record receipt", "ref", r.Ref, "err", err)
		return
	}
	if changed {
		s.log.Debug(typ, "verification_id", id, "step", i, "reason", r.Reason)
		state := StepDelivered
		if typ == EventMessageFailed {
			state = StepFailed
		}
		s.stepEnded(channel, state)
	}
	if next {
		s.advance(ctx, id, i+1)
	}
}

// Wait waits, until ctx ends, for the messages handed to Senders to have their outcome recorded: at
// shutdown, after the senders were closed (a Send waiting for its carrier then ends at once) and before the
// store is. A message whose outcome is not recorded by then is recovered as interrupted at the next start.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
