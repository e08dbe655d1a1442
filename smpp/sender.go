package smpp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"flashotp/message"
	"flashotp/sms"
)

// Config is what New needs: the SMSCs in the order they are tried, the default sender, and where
// receipts go.
type Config struct {
	SMSCs []Settings
	// Sender is the source address of a Message without a From (sms.sender): a number in E.164, digits of
	// a short code, or an alphanumeric sender ID. Empty: the SMSC's default.
	Sender string
	// Receipts gets the delivery receipts of the messages sent.
	Receipts message.Receipts
	Logger   *slog.Logger
	// Now is the clock of receipts and of the receipts map's expiry; nil: time.Now.
	Now func() time.Time
}

// How long and how many part message_ids are kept to match their receipts.
const (
	receiptTTL  = 48 * time.Hour
	maxReceipts = 100_000
)

// Backoff of a submit the SMSC answered with a throttling or temporary status.
const (
	firstRetry = 100 * time.Millisecond
	lastRetry  = 5 * time.Second
)

// Sender submits messages to the first bound SMSC of its Config; safe for concurrent use.
type Sender struct {
	cfg      Config
	log      *slog.Logger
	sessions []*session
	cancel   context.CancelFunc
	stopped  context.Context // done once Close began: a Send waiting for a bind fails at once
	wg       sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a session binds or loses its bind
	ids     map[string]idEntry
	order   []idEntry // ids in the order they were added: the oldest expire first
	ref     byte      // the last concatenation reference
}

type idEntry struct {
	id    string
	track *tracked
	at    time.Time
}

// tracked is a message whose parts' receipts are awaited: delivered when remaining reaches 0.
type tracked struct {
	ref       string
	remaining int
	done      bool
}

var _ message.Sender = (*Sender)(nil)

// New validates cfg and starts one session per SMSC, each binding in the background; Close stops them.
func New(cfg Config) (*Sender, error) {
	if len(cfg.SMSCs) == 0 {
		return nil, errors.New("smpp: no SMSC configured")
	}
	var errs []error
	for i := range cfg.SMSCs {
		cfg.SMSCs[i] = cfg.SMSCs[i].WithDefaults()
		if err := cfg.SMSCs[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("smpp[%d]: %w", i, err))
		}
	}
	if cfg.Sender != "" && sourceAddress(cfg.Sender).Addr == "" {
		errs = append(errs, fmt.Errorf("smpp: sender %q cannot be a source address", cfg.Sender))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Receipts == nil {
		cfg.Receipts = func(message.Receipt) {}
	}
	var b [1]byte
	_, _ = rand.Read(b[:])
	s := &Sender{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}), ids: map[string]idEntry{}, ref: b[0]}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.stopped = cancel, ctx
	for _, c := range cfg.SMSCs {
		sess := newSession(c, s.log)
		sess.notify, sess.onSubmit, sess.onDSM = s.notify, s.remember, s.receipt
		s.sessions = append(s.sessions, sess)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sess.run(ctx)
		}()
	}
	return s, nil
}

// Close unbinds every session and waits for them to end.
func (s *Sender) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Bound reports whether the named SMSC has a bound session, and else why not (nil before its first try).
func (s *Sender) Bound(name string) (bool, error) {
	for _, sess := range s.sessions {
		if sess.cfg.Name == name {
			return sess.bound()
		}
	}
	return false, fmt.Errorf("smpp: no SMSC %q", name)
}

func (s *Sender) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// pick returns the first bound session, waiting within ctx for one to bind; at ctx's end it returns why
// none is bound.
func (s *Sender) pick(ctx context.Context) (*session, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		var why error
		for _, sess := range s.sessions {
			ok, err := sess.bound()
			if ok {
				return sess, nil
			}
			if why == nil {
				why = err
			}
		}
		select {
		case <-changed:
		case <-s.stopped.Done():
			return nil, errors.New("smpp: the engine is stopping")
		case <-ctx.Done():
			if why == nil {
				why = errors.New("no SMSC bound yet")
			}
			return nil, why
		}
	}
}

