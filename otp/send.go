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
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/numberpool"
)

// SendRequest is a request for a flash call, as POST /otp/send's body gives it.
type SendRequest struct {
	AppID      string `json:"appid"`
	Recipient  string `json:"recipient"`
	Channel    string `json:"channel"`
	From       string `json:"from"`        // optional: the name of one of the app's pools
	CodeLength int    `json:"code_length"` // optional: 0 for the app's
	Reference  string `json:"reference"`   // optional, echoed back
}

// Send validates req, applies the app's fraud guards and rate limits, stores a new verification and
// queues its flash call.
func (s *Service) Send(ctx context.Context, req SendRequest) (Verification, error) {
	app, err := s.app(req.AppID)
	if err != nil {
		return Verification{}, err
	}
	if req.Channel != ChannelFlashCall {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "channel: must be %q", ChannelFlashCall)
	}
	if len(req.Reference) > 128 || !printable(req.Reference) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "reference: at most 128 bytes of UTF-8 text, no control, format or line-separator characters")
	}
	// Before the limits count the send: a pool the app has not is the caller's mistake, not a send.
	if req.From != "" && (len(req.From) > 64 || !printable(req.From) || !slices.Contains(app.Pools, req.From)) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "from: must name one of the app's pools")
	}
	codeLength := req.CodeLength
	if codeLength == 0 {
		codeLength = app.CodeLength
	}
	if !apps.ValidCodeLength(codeLength) {
		return Verification{}, fault.Errorf(fault.InvalidRequest, "code_length: must be %d to %d", apps.MinCodeLength, apps.MaxCodeLength)
	}
	to, err := s.guard(ctx, app, req.Recipient, req.Reference)
	if err != nil {
		return Verification{}, err
	}
	picked, err := s.pick(ctx, app.ID, req.From, to, codeLength)
	if err != nil {
		return Verification{}, err
	}

	now := s.now().UTC()
	rec := record{
		Verification: Verification{
			ID:                s.newID("otp_", now),
			AppID:             app.ID,
			Recipient:         to.E164,
			Channel:           ChannelFlashCall,
			Status:            StatusPending,
			CodeLength:        codeLength,
			CLIPrefix:         picked.Prefix,
			CLIPattern:        picked.Pattern,
			Reference:         req.Reference,
			AttemptsRemaining: app.MaxAttempts,
			CreatedAt:         now,
			ExpiresAt:         now.Add(time.Duration(app.TTL)),
			Call:              Call{State: call.StateQueued},
		},
		MaxAttempts: app.MaxAttempts,
		Country:     to.Country,
		SentAt:      now,
		From:        req.From,
	}
	rec.CodeMAC = s.mac(rec.ID, picked.Code)
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
		if eventID, err = s.eventID(tx, &rec, Event{Type: EventSendRequested, At: now, CLIPrefix: rec.CLIPrefix}); err != nil {
			return err
		}
		return s.count(tx, &rec, "", func(_ string, c *counters) { c.Sent++ })
	})
	if err != nil {
		return Verification{}, s.storeFailed("store verification", err)
	}
	if err := s.submit(&rec, picked); err != nil {
		// Nothing was dialed: the verification goes as if it had never been asked for, even if the caller
		// has gone meanwhile.
		derr := s.db.Update(context.WithoutCancel(ctx), func(tx Tx) error {
			if err := tx.DeleteEvent(rec.AppID, eventID); err != nil {
				return err
			}
			if err := s.count(tx, &rec, "", func(_ string, c *counters) { c.Sent-- }); err != nil {
				return err
			}
			return s.forget(tx, &rec)
		})
		if derr != nil {
			s.log.Error("verification left after refused call", "verification_id", rec.ID, "err", derr)
		}
		return Verification{}, err
	}
	s.log.Info("send_requested", "verification_id", rec.ID, "appid", rec.AppID, "cli_prefix", rec.CLIPrefix)
	return rec.Verification, nil
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

func (s *Service) submit(rec *record, picked numberpool.Picked) error {
	return s.dialer.Submit(dialer.Request{App: rec.AppID, ID: rec.ID, To: rec.Recipient, CLI: picked.CLI, Trunks: picked.Trunks})
}

// forget removes every trace of rec from the store: a send whose call was never placed.
func (s *Service) forget(tx Tx, rec *record) error {
	return tx.DeleteVerification(rec.ID, rec.AppID, rec.Recipient, rec.ExpiresAt)
}

// printable reports whether s is UTF-8 text of graphic characters and spaces only: no C0 or C1 controls
// (U+0085 ends a line in some log readers), no format characters (bidirectional overrides make a log line
// read otherwise than it is), no line or paragraph separators, no private-use or unassigned code points.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}
