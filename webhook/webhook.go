// Package webhook delivers apps' webhooks and asks their pre-send hooks.
//
// A webhook is queued in the store in the same transaction as the event it reports, so no event is lost to a
// crash. The queue is delivered at least once, in order per verification: a verification's next webhook
// waits until the one before it got a 2xx, or was given up. A failed delivery is retried with exponential
// backoff (RetryMin doubling up to RetryMax) for up to GiveUpAfter from when it was queued.
//
// Every request is signed: X-Flashotp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
// under the app's webhook secret. X-Flashotp-Delivery names the delivery, the same on every retry, so a
// receiver can drop duplicates.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"flashotp/apps"
)

// Headers of a signed request.
const (
	HeaderSignature = "X-Flashotp-Signature"
	HeaderDelivery  = "X-Flashotp-Delivery"
)

// Apps gives the webhook URL and secret of an app; *apps.Registry is one.
type Apps interface {
	Get(id string) (apps.App, bool)
	WebhookSecret(id string) ([]byte, error)
}

var _ Apps = (*apps.Registry)(nil)

// Store keeps the queue; *store.DB is one. Deliveries are put in it by Enqueue, through the Outbox of the
// transaction that records what they report.
type Store interface {
	// Deliveries calls fn with the ID and record of each queued delivery, in the order they were queued,
	// until fn returns false. The record is valid only during the call.
	Deliveries(ctx context.Context, fn func(id string, d []byte) bool) error
	// PutDelivery replaces the record of delivery id.
	PutDelivery(ctx context.Context, id string, d []byte) error
	// DeleteDelivery removes delivery id.
	DeleteDelivery(ctx context.Context, id string) error
	// Claim takes delivery id for this engine for hold and reports whether it did: not while another
	// engine sharing the store holds it (a store one engine has alone: always). PutDelivery and
	// DeleteDelivery end the hold; an engine that dies holding one lets it go when hold runs out.
	Claim(ctx context.Context, id string, hold time.Duration) (bool, error)
}

// Outbox is where Enqueue puts a delivery: the store's, in the transaction of the change the delivery
// reports, so both are stored or neither.
//
// It is an alias of an unnamed interface type, as otp.Outbox is, so that *Queue is an otp.Notifier
// without either package importing the other.
type Outbox = interface {
	// PutDelivery stores delivery id.
	PutDelivery(id string, delivery []byte) error
}

// Config configures a Queue.
type Config struct {
	Settings              // zero keys take DefaultSettings'
	Workers  int          // deliveries in flight; default 8
	Client   *http.Client // default: one with Timeout
	Now      func() time.Time
	Log      *slog.Logger
	// Delivered, when set, is called after each try with its outcome: "delivered", "retry" or "dropped".
	Delivered func(outcome string)
	// Recent is how many tries Tries keeps, the newest (in memory: lost on restart); default 1000.
	Recent int
}

// Queue is the persisted webhook queue and its deliverer.
type Queue struct {
	cfg  Config
	db   Store
	apps Apps
	wake chan struct{}

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy

	recentMu sync.Mutex
	recent   []Try // a ring of the newest tries; next is where the next goes
	next     int
	full     bool
}

// delivery is one queued webhook.
type delivery struct {
	AppID          string          `json:"appid"`
	VerificationID string          `json:"verification_id"`
	Body           json.RawMessage `json:"body"`
	QueuedAt       time.Time       `json:"queued_at"`
	Tries          int             `json:"tries"`
	NextAt         time.Time       `json:"next_at"`
	LastError      string          `json:"last_error,omitempty"`
}

// New returns a queue over db.
func New(cfg Config, db Store, a Apps) *Queue {
	cfg.Settings = cfg.Settings.withDefaults()
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Delivered == nil {
		cfg.Delivered = func(string) {}
	}
	if cfg.Recent <= 0 {
		cfg.Recent = 1000
	}
	return &Queue{cfg: cfg, db: db, apps: a, wake: make(chan struct{}, 1), entropy: ulid.Monotonic(rand.Reader, 0), recent: make([]Try, cfg.Recent)}
}