// Send submits m's text to an SMSC, cut into parts when it is long, and returns Sent once every part's
// submit_sm_resp is OK. While no SMSC is bound it waits within ctx; at ctx's end the message failed
// unavailable (auth_failed when the SMSC refused the credentials).
func (s *Sender) Send(ctx context.Context, m message.Message) message.Result {
	now := s.cfg.Now
	fail := func(reason, format string, a ...any) message.Result {
		return message.Result{State: message.Failed, Reason: reason, Detail: fmt.Sprintf(format, a...), At: now()}
	}
	if !sms.IsNumber(m.To) {
		return fail(message.ReasonRejected, "destination %q is not a number in E.164", m.To)
	}
	if err := sms.CheckText(m.Text); err != nil {
		return fail(message.ReasonRejected, "%v", err)
	}
	from := m.From
	if from == "" {
		from = s.cfg.Sender
	}
	src := address{}
	if from != "" {
		if src = sourceAddress(from); src.Addr == "" {
			return fail(message.ReasonRejected, "sender %q cannot be a source address", from)
		}
	}
	dst := address{TON: 1, NPI: 1, Addr: strings.TrimPrefix(m.To, "+")}
	subs := s.parts(m.Text, src, dst)
	track := &tracked{ref: m.Ref, remaining: len(subs)}
	var ids []string
	for i, sub := range subs {
		id, res := s.submit(ctx, sub, track)
		if res != nil {
			track.finish(&s.mu)
			res.Segments = i
			res.Detail = fmt.Sprintf("part %d of %d: %s", i+1, len(subs), res.Detail)
			s.log.Warn("smpp submit failed", "ref", m.Ref, "reason", res.Reason, "detail", res.Detail)
			return *res
		}
		ids = append(ids, id)
	}
	s.log.Info("smpp message submitted", "ref", m.Ref, "parts", len(subs), "message_ids", strings.Join(ids, ","))
	return message.Result{State: message.Sent, ProviderID: strings.Join(ids, ","), Segments: len(subs), At: now()}
}

// submit submits one part, retrying while no session is bound, the connection drops before the answer,
// or the SMSC throttles; it returns the message_id, or the Result of a failure.
func (s *Sender) submit(ctx context.Context, sub submit, track *tracked) (string, *message.Result) {
	fail := func(reason, detail string) *message.Result {
		return &message.Result{State: message.Failed, Reason: reason, Detail: detail, At: s.cfg.Now()}
	}
	body := sub.body()
	wait := firstRetry
	for {
		sess, err := s.pick(ctx)
		if err != nil {
			var be *BindError
			if errors.As(err, &be) && be.Credentials() {
				return "", fail(message.ReasonAuthFailed, err.Error())
			}
			return "", fail(message.ReasonUnavailable, err.Error())
		}
		resp, err := sess.request(ctx, cmdSubmitSM, body, track)
		switch {
		case errors.Is(err, ErrNotBound) || errors.Is(err, ErrConnLost):
			continue // pick waits for a bind
		case err != nil:
			return "", fail(message.ReasonUnavailable, fmt.Sprintf("SMSC %s: %v", sess.cfg.Name, err))
		case resp.ID == cmdGenericNack:
			return "", fail(message.ReasonBadResponse, fmt.Sprintf("SMSC %s: generic_nack %s", sess.cfg.Name, statusName(resp.Status)))
		case resp.Status == statusOK:
			id, err := parseMessageID(resp.Body, maxMessageID)
			if err != nil {
				return "", fail(message.ReasonBadResponse, fmt.Sprintf("SMSC %s: submit_sm_resp: %v", sess.cfg.Name, err))
			}
			return id, nil
		case temporary(resp.Status):
			s.log.Info("smpp submit deferred", "smsc", sess.cfg.Name, "status", statusName(resp.Status), "retry_in", wait)
			select {
			case <-ctx.Done():
				return "", fail(message.ReasonUnavailable, fmt.Sprintf("SMSC %s: %s until the step's time ran out", sess.cfg.Name, statusName(resp.Status)))
			case <-time.After(wait):
			}
			wait = min(2*wait, lastRetry)
		default:
			return "", fail(message.ReasonRejected, fmt.Sprintf("SMSC %s: %s", sess.cfg.Name, statusName(resp.Status)))
		}
	}
}

// temporary reports whether a submit_sm answered with status may succeed later.
func temporary(status uint32) bool {
	switch status {
	case statusThrottled, statusMsgQFul, statusSysErr, statusInvBndSts:
		return true
	}
	return false
}

// parts returns the submit_sm of each part of text: one without a header when it fits one SMS, else
// parts with a concatenation header (IEI 00, an 8-bit reference, the count, the part's number).
func (s *Sender) parts(text string, src, dst address) []submit {
	enc, texts := sms.Split(text)
	encode := func(t string) []byte { return sms.EncodeUCS2(t) }
	coding := byte(8)
	if enc == sms.GSM7 {
		coding = 0
		encode = func(t string) []byte { b, _ := sms.EncodeGSM7(t); return b }
	}
	base := submit{Source: src, Dest: dst, DataCoding: coding, Registered: 1}
	if len(texts) == 1 {
		base.UD = encode(texts[0])
		return []submit{base}
	}
	s.mu.Lock()
	s.ref++
	ref := s.ref
	s.mu.Unlock()
	subs := make([]submit, len(texts))
	for i, t := range texts {
		sub := base
		sub.ESMClass = 0x40
		sub.UD = append([]byte{0x05, 0x00, 0x03, ref, byte(len(texts)), byte(i + 1)}, encode(t)...)
		subs[i] = sub
	}
	return subs
}

