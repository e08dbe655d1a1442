package email

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"flashotp/message"
	"flashotp/templates"
)

// Sender sends the email channel's messages over SMTP; it implements message.Sender.
//
// It opens a connection per message rather than keeping a pool: a verification email is one message now
// and then, not a stream, and an SMTP server drops an idle connection after a few minutes (RFC 5321
// 4.5.3.2.7 lets it), so a pooled connection would mostly be a stale one to detect (NOOP) and replace
// before each send; worse, a message sent on a connection that died under it would be retried on an
// answer that never said whether it was taken. A fresh connection has one meaning per failure, and
// MaxConnections bounds how many are open at once.
type Sender struct {
	s    Settings
	from *mail.Address
	tls  *tls.Config
	log  *slog.Logger
	sem  chan struct{}
	now  func() time.Time
}

var _ message.Sender = (*Sender)(nil)

// New returns the Sender of s (which Validate accepted). log gets one line per message: its Ref, the
// outcome, never the code, the recipient or the password.
func New(s Settings, log *slog.Logger) (*Sender, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !s.Configured() {
		return nil, errors.New("email: no host")
	}
	from, err := parseFrom(s.From)
	if err != nil {
		return nil, fmt.Errorf("email: from: %w", err)
	}
	tc, err := s.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		s: s, from: from, tls: tc, log: log.With("channel", "email"),
		sem: make(chan struct{}, s.MaxConnections), now: time.Now,
	}, nil
}

// A temporary failure is tried again after a wait doubling from firstBackoff to at most lastBackoff: a 4xx
// is usually greylisting or a busy server, over in seconds, and the step's timeout ends the retries anyway.
const firstBackoff, lastBackoff = 250 * time.Millisecond, 8 * time.Second

// Send delivers m (m.To an address, m.Subject, m.Text and m.HTML rendered) and returns when the server took
// it (Sent), refused it for good (Failed: rejected, or auth_failed for the engine's credentials), or ctx
// ended while it kept answering a temporary failure or could not be reached (Failed: unavailable).
func (s *Sender) Send(ctx context.Context, m message.Message) message.Result {
	msg, err := s.build(m)
	if err != nil {
		s.log.Warn("email refused before sending", "ref", m.Ref, "err", err)
		return message.Result{State: message.Failed, Reason: message.ReasonRejected, Detail: err.Error(), At: s.now()}
	}
	res, tries, ok := message.Retry(ctx, firstBackoff, lastBackoff, func(int) (message.Result, bool) {
		err := s.attempt(ctx, msg)
		if err == nil {
			return message.Result{State: message.Sent, ProviderID: strings.Trim(msg.GetMessageID(), "<>")}, false
		}
		reason, temporary, detail := classify(err)
		return message.Result{State: message.Failed, Reason: reason, Detail: detail}, temporary
	})
	if !ok {
		res.Reason = message.ReasonUnavailable
	}
	res.At = s.now()
	if res.State == message.Sent {
		s.log.Info("email sent", "ref", m.Ref, "attempts", tries)
	} else {
		s.log.Warn("email failed", "ref", m.Ref, "reason", res.Reason, "detail", res.Detail, "attempts", tries)
	}
	return res
}