// Enqueue queues body for app's webhook in tx (otp.Notifier).
func (q *Queue) Enqueue(tx Outbox, appID, verificationID string, body []byte) error {
	now := q.cfg.Now().UTC()
	q.idMu.Lock()
	id := "wh_" + ulid.MustNew(ulid.Timestamp(now), q.entropy).String()
	q.idMu.Unlock()
	v, err := json.Marshal(delivery{AppID: appID, VerificationID: verificationID, Body: body, QueuedAt: now, NextAt: now})
	if err != nil {
		return err
	}
	if err := tx.PutDelivery(id, v); err != nil {
		return err
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers the queue until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	for {
		wait := q.round(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// roundSize bounds the deliveries one round reads.
const roundSize = 1000

// round delivers the first due delivery of each verification, and returns how long to wait for the next.
func (q *Queue) round(ctx context.Context) time.Duration {
	now := q.cfg.Now()
	type item struct {
		id string
		d  delivery
	}
	var due []item
	seen := map[string]bool{}
	wait := 250 * time.Millisecond
	n := 0
	_ = q.db.Deliveries(ctx, func(k string, v []byte) bool {
		n++
		var d delivery
		if json.Unmarshal(v, &d) != nil || seen[d.VerificationID] {
			return n < roundSize
		}
		seen[d.VerificationID] = true // later ones of this verification wait for this one
		if d.NextAt.After(now) {
			wait = min(wait, d.NextAt.Sub(now))
			return n < roundSize
		}
		due = append(due, item{k, d})
		return n < roundSize
	})
	if len(due) == 0 {
		return wait
	}
	sem := make(chan struct{}, q.cfg.Workers)
	var wg sync.WaitGroup
	for _, it := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// Engines sharing the store each read the queue: one of them delivers each delivery.
			if ok, err := q.db.Claim(ctx, it.id, 2*q.cfg.Timeout); err != nil || !ok {
				return
			}
			q.deliver(ctx, it.id, it.d)
		}()
	}
	wg.Wait()
	return 0
}

// deliver tries one delivery and records how it went.
func (q *Queue) deliver(ctx context.Context, id string, d delivery) {
	url, status, err := q.post(ctx, id, d)
	now := q.cfg.Now()
	try := Try{At: now.UTC(), AppID: d.AppID, VerificationID: d.VerificationID, Event: eventOf(d.Body), URL: url, Status: status, Try: d.Tries + 1}
	if err != nil {
		try.Error = err.Error()
	}
	// How it went is recorded even when the queue is stopping meanwhile.
	ctx = context.WithoutCancel(ctx)
	var outcome string
	txErr := func() error {
		switch {
		case err == nil:
			outcome = "delivered"
			return q.db.DeleteDelivery(ctx, id)
		case now.Sub(d.QueuedAt) >= q.cfg.GiveUpAfter:
			outcome = "dropped"
			return q.db.DeleteDelivery(ctx, id)
		}
		outcome = "retry"
		d.Tries++
		backoff := q.cfg.RetryMin << min(d.Tries-1, 30)
		if backoff <= 0 || backoff > q.cfg.RetryMax {
			backoff = q.cfg.RetryMax
		}
		d.NextAt, d.LastError = now.Add(backoff), err.Error()
		v, merr := json.Marshal(d)
		if merr != nil {
			return merr
		}
		return q.db.PutDelivery(ctx, id, v)
	}()
	if txErr != nil {
		q.cfg.Log.Error("webhook queue", "delivery", id, "err", txErr)
		return
	}
	try.Outcome = outcome
	q.remember(try)
	q.cfg.Delivered(outcome)
	if outcome != "delivered" {
		q.cfg.Log.Warn("webhook not delivered", "delivery", id, "appid", d.AppID, "verification_id", d.VerificationID,
			"tries", d.Tries, "outcome", outcome, "err", err)
	}
}

var errNoURL = errors.New("the app has no webhook_url")

// post tries delivery id: it returns the URL it went to and the HTTP status that came back (0: none).
func (q *Queue) post(ctx context.Context, id string, d delivery) (url string, status int, err error) {
	app, ok := q.apps.Get(d.AppID)
	if !ok || app.WebhookURL == "" {
		return "", 0, errNoURL
	}
	resp, err := q.send(ctx, app.ID, app.WebhookURL, id, d.Body)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			status = se.status
		}
		return app.WebhookURL, status, err
	}
	resp.Body.Close()
	return app.WebhookURL, resp.StatusCode, nil
}

