package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/limits"
	"flashotp/message"
	"flashotp/metrics"
	"flashotp/numberpool"
	"flashotp/stir"
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
	// DialNumber is the number the user calls (channel inbound).
	DialNumber string `json:"dial_number,omitempty"`
	// Call is the latest call of the verification (flash or voice); absent while it has none (an SMS).
	Call Call `json:"call,omitzero"`
	// Steps are its deliveries, oldest first (SPEC section 8).
	Steps []Step `json:"steps,omitempty"`
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
	// CodeMAC is the code of a record stored before steps; a newer one keeps Codes.
	CodeMAC []byte `json:"code_mac,omitempty"`
	// Codes holds each step's code MAC, in the order of Steps; nil once it cannot approve (it was never
	// delivered, a resend replaced it, or it was retired to keep the joint code space).
	Codes [][]byte `json:"macs,omitempty"`
	// Plan holds the workflow's steps not started yet; Next is when the current step's timeout passes.
	Plan   []plan    `json:"plan,omitempty"`
	Next   time.Time `json:"next,omitzero"`
	Locale string    `json:"locale,omitempty"` // the send's (or app's) locale, for later steps
	Email  string    `json:"email,omitempty"`  // the address of email steps
	// Approved is the index of the step whose code approved it; read only once it is approved (before steps:
	// the flash call).
	Approved    int       `json:"approved_step,omitempty"`
	MaxAttempts int       `json:"max_attempts"`
	Country     string    `json:"country"`
	SentAt      time.Time `json:"sent_at"`             // the latest send or resend
	From        string    `json:"from_pool,omitempty"` // the pool the send asked for, for resends
	// Tally is what the verification counted in the reports, entry by entry (tally.go): counted again from
	// the records after a crash.
	Tally []tallyOp `json:"tl,omitempty"`
	// Node is the engine that placed its latest call or message, on a store engines share (nodes.go): only
	// that engine, or the one that takes over once its lease ran out, ends it after a crash.
	Node string `json:"nd,omitempty"`
}

// Dialer accepts calls; *dialer.Dialer is one. Its refusals are the API's answers: *fault.Error of code
// fault.Unavailable, a RetryAfter when it knows one.
type Dialer interface {
	Submit(r dialer.Request) error
	// Available says why a call on trunks (empty: any) would be refused now, if it would.
	Available(trunks []string) error
}

var _ Dialer = (*dialer.Dialer)(nil)

// Numbers draws caller IDs and hears of their rejections; *numberpool.Registry is one.
type Numbers interface {
	Pick(ctx context.Context, req numberpool.PickRequest) (numberpool.Picked, error)
	Reject(ctx context.Context, cli string, sipCode int, reason string, rang bool)
	// DialNumber draws a number of pool for a caller in country to call (channel inbound); HasNumber
	// reports whether number is one of pool's.
	DialNumber(pool, country string) (string, error)
	HasNumber(pool, number string) bool
}

var _ Numbers = (*numberpool.Registry)(nil)

// Apps gives each app's settings, defaults filled; *apps.Registry is one.
type Apps interface {
	Get(id string) (apps.App, bool)
	// List returns every app (an inbound call looks for the apps whose numbers it called).
	List() []apps.App
}

var _ Apps = (*apps.Registry)(nil)

// Notifier queues an app's webhook in the transaction that records its event (so the event and its
// delivery are stored together), and asks an app's pre-send hook.
type Notifier interface {
	Enqueue(tx Outbox, appID, verificationID string, body []byte) error
	PreSend(ctx context.Context, app apps.App, body []byte) (allow bool, err error)
}

