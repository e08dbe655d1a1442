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
	if req.CodeLength != 0 && plans[0].Channel == ChannelFlashCall && !apps.ValidCodeLength(req.CodeLength) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "code_length: must be %d to %d", apps.MinCodeLength, apps.MaxCodeLength)
	}
	locale, err := checkLocale(req.Locale, app)
	if err != nil {
		return Verification{}, err
	}
	to, err := s.guard(ctx, app, req.Recipient, req.Reference)
	if err != nil {
		return Verification{}, err
	}

	now := s.now().UTC()
	rec := record{
		Verification: Verification{
			ID:                s.newID("otp_", now),
			AppID:             app.ID,
			Recipient:         to.E164,
			Channel:           req.Channel,
			Status:            StatusPending,
			Reference:         req.Reference,
			AttemptsRemaining: app.MaxAttempts,
			CreatedAt:         now,
			ExpiresAt:         now.Add(lifetime(app, plans)),
		},
		MaxAttempts: app.MaxAttempts,
		Country:     to.Country,
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
	rec.add(d, now, s.cfg.MinCodeSpace)
	var eventID string
	err = s.db.Update(ctx, func(tx Tx) error {
		if tx.Verification(rec.ID) != nil {
			return fmt.Errorf("verification %s exists", rec.ID)
		}
		v, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		if err := tx.CreateVerification(rec.ID, rec.AppID, rec.Recipient, rec.ExpiresAt, v); err != nil {
			return err
		}
		if !rec.Next.IsZero() {
			if err := tx.PutExpiry(rec.ID, rec.Next); err != nil {
				return err
			}
		}
		if eventID, err = s.eventID(tx, &rec, Event{Type: EventSendRequested, At: now, CLIPrefix: rec.CLIPrefix, Channel: d.step.Channel}); err != nil {
			return err
		}
		return s.count(tx, &rec, d.step.Channel, "", func(_ string, c *counters) { c.Sent++ })
	})
	if err != nil {
		return Verification{}, s.storeFailed("store verification", err)
	}
	if err := s.dialer.Submit(d.req); err != nil {
		// Nothing was sent: the verification goes as if it had never been asked for, even if the caller
		// has gone meanwhile.
		derr := s.db.Update(context.WithoutCancel(ctx), func(tx Tx) error {
			if err := tx.DeleteEvent(rec.AppID, eventID); err != nil {
				return err
			}
			if err := s.count(tx, &rec, d.step.Channel, "", func(_ string, c *counters) { c.Sent-- }); err != nil {
				return err
			}
			return s.forget(tx, &rec)
		})
		if derr != nil {
			s.log.Error("verification left after refused call", "verification_id", rec.ID, "err", derr)
		}
		return Verification{}, err
	}
	s.log.Info("send_requested", "verification_id", rec.ID, "appid", rec.AppID, "channel", d.step.Channel, "cli_prefix", rec.CLIPrefix)
	return rec.Verification, nil
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
		"appid": app.ID, "recipient": to.E164, "country": to.Country, "number_type": numberTypeName(to), "reference": reference,
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

// guard runs the app's checks of a send or resend, in order, before anything is drawn or stored: the
// recipient, the dialer's capacity, the rate limits, the pre-send hook.
func (s *Service) guard(ctx context.Context, app apps.App, recipient, reference string) (Recipient, error) {
	to, err := checkRecipient(recipient, app)
	if err != nil {
		return Recipient{}, err
	}
	if err := s.available(); err != nil {
		return Recipient{}, err
	}
	if err := s.allowSend(app, to.E164); err != nil {
		return Recipient{}, err
	}
	return to, s.preSend(ctx, app, to, reference)
}

// available refuses a send or resend before anything is counted or stored when the dialer could take no
// call now: every trunk down, or shutting down.
func (s *Service) available() error {
	return s.dialer.Available(nil)
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
