package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Errors of a session.
var (
	// ErrNotBound is returned by a request made while the session has no bound connection.
	ErrNotBound = errors.New("smpp: not bound")
	// ErrConnLost is returned for a request whose response never came because the connection dropped.
	ErrConnLost = errors.New("smpp: connection lost before the response")
)

// BindError is an SMSC's refusal of the bind: its command_status.
type BindError struct {
	SMSC   string
	Status uint32
}

func (e *BindError) Error() string {
	return fmt.Sprintf("SMSC %s refused the bind: %s", e.SMSC, statusName(e.Status))
}

// Credentials reports whether the SMSC refused the engine's credentials (a password, a system_id or a
// system_type it does not know) rather than the bind for a passing reason.
func (e *BindError) Credentials() bool {
	switch e.Status {
	case statusInvPaswd, statusInvSysID, statusInvSysTyp, statusBindFail:
		return true
	}
	return false
}

// Backoff between binds: doubled from the first to the last after each failure, reset by a bind.
const (
	firstBackoff = 500 * time.Millisecond
	lastBackoff  = 30 * time.Second
	unbindWait   = time.Second
)

// call is a request awaiting its response.
type call struct {
	done  chan struct{} // closed when resp or err is set
	resp  pdu
	err   error
	track *tracked // a submit_sm's message, registered under its message_id when the response comes
}

// session is one SMSC's: its settings, its window and rate, and the connection while bound. run owns it.
type session struct {
	cfg      Settings
	log      *slog.Logger
	lim      *rate.Limiter
	window   chan struct{}
	notify   func()                 // tells the Sender the session's state changed
	onSubmit func(string, *tracked) // a submit_sm_resp gave a message_id
	onDSM    func(deliver)          // a deliver_sm came

	mu      sync.Mutex
	conn    net.Conn // nil while unbound
	seq     uint32
	pending map[uint32]*call
	lastErr error // why the last bind failed or the connection dropped

	wmu      sync.Mutex // one PDU on the wire at a time
	lastRead atomic.Int64
}

func newSession(cfg Settings, log *slog.Logger) *session {
	return &session{cfg: cfg, log: log.With("smsc", cfg.Name),
		lim:    rate.NewLimiter(rate.Limit(cfg.Rate), 1+int(cfg.Rate/10)),
		window: make(chan struct{}, cfg.Window), pending: map[uint32]*call{}}
}

// bound reports whether the session has a bound connection, and else why not.
func (s *session) bound() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil, s.lastErr
}

// run binds, serves and rebinds with backoff until ctx ends, then unbinds.
func (s *session) run(ctx context.Context) {
	backoff := firstBackoff
	for ctx.Err() == nil {
		conn, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			s.notify()
			s.log.Warn("smpp bind failed", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, lastBackoff)
			continue
		}
		backoff = firstBackoff
		s.log.Info("smpp bound", "address", s.cfg.Address, "system_id", s.cfg.SystemID)
		err = s.serve(ctx, conn)
		if ctx.Err() == nil {
			s.log.Warn("smpp session lost", "err", err)
		}
	}
}

// connect dials the SMSC and binds as a transceiver, within cfg.BindTimeout.
func (s *session) connect(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.BindTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if s.cfg.TLS {
		conf, err := s.cfg.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("SMSC %s: tls_ca: %w", s.cfg.Name, err)
		}
		d := tls.Dialer{Config: conf}
		if conn, err = d.DialContext(ctx, "tcp", s.cfg.Address); err != nil {
			return nil, fmt.Errorf("connect to SMSC %s at %s (TLS): %w", s.cfg.Name, s.cfg.Address, err)
		}
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to SMSC %s at %s: %w", s.cfg.Name, s.cfg.Address, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	bind := pdu{ID: cmdBindTransceiver, Seq: 1, Body: bindBody(s.cfg.SystemID, s.cfg.Password, s.cfg.SystemType)}
	if _, err := conn.Write(bind.marshal()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind to SMSC %s: %w", s.cfg.Name, err)
	}
	for {
		p, err := readPDU(conn)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("bind to SMSC %s: no answer: %w", s.cfg.Name, err)
		}
		switch p.ID {
		case cmdBindTransceiverResp, cmdGenericNack:
			if p.Status != statusOK || p.ID == cmdGenericNack {
				conn.Close()
				return nil, &BindError{SMSC: s.cfg.Name, Status: p.Status}
			}
			_ = conn.SetDeadline(time.Time{})
			s.mu.Lock()
			s.conn, s.lastErr, s.seq = conn, nil, 1
			s.mu.Unlock()
			s.lastRead.Store(time.Now().UnixNano())
			s.notify()
			return conn, nil
		case cmdEnquireLink:
			_, _ = conn.Write(pdu{ID: cmdEnquireLinkResp, Seq: p.Seq}.marshal())
		}
	}
}

