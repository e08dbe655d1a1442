package otp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/fault"
	"flashotp/numberpool"
	"flashotp/templates"
)

// SendRequest is a request for a verification, as POST /otp/send's body gives it.
type SendRequest struct {
	AppID      string `json:"appid"`
	Recipient  string `json:"recipient"`
	Channel    string `json:"channel"`     // flashcall, voice, sms, or auto: the app's workflow
	From       string `json:"from"`        // optional: the name of one of the app's pools
	CodeLength int    `json:"code_length"` // optional: 0 for the app's (of each step's channel)
	Reference  string `json:"reference"`   // optional, echoed back
	Locale     string `json:"locale"`      // optional, BCP 47: picks the templates and prompts
	// Email is the address of the email steps of a workflow that also has phone steps; an email-only send
	// may give its address as Recipient instead.
	Email string `json:"email"`
}

// Send validates req, applies the app's fraud guards and rate limits, stores a new verification and
// sends its first step: a flash call, a voice call or a message.
func (s *Service) Send(ctx context.Context, req SendRequest) (Verification, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Verification{}, err
	}
	plans, err := s.plans(app, req.Channel)
	if err != nil {
		return Verification{}, err
	}
	if len(req.Reference) > 128 || !printable(req.Reference) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "reference: at most 128 bytes of UTF-8 text, no control, format or line-separator characters")
	}
	// Before the limits count the send: a pool the app has not is the caller's mistake, not a send.
	if req.From != "" && (len(req.From) > 64 || !printable(req.From) || !slices.Contains(app.Pools, req.From)) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "from: must name one of the app's pools")
	}
	switch {
	case req.CodeLength == 0:
	case plans[0].Channel == ChannelFlashCall && !apps.ValidCodeLength(req.CodeLength):
		return Verification{}, fault.Errorf(fault.InvalidRequest, "code_length: must be %d to %d", apps.MinCodeLength, apps.MaxCodeLength)
	case plans[0].Channel != ChannelFlashCall && (req.CodeLength < apps.MinRandomCodeLength || req.CodeLength > apps.MaxRandomCodeLength):
		return Verification{}, fault.Errorf(fault.InvalidRequest, "code_length: %s codes have %d to %d digits", plans[0].Channel, apps.MinRandomCodeLength, apps.MaxRandomCodeLength)
	}
	locale, err := checkLocale(req.Locale, app)
	if err != nil {
		return Verification{}, err
	}
	to, err := s.recipient(app, plans, req.Recipient, req.Email)
	if err != nil {
		return Verification{}, err
	}
	if err := s.guard(ctx, app, to, plans[0], req.Reference); err != nil {
		return Verification{}, err
	}

	now := s.now().UTC()
	rec := record{
		Verification: Verification{
			ID:                s.newID("otp_", now),
			AppID:             app.ID,
			Recipient:         to.key(),
			Channel:           req.Channel,
			Status:            StatusPending,
			Reference:         req.Reference,
			AttemptsRemaining: app.MaxAttempts,
			CreatedAt:         now,
			ExpiresAt:         now.Add(lifetime(app, plans)),
		},
		MaxAttempts: app.MaxAttempts,
		Country:     to.Country,
		Email:       to.Email,
		SentAt:      now,
		From:        req.From,
		Locale:      locale,
		Plan:        plans[1:],
	}
	d, err := s.prepare(ctx, app, &rec, to, 0, plans[0], req.CodeLength, locale)
	if err != nil {
		return Verification{}, err
	}
	rec.CodeLength = d.step.CodeLength
	if len(plans) == 1 && plans[0].Channel == ChannelFlashCall {
		// A flash call alone keeps the form of a flash-call verification (flash.go): its record is as small
		// as before steps, on the path that carries the most sends.
		// Its locale is kept only when the send named one (a resend on another channel uses it), else the
		// app's applies then.
		rec.CodeMAC, rec.CLIPrefix, rec.CLIPattern, rec.Call = d.mac, d.prefix, d.pattern, Call{State: call.StateQueued}
		if req.Locale == "" {
			rec.Locale = ""
		}
	} else {
		rec.add(d, now, s.cfg.MinCodeSpace)
	}
	rec.tally(tallyOp{Kind: tallySent, Channel: d.step.Channel})
	rec.Node = s.node()
	// Encoded here, not in the store's one writer, which only puts the bytes.
	v, err := encodeRecord(&rec)
	if err != nil {
		return Verification{}, err
	}
	event, err := encodeEvent(&rec, Event{Type: EventSendRequested, At: now, CLIPrefix: rec.CLIPrefix, Channel: d.step.Channel})
	if err != nil {
		return Verification{}, err
	}
	var eventID string
	err = s.db.Update(ctx, func(tx Tx) error {
		if tx.Verification(rec.ID) != nil {
			return fmt.Errorf("verification %s exists", rec.ID)
		}
		if err := tx.CreateVerification(rec.ID, rec.AppID, rec.Recipient, rec.ExpiresAt, v); err != nil {
			return err
		}
		if !rec.Next.IsZero() {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		eventID, err = s.putEvent(tx, rec.AppID, event)
		return err
	})
	if err != nil {
		return Verification{}, s.storeFailed("store verification", err)
	}
	s.addTally(&rec, rec.Tally, 1)
	if err := s.submit(d); err != nil {
		// Nothing was sent: the verification goes as if it had never been asked for, even if the caller
		// has gone meanwhile.
		derr := s.db.Update(context.WithoutCancel(ctx), func(tx Tx) error {
			if err := tx.DeleteEvent(rec.AppID, eventID); err != nil {
				return err
			}
			return s.forget(tx, &rec)
		})
		if derr != nil {
			s.log.Error("verification left after refused call", "verification_id", rec.ID, "err", derr)
		} else {
			s.addTally(&rec, rec.Tally, -1)
		}
		return Verification{}, err
	}
	s.act.sends.Add(1)
	s.log.Debug("send_requested", "verification_id", rec.ID, "appid", rec.AppID, "channel", d.step.Channel, "cli_prefix", rec.CLIPrefix)
	return rec.public(), nil
}

