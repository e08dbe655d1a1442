package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/limits"
	"flashotp/metrics"
	"flashotp/numberpool"
)

// Status is where a verification stands.
type Status string

// Verification statuses.
const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusExpired  Status = "expired"
	StatusFailed   Status = "failed"
	StatusCanceled Status = "canceled"
)

// ChannelFlashCall is the only channel so far.
const ChannelFlashCall = "flashcall"

// Verification is one verification as the API shows it. It never holds the code or the whole CLI.
type Verification struct {
	ID         string `json:"verification_id"`
	AppID      string `json:"appid"`
	Recipient  string `json:"recipient"`
	Channel    string `json:"channel"`
	Status     Status `json:"status"`
	CodeLength int    `json:"code_length"`
	CLIPrefix  string `json:"cli_prefix"`
	// CLIPattern matches every CLI this verification's call may come from (code digits free), for apps
	// that read the call log.
	CLIPattern        string    `json:"cli_pattern"`
	Reference         string    `json:"reference,omitempty"`
	Attempts          int       `json:"attempts"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	Resends           int       `json:"resends"`
	CreatedAt         time.Time `json:"created_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	Call              Call      `json:"call"`
}

// Call is the flash call of a verification (its latest, after a resend).
type Call struct {
	State   call.State `json:"state"`
	SIPCode int        `json:"sip_code"`
	Reason  string     `json:"reason"`
	Trunk   string     `json:"trunk"`
	// PostDialDelayMS is the time from INVITE to the first 180/183; null until it rang.
	PostDialDelayMS *int64     `json:"post_dial_delay_ms"`
	StartedAt       *time.Time `json:"started_at"`
	EndedAt         *time.Time `json:"ended_at"`
	// EarlyMediaPackets counts the RTP packets the callee sent before the call ended (183 with SDP).
	EarlyMediaPackets uint64 `json:"early_media_packets"`
}

// record is what the store keeps: the verification plus what must never leave the engine.
type record struct {
	Verification
	CodeMAC     []byte    `json:"code_mac"`
	MaxAttempts int       `json:"max_attempts"`
	Country     string    `json:"country"`
	SentAt      time.Time `json:"sent_at"`             // the latest send or resend
	From        string    `json:"from_pool,omitempty"` // the pool the send asked for, for resends
}

// Dialer accepts calls; *dialer.Dialer is one.
type Dialer interface {
	Submit(r dialer.Request) error
	// Available says why a call on trunks (empty: any) would be refused now, if it would.
	Available(trunks []string) error
}

var _ Dialer = (*dialer.Dialer)(nil)

// Numbers draws caller IDs and hears of their rejections; *numberpool.Registry is one.
type Numbers interface {
	Pick(req numberpool.PickRequest) (numberpool.Picked, error)
	Reject(cli string, sipCode int, reason string, rang bool)
}

var _ Numbers = (*numberpool.Registry)(nil)

// Apps gives each app's settings, defaults filled; *apps.Registry is one.
type Apps interface {
	Get(id string) (apps.App, bool)
}

var _ Apps = (*apps.Registry)(nil)

// Notifier queues an app's webhook in the transaction that records its event (so the event and its
// delivery are stored together), and asks an app's pre-send hook.
type Notifier interface {
	Enqueue(tx Outbox, appID, verificationID string, body []byte) error
	PreSend(app apps.App, body []byte) (allow bool, err error)
}

// Config configures a Service.
type Config struct {
	Metrics   *metrics.Metrics // nil: none
	Apps      Apps
	Notifier  Notifier         // nil: no webhooks, no pre-send hooks
	Limiter   *limits.Limiter  // nil: a new one on Now
	Retention time.Duration    // verifications and events older than this are deleted; 0: kept
	Now       func() time.Time // nil: time.Now
	Key       []byte           // the server key codes are MACed under
}

// Service runs verifications.
type Service struct {
	live    sync.Map // verification ID → *liveCall, while its call is in flight
	cfg     Config
	db      Store
	numbers Numbers
	dialer  Dialer
	limiter *limits.Limiter
	log     *slog.Logger
	now     func() time.Time

	idMu   sync.Mutex
	idRand *ulid.MonotonicEntropy // event and attempt IDs: strictly increasing, so cursors are stable
}

// New returns a service over db drawing CLIs from numbers. UseDialer must be called before Send.
func New(cfg Config, db Store, numbers Numbers, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, db: db, numbers: numbers, log: log, now: cfg.Now, limiter: cfg.Limiter,
		idRand: ulid.Monotonic(rand.Reader, 0)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limiter == nil {
		s.limiter = limits.New(s.now)
	}
	return s
}

// UseDialer sets the dialer calls go to.
func (s *Service) UseDialer(d Dialer) { s.dialer = d }