// statusError is an answer that was not a 2xx.
type statusError struct {
	url    string
	status int
	text   string
}

func (e *statusError) Error() string { return fmt.Sprintf("%s answered %s", e.url, e.text) }

// send POSTs a signed body and returns a 2xx response, or an error.
func (q *Queue) send(ctx context.Context, appID, url, id string, body []byte) (*http.Response, error) {
	secret, err := q.apps.WebhookSecret(appID)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flashotp")
	req.Header.Set(HeaderSignature, Sign(secret, q.cfg.Now(), body))
	req.Header.Set(HeaderDelivery, id)
	resp, err := q.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &statusError{url: url, status: resp.StatusCode, text: resp.Status}
	}
	return resp, nil
}

// Sign returns the X-Flashotp-Signature value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// PreSend asks app's pre-send hook whether to send (otp.Notifier): the hook answers 2xx with
// {"allow": true|false}. Any other answer, or none within the hook's timeout, is an error.
func (q *Queue) PreSend(ctx context.Context, app apps.App, body []byte) (bool, error) {
	h := app.PreSendHook
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	resp, err := q.send(ctx, app.ID, h.URL, "pre_"+strconv.FormatInt(q.cfg.Now().UnixNano(), 36), body)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var answer struct {
		Allow *bool `json:"allow"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&answer); err != nil || answer.Allow == nil {
		return false, fmt.Errorf("pre-send hook answer: want {\"allow\": true|false}")
	}
	return *answer.Allow, nil
}

// Try is one try of a webhook delivery, as the console shows it in a verification's timeline and an app's
// last deliveries.
type Try struct {
	At             time.Time `json:"at"`
	AppID          string    `json:"app_id"`
	VerificationID string    `json:"verification_id"`
	Event          string    `json:"event"`
	URL            string    `json:"url"`
	Status         int       `json:"status"`  // the HTTP status that came back; 0: none
	Outcome        string    `json:"outcome"` // delivered, retry or dropped
	Try            int       `json:"try"`     // 1 for the first
	Error          string    `json:"error"`   // why it was not delivered
}

// eventOf is the event a webhook body reports (otp.WebhookBody's), or "".
func eventOf(body []byte) string {
	var b struct {
		Event string `json:"event"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Event
}

func (q *Queue) remember(t Try) {
	q.recentMu.Lock()
	defer q.recentMu.Unlock()
	q.recent[q.next] = t
	q.next = (q.next + 1) % len(q.recent)
	q.full = q.full || q.next == 0
}

// Tries returns the newest tries kept (Config.Recent, in memory since the start), newest first: of app
// appID and verification verificationID when they are not empty, at most limit (0: all kept).
func (q *Queue) Tries(appID, verificationID string, limit int) []Try {
	q.recentMu.Lock()
	defer q.recentMu.Unlock()
	n := q.next
	if q.full {
		n = len(q.recent)
	}
	out := []Try{}
	for i := range n {
		t := q.recent[(q.next-1-i+len(q.recent))%len(q.recent)]
		if appID != "" && t.AppID != appID || verificationID != "" && t.VerificationID != verificationID {
			continue
		}
		out = append(out, t)
		if len(out) == limit {
			break
		}
	}
	return out
}