// lifetime is how long a verification of app running plans lives: the app's TTL from the start of its
// last step, which may come after every earlier step's timeout.
func lifetime(app apps.App, plans []plan) time.Duration {
	d := time.Duration(app.TTL)
	for _, p := range plans[:len(plans)-1] {
		d += time.Duration(p.Timeout)
	}
	return d
}

// checkLocale checks a send's locale (BCP 47), and returns it or, when empty, the app's.
func checkLocale(locale string, app apps.App) (string, error) {
	if locale == "" {
		if app.Locale == "" {
			return "en", nil
		}
		return app.Locale, nil
	}
	if err := templates.CheckLocale(locale); err != nil {
		return "", fault.Errorf(fault.InvalidRequest, "locale: %v", err)
	}
	return locale, nil
}

// preSend asks the app's pre-send hook, if it has one.
func (s *Service) preSend(ctx context.Context, app apps.App, to Recipient, reference string) error {
	if app.PreSendHook == nil || s.cfg.Notifier == nil {
		return nil
	}
	body, _ := json.Marshal(map[string]string{
		"appid": app.ID, "recipient": to.key(), "country": to.Country, "number_type": numberTypeName(to), "reference": reference,
		"email": to.Email,
	})
	allow, err := s.cfg.Notifier.PreSend(ctx, app, body)
	if err != nil {
		s.log.Warn("pre-send hook failed", "appid", app.ID, "fail_open", app.PreSendHook.FailOpen, "err", err)
		if app.PreSendHook.FailOpen {
			return nil
		}
		return fault.Errorf(fault.DestinationBlocked, "the app's pre-send hook did not answer, and it fails closed")
	}
	if !allow {
		return fault.Errorf(fault.DestinationBlocked, "the app's pre-send hook denied this send")
	}
	return nil
}

func numberTypeName(r Recipient) string {
	if r.E164 == "" {
		return "email"
	}
	for name, t := range apps.NumberTypes {
		if t == r.Type {
			return name
		}
	}
	return "unknown"
}

func (s *Service) pick(ctx context.Context, appID, from string, to Recipient, codeLength int) (numberpool.Picked, error) {
	picked, err := s.numbers.Pick(ctx, numberpool.PickRequest{App: appID, Pool: from, Recipient: to.E164, Country: to.Country, CodeLength: codeLength})
	if err != nil {
		return picked, err
	}
	s.cfg.Metrics.Picked(picked.Pool)
	return picked, nil
}

// recipient checks a send's destination for the steps it plans: a phone number for the steps over a phone
// (with the app's fraud guards), an email address for the email steps, given as email, or as recipient
// when every step is an email.
func (s *Service) recipient(app apps.App, plans []plan, recipient, email string) (Recipient, error) {
	phone, mail := false, false
	for _, p := range plans {
		if p.Channel == ChannelEmail {
			mail = true
		} else {
			phone = true
		}
	}
	var to Recipient
	var err error
	if phone {
		if to, err = checkRecipient(recipient, app); err != nil {
			return to, err
		}
	} else if email == "" {
		email = recipient
	}
	switch {
	case mail && email == "":
		return to, fault.Errorf(fault.InvalidRequest, "email: required: the workflow has an email step")
	case mail:
		if to.Email, err = checkEmail(email); err != nil {
			return to, err
		}
	case email != "":
		return to, fault.Errorf(fault.InvalidRequest, "email: only for a send with an email step")
	}
	return to, nil
}

// guard runs the app's checks of a send or resend whose first step is first, in order, before anything is
// drawn or stored: the dialer's capacity (a step over the trunk), the rate limits, the pre-send hook.
func (s *Service) guard(ctx context.Context, app apps.App, to Recipient, first plan, reference string) error {
	if s.overTrunk(first.Channel) {
		if err := s.dialer.Available(nil); err != nil {
			return err
		}
	}
	if err := s.allowSend(app, to, first.Channel); err != nil {
		return err
	}
	return s.preSend(ctx, app, to, reference)
}

// forget removes every trace of rec from the store: a send whose call was never placed.
func (s *Service) forget(tx Tx, rec *record) error {
	if !rec.Next.IsZero() {
		if err := tx.DeleteExpiry(rec.ID, rec.Next); err != nil {
			return err
		}
	}
	return tx.DeleteVerification(rec.ID, rec.AppID, rec.Recipient, rec.ExpiresAt)
}

// printable reports whether s is UTF-8 text of graphic characters and spaces only: no C0 or C1 controls
// (U+0085 ends a line in some log readers), no format characters (bidirectional overrides make a log line
// read otherwise than it is), no line or paragraph separators, no private-use or unassigned code points.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}