// newID returns prefix and a ULID of now, strictly above every earlier one.
func (s *Service) newID(prefix string, at time.Time) string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return prefix + ulid.MustNew(ulid.Timestamp(at), s.idRand).String()
}

// SendRequest is a request for a flash call.
type SendRequest struct {
	AppID      string
	Recipient  string
	Channel    string
	From       string // optional: the name of one of the app's pools
	CodeLength int    // optional: 0 for the app's
	Reference  string // optional, echoed back
}

func (s *Service) app(id string) (apps.App, error) {
	a, ok := s.cfg.Apps.Get(id)
	if !ok {
		return apps.App{}, fault.Errorf(fault.InvalidRequest, "appid: unknown app %q", id)
	}
	return a, nil
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
	to, err := checkRecipient(req.Recipient, app)
	if err != nil {
		return Verification{}, err
	}
	if err := s.available(); err != nil {
		return Verification{}, err
	}
	if err := s.allowSend(app, to.E164); err != nil {
		return Verification{}, err
	}
	if err := s.preSend(app, to, req.Reference); err != nil {
		return Verification{}, err
	}
	picked, err := s.pick(app.ID, req.From, to, codeLength)
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

// allowSend checks and counts the send limits of app for recipient (and refuses a recipient locked out by
// failed verifications).
func (s *Service) allowSend(app apps.App, recipient string) error {
	if err := s.lockedOut(app, recipient); err != nil {
		return err
	}
	denied, retry := s.limiter.Allow(
		check(app, apps.ScopeRecipient, recipient),
		check(app, apps.ScopeApp, app.ID),
		check(app, apps.ScopePrefix, prefixOf(recipient)),
	)
	if denied != nil {
		return rateLimited(*denied, retry)
	}
	return nil
}

// lockedOut refuses a recipient whose failed verifications filled the app's failed_verifications limit.
func (s *Service) lockedOut(app apps.App, recipient string) error {
	c := check(app, apps.ScopeFailedVerifications, recipient)
	if full, retry := s.limiter.Full(c); full {
		return rateLimited(c, retry)
	}
	return nil
}

// prefixOf is the number range a recipient belongs to for the prefix limit.
func prefixOf(recipient string) string { return recipient[:len(recipient)-apps.PrefixFreeDigits] }

// check is app's rule for scope applied to key. Limiter keys are per app: apps never share a count.
func check(app apps.App, scope, key string) limits.Check {
	l := app.RateLimits[scope]
	return limits.Check{Rule: limits.Rule{Scope: scope, Limit: l.Limit, Window: time.Duration(l.Window)}, Key: app.ID + "/" + key}
}

func rateLimited(c limits.Check, retry time.Duration) *fault.Error {
	e := fault.Errorf(fault.RateLimited, "%s limit reached: %d per %s", c.Scope, c.Limit, c.Window)
	e.RetryAfter, e.Scope = retry, c.Scope
	return e
}

// AllowRequest checks and counts a request of app's API key from the client address ip (the client
// scope).
func (s *Service) AllowRequest(appID, key, ip string) error {
	app, err := s.app(appID)
	if err != nil {
		return err
	}
	if denied, retry := s.limiter.Allow(check(app, apps.ScopeClient, key+"/"+ip)); denied != nil {
		return rateLimited(*denied, retry)
	}
	return nil
}

// preSend asks the app's pre-send hook, if it has one.
func (s *Service) preSend(app apps.App, to Recipient, reference string) error {
	if app.PreSendHook == nil || s.cfg.Notifier == nil {
		return nil
	}
	body, _ := json.Marshal(map[string]string{
		"appid": app.ID, "recipient": to.E164, "country": to.Country, "number_type": numberTypeName(to), "reference": reference,
	})
	allow, err := s.cfg.Notifier.PreSend(app, body)
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

func (s *Service) pick(appID, from string, to Recipient, codeLength int) (numberpool.Picked, error) {
	picked, err := s.numbers.Pick(numberpool.PickRequest{App: appID, Pool: from, Recipient: to.E164, Country: to.Country, CodeLength: codeLength})
	if err != nil {
		return picked, err
	}
	s.cfg.Metrics.Picked(picked.Pool)
	return picked, nil
}

// available refuses a send or resend before anything is counted or stored when the dialer could take no
// call now: every trunk down, or shutting down.
func (s *Service) available() error {
	if err := s.dialer.Available(nil); err != nil {
		return unavailable(err)
	}
	return nil
}

func (s *Service) submit(rec *record, picked numberpool.Picked) error {
	err := s.dialer.Submit(dialer.Request{App: rec.AppID, ID: rec.ID, To: rec.Recipient, CLI: picked.CLI, Trunks: picked.Trunks})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable is the API error for a call the dialer refused; with every trunk down it says when a probe
// may bring one back.
func unavailable(err error) *fault.Error {
	var down *dialer.DownError
	if errors.As(err, &down) {
		e := fault.Errorf(fault.Unavailable, "no trunk can take the call: %v", err)
		e.RetryAfter = down.RetryAfter
		return e
	}
	return fault.Errorf(fault.Unavailable, "no capacity for the call: %v", err)
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

func (s *Service) mac(id, code string) []byte {
	m := hmac.New(sha256.New, s.cfg.Key)
	m.Write([]byte(id))
	m.Write([]byte{0}) // id never holds NUL: the split between id and code is unambiguous
	m.Write([]byte(code))
	return m.Sum(nil)
}

// get reads the record id in tx.
func get(tx Tx, id string) (*record, error) { return decode(id, tx.Verification(id)) }

// decode decodes the record v of verification id; nil is not found.
func decode(id string, v []byte) (*record, error) {
	if v == nil {
		return nil, fault.Errorf(fault.NotFound, "no verification %s", id)
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &rec, nil
}

// getOwn reads the record id of app appID; another app's is not found.
func getOwn(tx Tx, appID, id string) (*record, error) {
	if !validID(id) {
		return nil, fault.Errorf(fault.InvalidRequest, "verification_id: malformed")
	}
	rec, err := get(tx, id)
	if err == nil && rec.AppID != appID {
		return nil, fault.Errorf(fault.NotFound, "no verification %s", id)
	}
	return rec, err
}

func (s *Service) put(tx Tx, rec *record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.PutVerification(rec.ID, v)
}

// storeFailed turns an error of the store (a full, read-only or failing disk) into unavailable: the
// transaction rolled back (but see store.ErrFailed), so the request may be retried. The detail is logged.
// The caller's own errors (a *fault.Error hiding nothing) pass as they are.
func (s *Service) storeFailed(what string, err error) error {
	var e *fault.Error
	if errors.As(err, &e) && e.Err == nil {
		return err
	}
	s.log.Error(what, "err", err)
	e = fault.Errorf(fault.Unavailable, "the store cannot take writes now (a full or failing disk); try again")
	e.RetryAfter = 5 * time.Second
	return e
}

// errUnchanged is returned by a modify mutation that has nothing to change.
var errUnchanged = errors.New("unchanged")

// errRaced is returned inside modify's transaction when the record changed since it was read.
var errRaced = errors.New("record changed meanwhile")

// modify changes the record id: mutate runs on a copy read outside the write transaction, then the result
// is stored, with what write adds beside it, in one group-committed transaction, provided the stored record
// is still the one read; if another change came first, it starts over. Decoding and encoding records
// happens outside the write transaction (bbolt has one writer at a time), so concurrent verifies and
// outcomes use every core.
func (s *Service) modify(ctx context.Context, id string, mutate func(rec *record) error, write func(tx Tx, rec *record) error) error {
	for {
		var raw []byte
		if err := s.db.View(ctx, func(tx Tx) error {
			raw = tx.Verification(id)
			return nil
		}); err != nil {
			return err
		}
		if raw == nil {
			return fault.Errorf(fault.NotFound, "no verification %s", id)
		}
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		before := rec.Status
		if err := mutate(&rec); err != nil {
			return err
		}
		next, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		err = s.db.Update(ctx, func(tx Tx) error {
			if !tx.VerificationIs(id, raw) {
				return errRaced
			}
			if err := tx.PutVerification(id, next); err != nil {
				return err
			}
			return write(tx, &rec)
		})
		if err == nil {
			s.ended(before, rec.Status)
		}
		if !errors.Is(err, errRaced) {
			return err
		}
	}
}

// ended counts a verification whose status moved from before to a final one, once it is stored.
func (s *Service) ended(before, after Status) {
	if after != before && after != StatusPending {
		s.cfg.Metrics.VerificationEnded(string(after))
	}
}

// Status returns the verification id of app appID.
func (s *Service) Status(ctx context.Context, appID, id string) (Verification, error) {
	var rec *record
	err := s.db.View(ctx, func(tx Tx) error {
		var err error
		rec, err = getOwn(tx, appID, id)
		return err
	})
	if err != nil {
		return Verification{}, err
	}
	return s.view(rec), nil
}

// view is rec as the API shows it now: expired once past expires_at, with its call's live progress.
func (s *Service) view(rec *record) Verification {
	v := rec.Verification
	if v.Status == StatusPending && !s.now().Before(v.ExpiresAt) {
		v.Status = StatusExpired
	}
	s.withProgress(&v)
	return v
}

// validID reports whether id looks like one of ours: "otp_" and a ULID.
func validID(id string) bool {
	rest, ok := strings.CutPrefix(id, "otp_")
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}