// sourceAddress returns the source address of a sender by its form: an E.164 number international
// (TON 1, NPI 1, without '+'), up to 8 digits a short code (TON 3, NPI 0), more digits a number of unknown
// type (TON 0, NPI 1), else alphanumeric (TON 5, NPI 0; at most 11 GSM characters). An address that
// cannot be one has an empty Addr.
func sourceAddress(from string) address {
	switch {
	case strings.HasPrefix(from, "+"):
		if sms.IsNumber(from) {
			return address{TON: 1, NPI: 1, Addr: from[1:]}
		}
	case from != "" && strings.Trim(from, "0123456789") == "":
		if len(from) <= 8 {
			return address{TON: 3, NPI: 0, Addr: from}
		}
		if len(from) < maxAddr {
			return address{TON: 0, NPI: 1, Addr: from}
		}
	case sms.CheckSender(from) == nil && len(from) < maxAddr:
		return address{TON: 5, NPI: 0, Addr: from}
	}
	return address{}
}

// finish marks t done: no receipt of its parts is reported.
func (t *tracked) finish(mu *sync.Mutex) {
	mu.Lock()
	t.done = true
	mu.Unlock()
}

// remember keeps a part's message_id for its receipt, dropping the expired and the oldest past the bound.
func (s *Sender) remember(id string, t *tracked) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 && (len(s.order) >= maxReceipts || now.Sub(s.order[0].at) > receiptTTL) {
		if e, ok := s.ids[s.order[0].id]; ok && e.at.Equal(s.order[0].at) {
			delete(s.ids, s.order[0].id)
		}
		s.order = s.order[1:]
	}
	e := idEntry{id: id, track: t, at: now}
	s.ids[id] = e
	s.order = append(s.order, e)
}

// receipt turns a deliver_sm that is a delivery receipt into a message.Receipt for its message.
func (s *Sender) receipt(d deliver) {
	if d.ESMClass&0x3C != 0x04 {
		s.log.Info("smpp deliver_sm that is no delivery receipt ignored", "esm_class", d.ESMClass)
		return
	}
	id, stat := parseReceipt(d)
	state, reason, final := receiptState(stat)
	s.mu.Lock()
	e, ok := s.lookup(id)
	if !ok {
		s.mu.Unlock()
		s.log.Info("smpp receipt for no message of this engine", "message_id", id, "stat", stat)
		return
	}
	t := e.track
	if !final || t.done {
		s.mu.Unlock()
		return
	}
	delete(s.ids, e.id)
	if state == message.Delivered {
		t.remaining--
		if t.remaining > 0 {
			s.mu.Unlock()
			return
		}
	}
	t.done = true
	s.mu.Unlock()
	s.log.Info("smpp receipt", "ref", t.ref, "message_id", id, "stat", stat)
	s.cfg.Receipts(message.Receipt{Ref: t.ref, State: state, Reason: reason, Detail: "stat:" + stat, At: s.cfg.Now()})
}

// lookup finds a message_id; some SMSCs give it in hexadecimal in submit_sm_resp and in decimal in the
// receipt, or the other way round. s.mu is held.
func (s *Sender) lookup(id string) (idEntry, bool) {
	if e, ok := s.ids[id]; ok {
		return e, true
	}
	var n uint64
	if _, err := fmt.Sscanf(id, "%d", &n); err == nil && fmt.Sprint(n) == id {
		for _, alt := range []string{fmt.Sprintf("%x", n), fmt.Sprintf("%X", n)} {
			if e, ok := s.ids[alt]; ok {
				return e, true
			}
		}
	}
	if _, err := fmt.Sscanf(id, "%x", &n); err == nil {
		if e, ok := s.ids[fmt.Sprint(n)]; ok {
			return e, true
		}
	}
	return idEntry{}, false
}

// messageStates are the message_state TLV's values (SMPP 3.4 section 5.2.28) by the receipt text's names.
var messageStates = map[byte]string{1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
	6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}

// parseReceipt reads a receipt's message_id and state: the receipted_message_id and message_state TLVs
// when it has them, else its text ("id:... sub:... stat:DELIVRD err:...", SMPP 3.4 appendix B).
func parseReceipt(d deliver) (id, stat string) {
	if v, ok := d.TLVs[tagReceiptedMessageID]; ok {
		id = string(bytes.TrimRight(v, "\x00"))
	}
	if v, ok := d.TLVs[tagMessageState]; ok && len(v) == 1 {
		stat = messageStates[v[0]]
	}
	for _, f := range strings.Fields(string(d.Message)) {
		k, v, ok := strings.Cut(f, ":")
		switch {
		case !ok:
		case strings.EqualFold(k, "id") && id == "":
			id = v
		case strings.EqualFold(k, "stat") && stat == "":
			stat = strings.ToUpper(v)
		}
	}
	return id, stat
}

// receiptState maps a receipt's state to the message's; final is false for a state on the way.
func receiptState(stat string) (state message.State, reason string, final bool) {
	switch stat {
	case "DELIVRD":
		return message.Delivered, "", true
	case "EXPIRED":
		return message.Failed, message.ReasonExpired, true
	case "UNDELIV", "DELETED":
		return message.Failed, message.ReasonUndelivered, true
	case "REJECTD":
		return message.Failed, message.ReasonRejected, true
	}
	return "", "", false
}
