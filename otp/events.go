package otp

import (
	"encoding/json"
	"time"
)

// Event types of GET /otp/logs. Those in webhookEvents are also POSTed to the app's webhook_url.
const (
	EventSendRequested = "send_requested"
	EventCallDialing   = "call_dialing"
	EventCallRinging   = "call_ringing"
	EventCallMissed    = "call_missed"
	EventCallAnswered  = "call_answered"
	EventCallFailed    = "call_failed"
	EventVerifyFailed  = "verify_failed"
	EventVerifyOK      = "verify_approved"
	EventResend        = "resend"
	EventExpired       = "expired"
	// The steps' events (SPEC section 8).
	EventStepStarted      = "step_started"
	EventVoiceAnswered    = "voice_answered"
	EventVoicePlayed      = "voice_played"
	EventMessageSent      = "message_sent"
	EventMessageDelivered = "message_delivered"
	EventMessageFailed    = "message_failed"
)

// Webhook event names, as the webhook body's "event" gives them.
const (
	WebhookApproved    = "approved"
	WebhookMaxAttempts = "max_attempts_reached"
)

// Event is one entry of an app's activity log. It never holds a code or a whole CLI.
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	AppID          string    `json:"appid"`
	VerificationID string    `json:"verification_id"`
	Recipient      string    `json:"recipient"`
	CLIPrefix      string    `json:"cli_prefix,omitempty"`
	Channel        string    `json:"channel,omitempty"` // the step's, for the events of a step
	Step           int       `json:"step,omitempty"`    // the step's index (0: the first)
	Trunk          string    `json:"trunk,omitempty"`
	SIPCode        int       `json:"sip_code,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Result         string    `json:"result,omitempty"`    // verify events: approved, invalid_code, expired, …
	RemoteIP       string    `json:"remote_ip,omitempty"` // verify events
}

// WebhookBody is what an app's webhook_url receives.
type WebhookBody struct {
	Event        string       `json:"event"`
	At           time.Time    `json:"at"`
	Verification Verification `json:"verification"`
}

// event records e for rec in tx.
func (s *Service) event(tx Tx, rec *record, e Event) error {
	v, err := encodeEvent(rec, e)
	if err != nil {
		return err
	}
	put := func(tx Tx) error { _, err := s.putEvent(tx, rec.AppID, v); return err }
	if st, ok := tx.(*staged); ok {
		return st.add(put)
	}
	return put(tx)
}

// encodeEvent encodes e as an event of rec, as records are (CBOR, codec.go), without its ID: the ID is the
// event's key, made by putEvent in the write transaction, and decodeEvent puts it back. The encoding is done
// before the write transaction.
func encodeEvent(rec *record, e Event) ([]byte, error) {
	e.ID = ""
	e.AppID, e.VerificationID, e.Recipient = rec.AppID, rec.ID, rec.Recipient
	e.At = e.At.UTC()
	return recordEnc.Marshal(e)
}

// decodeEvent decodes the stored event v whose key is id: CBOR, or JSON with its ID inside from earlier engines.
func decodeEvent(id string, v []byte) (Event, error) {
	var e Event
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &e)
		return e, err
	}
	err := recordDec.Unmarshal(v, &e)
	e.ID = id
	return e, err
}

// putEvent stores the event v (encodeEvent's) of appID in tx under a new ID, and returns it. The ID is made
// in the write transaction, so that IDs follow the order the events are stored in: a page of GET /otp/logs
// never misses one stored later with a lower ID.
func (s *Service) putEvent(tx Tx, appID string, v []byte) (string, error) {
	id := s.newID("evt_", s.now())
	return id, tx.PutEvent(appID, id, v)
}

// notify queues webhook event name about rec, if the app has a webhook.
func (s *Service) notify(tx Tx, rec *record, name string, at time.Time) error {
	if s.cfg.Notifier == nil {
		return nil
	}
	if app, ok := s.cfg.Apps.Get(rec.AppID); !ok || app.WebhookURL == "" {
		return nil
	}
	body, err := json.Marshal(WebhookBody{Event: name, At: at.UTC(), Verification: rec.public()})
	if err != nil {
		return err
	}
	return s.cfg.Notifier.Enqueue(tx, rec.AppID, rec.ID, body)
}
