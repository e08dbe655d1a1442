package otp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
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
	_, err := s.eventID(tx, rec, e)
	return err
}

// eventID records e for rec in tx and returns its ID.
func (s *Service) eventID(tx Tx, rec *record, e Event) (string, error) {
	e.ID = s.newID("evt_", s.now())
	e.AppID, e.VerificationID, e.Recipient = rec.AppID, rec.ID, rec.Recipient
	e.At = e.At.UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	return e.ID, tx.PutEvent(rec.AppID, e.ID, v)
}

// notify queues webhook event name about rec, if the app has a webhook.
func (s *Service) notify(tx Tx, rec *record, name string, at time.Time) error {
	if s.cfg.Notifier == nil {
		return nil
	}
	if app, ok := s.cfg.Apps.Get(rec.AppID); !ok || app.WebhookURL == "" {
		return nil
	}
	body, err := json.Marshal(WebhookBody{Event: name, At: at.UTC(), Verification: rec.Verification})
	if err != nil {
		return err
	}
	return s.cfg.Notifier.Enqueue(tx, rec.AppID, rec.ID, body)
}

// counters are one row of the reports: counts, and post-dial delays as a histogram. A row is updated by
// every event, so it is stored compactly (encode), not as JSON.
type counters struct {
	Sent, Missed, Answered, Failed, Approved int64
	PDD                                      [pddBuckets]int64 // histogram bucket → calls
}

// pddBuckets covers delays up to 10^(pddBuckets-1)/10 ms, about 17 minutes; longer ones count in the last.
const pddBuckets = 61

func (c *counters) zero() bool { return *c == counters{} }

// encode writes c as varints: the five counts, then (bucket, calls) pairs of the non-empty buckets.
func (c *counters) encode() []byte {
	b := make([]byte, 0, 32)
	for _, n := range []int64{c.Sent, c.Missed, c.Answered, c.Failed, c.Approved} {
		b = binary.AppendVarint(b, n)
	}
	for i, n := range c.PDD {
		if n != 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendVarint(b, n)
		}
	}
	return b
}

func (c *counters) decode(b []byte) error {
	*c = counters{}
	next := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for _, p := range []*int64{&c.Sent, &c.Missed, &c.Answered, &c.Failed, &c.Approved} {
		var ok bool
		if *p, ok = next(); !ok {
			return errors.New("report row: truncated")
		}
	}
	for len(b) > 0 {
		i, n := binary.Uvarint(b)
		if n <= 0 || i >= pddBuckets {
			return errors.New("report row: bad histogram bucket")
		}
		b = b[n:]
		v, ok := next()
		if !ok {
			return errors.New("report row: truncated histogram")
		}
		c.PDD[i] = v
	}
	return nil
}

// Report groups.
const (
	GroupDay     = "day"
	GroupCountry = "country"
	GroupChannel = "channel"
	GroupTrunk   = "trunk"
)

// count applies fn to rec's report rows: its day, country and channel, and trunk when not empty. All are
// rows of the day rec was created, so a day's approvals are of that day's sends.
func (s *Service) count(tx Tx, rec *record, trunk string, fn func(group string, c *counters)) error {
	day := rec.CreatedAt.UTC().Format(time.DateOnly)
	rows := [][2]string{{GroupDay, day}, {GroupCountry, rec.Country}, {GroupChannel, rec.Channel}}
	if trunk != "" {
		rows = append(rows, [2]string{GroupTrunk, trunk})
	}
	for _, r := range rows {
		var c counters
		if v := tx.ReportRow(rec.AppID, day, r[0], r[1]); v != nil {
			if err := c.decode(v); err != nil {
				return err
			}
		}
		fn(r[0], &c)
		if c.zero() {
			// A send undone (its call refused) leaves nothing behind.
			if err := tx.DeleteReportRow(rec.AppID, day, r[0], r[1]); err != nil {
				return err
			}
			continue
		}
		if err := tx.PutReportRow(rec.AppID, day, r[0], r[1], c.encode()); err != nil {
			return err
		}
	}
	return nil
}

// PDD histogram: bucket i holds delays in [pddBound(i-1), pddBound(i)) ms, ten buckets per decade (about
// 26% wide), so the median is known within its bucket; bucket 0 holds delays under 1 ms.
func pddBucket(ms int64) int {
	if ms < 1 {
		return 0
	}
	return min(int(math.Floor(10*math.Log10(float64(ms))))+1, pddBuckets-1)
}

func pddBound(i int) float64 { return math.Pow(10, float64(i)/10) }

// median returns the median of a histogram, interpolated within its bucket; -1 if empty.
func median(h *[pddBuckets]int64) float64 {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return -1
	}
	half := float64(n) / 2
	var seen int64
	for b, c := range h {
		if c > 0 && float64(seen+c) >= half {
			lo := 0.0
			if b > 0 {
				lo = pddBound(b - 1)
			}
			return lo + (pddBound(b)-lo)*(half-float64(seen))/float64(c)
		}
		seen += c
	}
	return -1
}
