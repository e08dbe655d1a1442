package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"flashotp/dialer"
	"flashotp/metrics"
	"flashotp/numberpool"
	"flashotp/sip"
	"flashotp/store"
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
	CreatedAt         time.Time `json:"created_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	Call              Call      `json:"call"`
}

// Call is the flash call of a verification.
type Call struct {
	State   sip.State `json:"state"`
	SIPCode int       `json:"sip_code"`
	Reason  string    `json:"reason"`
	Trunk   string    `json:"trunk"`
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
	CodeMAC     []byte `json:"code_mac"`
	MaxAttempts int    `json:"max_attempts"`
}

// Store is the persistence the service needs; *store.DB is one.
type Store interface {
	Key() []byte
	Create(id string, v []byte) error
	Get(id string) ([]byte, error)
	Update(id string, fn func(old []byte) ([]byte, error)) error
	Delete(id string) error
	UpdateAll(fn func(id string, v []byte) ([]byte, bool, error)) error
}

var _ Store = (*store.DB)(nil)

// Dialer accepts calls; *dialer.Dialer is one.
type Dialer interface {
	Submit(r dialer.Request) error
}

var _ Dialer = (*dialer.Dialer)(nil)

// Numbers draws caller IDs and hears of their rejections; *numberpool.Registry is one.
type Numbers interface {
	Pick(req numberpool.PickRequest) (numberpool.Picked, error)
	Reject(cli string, sipCode int, reason string, rang bool)
}

var _ Numbers = (*numberpool.Registry)(nil)

// Config configures a Service.
type Config struct {
	Metrics     *metrics.Metrics // nil: none
	Apps        []string         // the IDs of the apps
	CodeLength  int              // default code length
	TTL         time.Duration
	MaxAttempts int
	Now         func() time.Time // nil: time.Now
}

// Service runs verifications.
type Service struct {
	live    sync.Map // verification ID → *liveCall, while its call is in flight
	cfg     Config
	store   Store
	numbers Numbers
	dialer  Dialer
	log     *slog.Logger
	now     func() time.Time
}

// New returns a service over st drawing CLIs from numbers. UseDialer must be called before Send.
func New(cfg Config, st Store, numbers Numbers, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, store: st, numbers: numbers, log: log, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// UseDialer sets the dialer calls go to.
func (s *Service) UseDialer(d Dialer) { s.dialer = d }

// SendRequest is a request for a flash call.
type SendRequest struct {
	AppID      string
	Recipient  string
	Channel    string
	From       string // optional: the name of one of the app's pools
	CodeLength int    // optional: 0 for the default
	Reference  string // optional, echoed back
}

// Send validates req, stores a new verification and queues its flash call.
func (s *Service) Send(req SendRequest) (Verification, error) {
	if !slices.Contains(s.cfg.Apps, req.AppID) {
		return Verification{}, errorf(ErrInvalidRequest, "appid: unknown app %q", req.AppID)
	}
	if req.Channel != ChannelFlashCall {
		return Verification{}, errorf(ErrInvalidRequest, "channel: must be %q", ChannelFlashCall)
	}
	if len(req.Reference) > 128 || strings.ContainsFunc(req.Reference, isControl) {
		return Verification{}, errorf(ErrInvalidRequest, "reference: at most 128 characters, no control characters")
	}
	if req.From != "" && (len(req.From) > 64 || strings.ContainsFunc(req.From, isControl)) {
		return Verification{}, errorf(ErrInvalidRequest, "from: must name one of the app's pools")
	}
	codeLength := req.CodeLength
	if codeLength == 0 {
		codeLength = s.cfg.CodeLength
	}
	if codeLength < 4 || codeLength > 8 {
		return Verification{}, errorf(ErrInvalidRequest, "code_length: must be 4 to 8")
	}
	recipient, country, err := NormalizeRecipient(req.Recipient)
	if err != nil {
		return Verification{}, err
	}
	picked, err := s.numbers.Pick(numberpool.PickRequest{App: req.AppID, Pool: req.From, Recipient: recipient, Country: country, CodeLength: codeLength})
	switch {
	case errors.Is(err, numberpool.ErrNotFound):
		return Verification{}, errorf(ErrInvalidRequest, "from: %v", err)
	case errors.Is(err, numberpool.ErrCodeSpace):
		return Verification{}, errorf(ErrInvalidRequest, "code_length: %v", err)
	case errors.Is(err, numberpool.ErrNoNumbers):
		return Verification{}, errorf(ErrDestinationBlocked, "%v", err)
	case errors.Is(err, numberpool.ErrExhausted):
		return Verification{}, errorf(ErrUnavailable, "%v", err)
	case err != nil:
		return Verification{}, err
	}
	cli, prefix, code := picked.CLI, picked.Prefix, picked.Code
	s.cfg.Metrics.Picked(picked.Pool)

	now := s.now().UTC()
	rec := record{
		Verification: Verification{
			ID:                "otp_" + ulid.Make().String(),
			AppID:             req.AppID,
			Recipient:         recipient,
			Channel:           ChannelFlashCall,
			Status:            StatusPending,
			CodeLength:        codeLength,
			CLIPrefix:         prefix,
			CLIPattern:        picked.Pattern,
			Reference:         req.Reference,
			AttemptsRemaining: s.cfg.MaxAttempts,
			CreatedAt:         now,
			ExpiresAt:         now.Add(s.cfg.TTL),
			Call:              Call{State: sip.StateQueued},
		},
		MaxAttempts: s.cfg.MaxAttempts,
	}
	rec.CodeMAC = s.mac(rec.ID, code)
	data, err := json.Marshal(rec)
	if err != nil {
		return Verification{}, err
	}
	if err := s.store.Create(rec.ID, data); err != nil {
		return Verification{}, fmt.Errorf("store verification: %w", err)
	}
	if err := s.dialer.Submit(dialer.Request{App: req.AppID, ID: rec.ID, To: recipient, CLI: cli, Trunks: picked.Trunks}); err != nil {
		if derr := s.store.Delete(rec.ID); derr != nil {
			s.log.Error("verification left after refused call", "verification_id", rec.ID, "err", derr)
		}
		return Verification{}, errorf(ErrUnavailable, "no capacity for the call: %v", err)
	}
	s.log.Info("send_requested", "verification_id", rec.ID, "appid", rec.AppID, "cli_prefix", prefix)
	return rec.Verification, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (s *Service) mac(id, code string) []byte {
	m := hmac.New(sha256.New, s.store.Key())
	m.Write([]byte(id))
	m.Write([]byte{0}) // id never holds NUL: the split between id and code is unambiguous
	m.Write([]byte(code))
	return m.Sum(nil)
}

// VerifyRequest is a code the user typed (or the app read from the call log).
type VerifyRequest struct {
	AppID          string
	VerificationID string
	Code           string
}

// Verify checks the code. It returns the approved verification, or an *Error whose Code says why not.
// Every wrong code counts as an attempt, recorded durably before the answer.
func (s *Service) Verify(req VerifyRequest) (Verification, error) {
	code := strings.TrimPrefix(req.Code, "+")
	if len(code) < 4 || len(code) > 15 || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return Verification{}, errorf(ErrInvalidRequest, "otp_code: want the code's digits, or the whole caller ID")
	}
	if !validID(req.VerificationID) {
		return Verification{}, errorf(ErrInvalidRequest, "verification_id: malformed")
	}
	var (
		out    Verification
		result error
	)
	err := s.store.Update(req.VerificationID, func(old []byte) ([]byte, error) {
		var rec record
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("decode %s: %w", req.VerificationID, err)
		}
		if rec.AppID != req.AppID {
			return nil, errorf(ErrNotFound, "no verification %s", req.VerificationID)
		}
		result = s.check(&rec, code)
		out = rec.Verification
		return json.Marshal(rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return Verification{}, errorf(ErrNotFound, "no verification %s", req.VerificationID)
	}
	if err != nil {
		return Verification{}, err
	}
	s.withProgress(&out)
	s.log.Info("verify", "verification_id", out.ID, "result", ResultName(result), "attempts", out.Attempts)
	return out, result
}

// ResultName names how a verify went: "approved", an error code (invalid_code, expired, …), or "internal".
func ResultName(err error) string {
	var e *Error
	switch {
	case err == nil:
		return "approved"
	case errors.As(err, &e):
		return e.Code.Error()
	}
	return "internal"
}

// check applies one verify attempt to rec, in the order the API promises, and says how it went.
func (s *Service) check(rec *record, code string) error {
	now := s.now()
	switch {
	case rec.Status == StatusApproved:
		return errorf(ErrAlreadyVerified, "code already used")
	case rec.Status == StatusFailed:
		return errorf(ErrUndeliverable, "the call failed before it rang (%s); send again", rec.Call.Reason)
	case rec.Status == StatusExpired || rec.Status == StatusPending && !now.Before(rec.ExpiresAt):
		rec.Status = StatusExpired
		return errorf(ErrExpired, "verification expired at %s", rec.ExpiresAt.Format(time.RFC3339))
	case rec.Status != StatusPending:
		return errorf(ErrNotFound, "verification is %s", rec.Status)
	case rec.Attempts >= rec.MaxAttempts:
		return errorf(ErrMaxAttempts, "all %d attempts used", rec.MaxAttempts)
	}

	// The whole CLI as the call log shows it (E.164, national, 00-international): its last digits are the
	// code. The rest is not checked: it is public (cli_prefix), so it would add nothing against guessing,
	// and phones write it in too many ways.
	digits := code[len(code)-min(len(code), rec.CodeLength):]
	if hmac.Equal(s.mac(rec.ID, digits), rec.CodeMAC) {
		rec.Status = StatusApproved
		return nil
	}
	rec.Attempts++
	rec.AttemptsRemaining = rec.MaxAttempts - rec.Attempts
	if rec.AttemptsRemaining <= 0 {
		return errorf(ErrMaxAttempts, "wrong code; all %d attempts used", rec.MaxAttempts)
	}
	left := rec.AttemptsRemaining
	e := errorf(ErrInvalidCode, "wrong code")
	e.AttemptsRemaining = &left
	return e
}

// Status returns the verification id of app appID.
func (s *Service) Status(appID, id string) (Verification, error) {
	if !validID(id) {
		return Verification{}, errorf(ErrInvalidRequest, "verification_id: malformed")
	}
	data, err := s.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return Verification{}, errorf(ErrNotFound, "no verification %s", id)
	}
	if err != nil {
		return Verification{}, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Verification{}, fmt.Errorf("decode %s: %w", id, err)
	}
	if rec.AppID != appID {
		return Verification{}, errorf(ErrNotFound, "no verification %s", id)
	}
	if rec.Status == StatusPending && !s.now().Before(rec.ExpiresAt) {
		rec.Status = StatusExpired
	}
	s.withProgress(&rec.Verification)
	return rec.Verification, nil
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

// CallProgress records a call's dialing and ringing (dialer.Reporter).
//
// Progress is kept in memory and shown by Status; only the outcome is written (CallEnded), so a call costs
// two durable writes, its verification and its outcome. A crash loses progress, never an outcome: the
// call is then recovered as interrupted.
func (s *Service) CallProgress(id, trunk string, state sip.State, at time.Time) {
	v, _ := s.live.LoadOrStore(id, &liveCall{call: Call{State: sip.StateQueued}})
	lc := v.(*liveCall)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	at = at.UTC()
	switch {
	case state == sip.StateDialing && lc.call.StartedAt == nil:
		lc.call.StartedAt = &at
	case state == sip.StateRinging && lc.call.StartedAt != nil:
		pdd := at.Sub(*lc.call.StartedAt).Milliseconds()
		lc.call.PostDialDelayMS = &pdd
	}
	// Reports may arrive out of order: the state only moves forward.
	if stateRank[state] > stateRank[lc.call.State] {
		lc.call.State, lc.call.Trunk = state, trunk
	}
}

// liveCall is the progress of a call in flight.
type liveCall struct {
	mu   sync.Mutex
	call Call
}

// withProgress shows the progress of v's call, if it is in flight.
func (s *Service) withProgress(v *Verification) {
	if isFinal(v.Call.State) {
		return
	}
	if l, ok := s.live.Load(v.ID); ok {
		lc := l.(*liveCall)
		lc.mu.Lock()
		v.Call = lc.call
		lc.mu.Unlock()
	}
}

// CallEnded records a call's outcome (dialer.Reporter). A call that failed before it rang fails its
// verification: nothing reached the phone. A trunk's rejection goes to the number pool, which may
// quarantine the CLI.
func (s *Service) CallEnded(id, trunk, cli string, res sip.Result) {
	if res.State == sip.StateFailed && res.SIPCode >= 400 {
		s.numbers.Reject(cli, res.SIPCode, res.Phrase, res.Rang)
	}
	s.updateCall(id, func(rec *record) {
		if isFinal(rec.Call.State) {
			return
		}
		rec.Call.State, rec.Call.SIPCode, rec.Call.Reason = res.State, res.SIPCode, string(res.Reason)
		rec.Call.EarlyMediaPackets = res.EarlyMediaPackets
		if trunk != "" {
			rec.Call.Trunk = trunk
		}
		if rec.Call.StartedAt == nil && !res.StartedAt.IsZero() {
			started := res.StartedAt.UTC()
			rec.Call.StartedAt = &started
		}
		if rec.Call.PostDialDelayMS == nil && res.Rang {
			pdd := res.RingingAt.Sub(res.StartedAt).Milliseconds()
			rec.Call.PostDialDelayMS = &pdd
		}
		ended := res.EndedAt.UTC()
		rec.Call.EndedAt = &ended
		if res.State == sip.StateFailed && !res.Rang && rec.Status == StatusPending {
			rec.Status = StatusFailed
		}
	})
	s.live.Delete(id)
	s.log.Info("call_"+string(res.State), "verification_id", id, "trunk", trunk, "sip_code", res.SIPCode, "reason", res.Reason)
}

// stateRank orders call states; outcomes rank above every progress state.
var stateRank = map[sip.State]int{
	sip.StateQueued: 0, sip.StateDialing: 1, sip.StateRinging: 2,
	sip.StateMissed: 3, sip.StateAnswered: 3, sip.StateFailed: 3,
}

func isFinal(st sip.State) bool {
	return st == sip.StateMissed || st == sip.StateAnswered || st == sip.StateFailed
}

func (s *Service) updateCall(id string, fn func(*record)) {
	err := s.store.Update(id, func(old []byte) ([]byte, error) {
		var rec record
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, err
		}
		fn(&rec)
		return json.Marshal(rec)
	})
	if err != nil {
		s.log.Error("record call state", "verification_id", id, "err", err)
	}
}

// Recover ends the calls a crash left unfinished: each becomes failed with reason interrupted. Their
// verifications stay pending: the INVITE may have gone out (the state is recorded after it leaves, so even
// a queued call may have), and the phone may show the CLI; the user can still enter the code, or the app
// send again. It returns how many calls it ended.
func (s *Service) Recover() (int, error) {
	n := 0
	now := s.now().UTC()
	err := s.store.UpdateAll(func(id string, v []byte) ([]byte, bool, error) {
		var rec record
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, false, fmt.Errorf("decode %s: %w", id, err)
		}
		if isFinal(rec.Call.State) {
			return nil, false, nil
		}
		rec.Call.State, rec.Call.Reason, rec.Call.EndedAt = sip.StateFailed, string(sip.ReasonInterrupted), &now
		n++
		nv, err := json.Marshal(rec)
		return nv, true, err
	})
	return n, err
}