// Config configures a Service.
type Config struct {
	Metrics *metrics.Metrics // nil: none
	// Identity verifies inbound calls' STIR/SHAKEN PASSporTs; nil: their Identity headers are not read.
	Identity  *stir.Verifier
	Apps      Apps
	Dialer    Dialer           // places the calls
	Notifier  Notifier         // nil: no webhooks, no pre-send hooks
	Limiter   *limits.Limiter  // nil: a new one on Now
	Retention time.Duration    // verifications and events older than this are deleted; 0: kept
	Now       func() time.Time // nil: time.Now
	Key       []byte           // the server key codes are MACed under
	// MinCodeSpace bounds the joint code space of a verification's live codes (SPEC section 3).
	MinCodeSpace int
	Voice        VoiceChannel // the voice channel; no Prompts: off
	SMS          SMSChannel   // the sms channel
	// Senders deliver the channels that do not go over the trunk, by channel: sms (when SMS.Via is not
	// trunk), whatsapp, email. A channel without one is not offered.
	Senders map[string]message.Sender
	// MessageTimeout bounds a sender's hand-over of a message (a step's own timeout, when shorter, bounds
	// it instead); 0: 30s.
	MessageTimeout time.Duration
	// Nodes holds the leases of the engines sharing the store (nil: the store is this engine's alone);
	// Node is this engine's ID among them and Lease how long its lease lasts unrenewed (nodes.go).
	Nodes Nodes
	Node  string
	Lease time.Duration
}

// Prompter builds the audio that speaks a code; *voice.Library is one.
type Prompter interface {
	// Match returns the available locale nearest to locale.
	Match(locale string) string
	// Prompt returns the prompt that speaks code in Match(locale), as 8 kHz mu-law.
	Prompt(locale, code string) ([]byte, error)
}

// VoiceChannel configures the voice channel (config section voice).
type VoiceChannel struct {
	Prompts       Prompter
	CallerID      string // empty: a number of the app's pools
	AnswerTimeout time.Duration
	Repeat        int
}

// SMSChannel configures the sms channel (config section sms). The text comes from the app's templates.
type SMSChannel struct {
	Via    string // trunk
	Sender string // empty: a number of the app's pools
}

// Service runs verifications.
type Service struct {
	live sync.Map // verification ID → *liveCall, while its call is in flight
	// unrecorded are the outcomes the store failed to take, tried again by Run.
	unrecorded unrecorded
	cfg        Config
	db         Store
	numbers    Numbers
	dialer     Dialer
	limiter    *limits.Limiter
	log        *slog.Logger
	now        func() time.Time

	idMu   sync.Mutex
	idRand *ulid.MonotonicEntropy // event and attempt IDs: strictly increasing, so cursors are stable

	sending sync.WaitGroup // messages handed to Senders whose outcome is not recorded yet
	act     activity       // counts for the activity summary (activity.go)
	reports reportBook     // report counts not yet durable (tally.go)
	leading atomic.Bool    // this engine leads the engines sharing the store (nodes.go)
	// renewing is when this engine's lease renewals last began to succeed without a break (tendLeases'
	// goroutine only); zero after a renewal failed.
	renewing time.Time
	renewed  time.Time // the last renewal that succeeded (tendLeases' goroutine only)
}

// New returns a service over db drawing CLIs from numbers, calling through cfg.Dialer.
func New(cfg Config, db Store, numbers Numbers, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, db: db, numbers: numbers, dialer: cfg.Dialer, log: log, now: cfg.Now, limiter: cfg.Limiter,
		idRand: ulid.Monotonic(rand.Reader, 0)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limiter == nil {
		s.limiter = limits.New(s.now)
	}
	if s.cfg.Lease <= 0 {
		s.cfg.Lease = DefaultLease
	}
	return s
}

// newID returns prefix and a ULID of now, strictly above every earlier one.
func (s *Service) newID(prefix string, at time.Time) string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return prefix + ulid.MustNew(ulid.Timestamp(at), s.idRand).String()
}

func (s *Service) app(id string) (apps.App, error) {
	a, ok := s.cfg.Apps.Get(id)
	if !ok {
		return apps.App{}, fault.Errorf(fault.InvalidRequest, "appid: unknown app %q", id)
	}
	return a, nil
}

func (s *Service) mac(id, code string) []byte {
	m := hmac.New(sha256.New, s.cfg.Key)
	m.Write([]byte(id))
	m.Write([]byte{0}) // id never holds NUL: the split between id and code is unambiguous
	m.Write([]byte(code))
	return m.Sum(nil)
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