// build writes m as a go-mail message: every header from a checked address, the engine or a one-line subject.
func (s *Sender) build(m message.Message) (*gomail.Msg, error) {
	to, err := checkRecipient(m.To)
	if err != nil {
		return nil, err
	}
	from := s.from
	if m.From != "" {
		if from, err = parseFrom(m.From); err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
	}
	if m.Text == "" && m.HTML == "" {
		return nil, errors.New("no text")
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	if err := msg.To(to); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	msg.Subject(templates.OneLine(m.Subject))
	_, domain, _ := strings.Cut(from.Address, "@")
	msg.SetMessageIDWithValue(randomID() + "@" + domain)
	msg.SetDateWithValue(s.now())
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	switch {
	case m.HTML == "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	case m.Text == "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// checkRecipient checks to as otp did (a bare address, nothing a header could carry), once more: the
// Sender is the last place before the wire.
func checkRecipient(to string) (string, error) {
	if to == "" || len(to) > 254 || strings.ContainsFunc(to, func(r rune) bool { return r < 0x21 || r == 0x7f || strings.ContainsRune("<>,\"();:\\", r) }) {
		return "", errors.New("recipient: want a bare address")
	}
	a, err := mail.ParseAddress(to)
	if err != nil || a.Address != to {
		return "", errors.New("recipient: not an email address")
	}
	return to, nil
}

// randomID returns 130 random bits in base32: the Message-ID's left part.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// attempt opens a connection, sends msg and closes it, within ctx: the connection is closed when ctx ends,
// whatever SMTP command it waits on.
func (s *Sender) attempt(ctx context.Context, msg *gomail.Msg) error {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return ctx.Err()
	}
	timeout := s.s.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	var (
		mu   sync.Mutex
		conn net.Conn // the connection, for the AfterFunc to close
	)
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if s.s.TLS == TLSImplicit {
			tc := tls.Client(c, s.tls)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = c.Close()
				return nil, err
			}
			c = tc
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		return c, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.s.port()), gomail.WithTimeout(timeout), gomail.WithTLSConfig(s.tls),
		gomail.WithDialContextFunc(dial), gomail.WithTLSPolicy(tlsPolicy(s.s.TLS)),
	}
	if s.s.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.s.HELO))
	}
	if s.s.Username != "" {
		// Negotiated in this order among what the server offers; PLAIN and LOGIN only over TLS (go-mail's
		// smtp refuses them in clear to anything but localhost).
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(s.s.Username), gomail.WithPassword(s.s.Password))
	}
	c, err := gomail.NewClient(s.s.Host, opts...)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	})
	defer stop()
	err = c.DialAndSendWithContext(ctx, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ctx.Err(), err)
	}
	return err
}

func tlsPolicy(mode string) gomail.TLSPolicy {
	switch mode {
	case TLSStartTLS:
		return gomail.TLSMandatory
	case TLSStartTLSOptional:
		return gomail.TLSOpportunistic
	}
	return gomail.NoTLS // implicit: TLS is the connection's own; none
}

// classify maps a Send's error to its step's reason, whether it is worth another attempt, and what to
// show of it (never the recipient, the code or a secret).
func classify(err error) (reason string, temporary bool, detail string) {
	var se *gomail.SendError
	if errors.As(err, &se) {
		detail = sendErrorDetail(se)
		switch code := se.ErrorCode(); {
		case code >= 500 && code < 600:
			if code == 530 || code == 534 || code == 535 {
				return message.ReasonAuthFailed, false, detail
			}
			return message.ReasonRejected, false, detail
		case se.IsTemp() || code >= 400 && code < 500:
			return message.ReasonUnavailable, true, detail
		case se.Reason == gomail.ErrConnCheck || se.Reason == gomail.ErrSMTPData || se.Reason == gomail.ErrWriteContent || se.Reason == gomail.ErrSMTPDataClose:
			return message.ReasonUnavailable, true, detail // the connection failed under it
		}
		return message.ReasonRejected, false, detail
	}
	detail = err.Error()
	var te *textproto.Error
	if errors.As(err, &te) {
		detail = fmt.Sprintf("%d %s", te.Code, te.Msg)
		switch {
		case te.Code == 530 || te.Code == 534 || te.Code == 535 || te.Code == 538:
			return message.ReasonAuthFailed, false, detail
		case te.Code >= 500:
			return message.ReasonRejected, false, detail
		case te.Code >= 400:
			return message.ReasonUnavailable, true, detail
		}
	}
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return message.ReasonUnavailable, false, detail // a certificate does not mend in seconds
	case isAuthSetup(err):
		return message.ReasonAuthFailed, false, detail
	case strings.Contains(detail, "STARTTLS"):
		return message.ReasonUnavailable, false, detail // tls: starttls and a server that does not offer it
	}
	return message.ReasonUnavailable, true, detail // a network error: refused, reset, timed out
}

// isAuthSetup reports whether err says the server and the engine share no AUTH mechanism.
func isAuthSetup(err error) bool {
	for _, e := range []error{gomail.ErrNoSupportedAuthDiscovered, gomail.ErrPlainAuthNotSupported, gomail.ErrLoginAuthNotSupported, gomail.ErrCramMD5AuthNotSupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	return strings.Contains(err.Error(), "does not support SMTP AUTH")
}

// sendErrorDetail is se's text without the recipient and the Message-ID go-mail appends.
func sendErrorDetail(se *gomail.SendError) string {
	d, _, _ := strings.Cut(se.Error(), ", affected recipient(s)")
	d, _, _ = strings.Cut(d, ", affected message ID")
	return d
}