// serve reads the bound connection until it fails or ctx ends (then it unbinds), keeping it alive with
// enquire_link; every request still pending when it returns fails with ErrConnLost.
func (s *session) serve(ctx context.Context, conn net.Conn) error {
	readErr := make(chan error, 1)
	go func() { readErr <- s.readLoop(conn) }()
	tick := time.NewTicker(s.cfg.EnquireLink)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case err = <-readErr:
			break loop
		case <-tick.C:
			if time.Since(time.Unix(0, s.lastRead.Load())) < s.cfg.EnquireLink/2 {
				continue // the SMSC spoke lately: the link is alive
			}
			ectx, cancel := context.WithTimeout(ctx, s.cfg.EnquireLink)
			_, e := s.request(ectx, cmdEnquireLink, nil, nil)
			cancel()
			if e != nil && ctx.Err() == nil {
				s.log.Warn("smpp enquire_link unanswered: dropping the session", "err", e)
				conn.Close()
				err = <-readErr
				break loop
			}
		case <-ctx.Done():
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unbindWait)
			if _, e := s.request(uctx, cmdUnbind, nil, nil); e != nil {
				s.log.Info("smpp unbind unanswered", "err", e)
			}
			cancel()
			conn.Close()
			err = <-readErr
			break loop
		}
	}
	conn.Close()
	s.mu.Lock()
	s.conn = nil
	if ctx.Err() == nil {
		s.lastErr = fmt.Errorf("SMSC %s: session lost: %w", s.cfg.Name, err)
	}
	pending := s.pending
	s.pending = map[uint32]*call{}
	s.mu.Unlock()
	for _, c := range pending {
		c.err = ErrConnLost
		close(c.done)
	}
	s.notify()
	return err
}

// readLoop reads PDUs until the connection fails: responses go to their calls, requests are answered.
func (s *session) readLoop(conn net.Conn) error {
	for {
		p, err := readPDU(conn)
		if err != nil {
			return err
		}
		s.lastRead.Store(time.Now().UnixNano())
		switch {
		case p.ID&0x80000000 != 0: // a response, or generic_nack
			s.mu.Lock()
			c := s.pending[p.Seq]
			delete(s.pending, p.Seq)
			s.mu.Unlock()
			if c == nil {
				s.log.Debug("smpp response to no request", "command_id", fmt.Sprintf("0x%08X", p.ID), "seq", p.Seq)
				continue
			}
			if p.ID == cmdSubmitSMResp && p.Status == statusOK && c.track != nil {
				id, err := parseMessageID(p.Body, maxMessageID)
				if err == nil && id != "" {
					s.onSubmit(id, c.track)
				}
			}
			c.resp = p
			close(c.done)
		case p.ID == cmdEnquireLink:
			s.write(conn, pdu{ID: cmdEnquireLinkResp, Seq: p.Seq})
		case p.ID == cmdDeliverSM:
			// Always answered, or the SMSC sends it again; one that cannot be read is logged and dropped.
			s.write(conn, pdu{ID: cmdDeliverSMResp, Seq: p.Seq, Body: []byte{0}})
			d, err := parseDeliver(p.Body)
			if err != nil {
				s.log.Warn("smpp deliver_sm unreadable", "err", err)
				continue
			}
			s.onDSM(d)
		case p.ID == cmdUnbind:
			s.write(conn, pdu{ID: cmdUnbindResp, Seq: p.Seq})
			return errors.New("the SMSC unbound")
		default:
			s.write(conn, pdu{ID: cmdGenericNack, Status: statusInvCmdID, Seq: p.Seq})
		}
	}
}

// write sends p on conn; a failed write closes conn, which ends the read loop.
func (s *session) write(conn net.Conn, p pdu) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.BindTimeout))
	_, err := conn.Write(p.marshal())
	if err != nil {
		conn.Close()
	}
	return err
}

// request sends a request and waits for its response within ctx. A submit_sm (track not nil) takes a
// place in the window and a token of the rate first.
func (s *session) request(ctx context.Context, id uint32, body []byte, track *tracked) (pdu, error) {
	if id == cmdSubmitSM {
		select {
		case s.window <- struct{}{}:
		case <-ctx.Done():
			return pdu{}, ctx.Err()
		}
		defer func() { <-s.window }()
		if err := s.lim.Wait(ctx); err != nil {
			return pdu{}, err
		}
	}
	c := &call{done: make(chan struct{}), track: track}
	s.mu.Lock()
	conn := s.conn
	if conn == nil {
		s.mu.Unlock()
		return pdu{}, ErrNotBound
	}
	s.seq++
	if s.seq > 0x7FFFFFFF { // sequence numbers are 1..0x7FFFFFFF
		s.seq = 1
	}
	seq := s.seq
	s.pending[seq] = c
	s.mu.Unlock()
	if err := s.write(conn, pdu{ID: id, Seq: seq, Body: body}); err != nil {
		s.forget(seq)
		return pdu{}, fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			return pdu{}, c.err
		}
		return c.resp, nil
	case <-ctx.Done():
		s.forget(seq)
		return pdu{}, ctx.Err()
	}
}

func (s *session) forget(seq uint32) {
	s.mu.Lock()
	delete(s.pending, seq)
	s.mu.Unlock()
}
