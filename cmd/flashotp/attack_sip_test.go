package main

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// sipPeer speaks SIP by hand over a UDP socket on a loopback address of the test's choosing: the trunk
// (127.0.0.1, the configured one) or a stranger (127.0.0.2) who learned what the trunk saw.
type sipPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func listenPeer(t *testing.T, ip string) *sipPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	t.Cleanup(func() { conn.Close() })
	return &sipPeer{t: t, conn: conn}
}

func (p *sipPeer) addr() string { return p.conn.LocalAddr().String() }

// send writes msg to the engine's SIP address.
func (p *sipPeer) send(to string, msg sipgosip.Message) {
	p.t.Helper()
	a, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteTo([]byte(msg.String()), a); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next message within d, or nil.
func (p *sipPeer) recv(d time.Duration) sipgosip.Message {
	p.t.Helper()
	buf := make([]byte, 65535)
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := p.conn.ReadFrom(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		p.t.Fatal(err)
	}
	msg, err := sipgosip.ParseMessage(buf[:n])
	if err != nil {
		p.t.Fatalf("the engine sent what does not parse: %v\n%s", err, buf[:n])
	}
	return msg
}

// expect returns the next request with method within d, passing over others; nil if none came.
func (p *sipPeer) expect(method sipgosip.RequestMethod, d time.Duration) *sipgosip.Request {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if req, ok := p.recv(time.Until(deadline)).(*sipgosip.Request); ok && req.Method == method {
			return req
		}
	}
	return nil
}

// count reads what the engine sends for d and returns how many messages came.
func (p *sipPeer) count(d time.Duration) int {
	n := 0
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p.recv(time.Until(deadline)) != nil {
			n++
		}
	}
	return n
}

// response builds the response to req that its callee would send, with toTag ("": none).
func response(req *sipgosip.Request, code int, reason, toTag string) *sipgosip.Response {
	res := sipgosip.NewResponseFromRequest(req, code, reason, nil)
	if toTag != "" {
		res.To().Params.Add("tag", toTag)
	}
	return res
}

// request builds a request of method from the peer at from, as a trunk's switch would send it.
func request(method sipgosip.RequestMethod, from, engine, callID string) *sipgosip.Request {
	host, port, _ := net.SplitHostPort(engine)
	p, _ := strconv.Atoi(port)
	req := sipgosip.NewRequest(method, sipgosip.Uri{Scheme: "sip", User: "flashotp", Host: host, Port: p})
	req.AppendHeader(sipgosip.NewHeader("Via", "SIP/2.0/UDP "+from+";branch=z9hG4bK"+sipgosip.GenerateTagN(12)))
	req.AppendHeader(sipgosip.NewHeader("From", "<sip:+14155552671@"+from+">;tag="+sipgosip.GenerateTagN(8)))
	req.AppendHeader(sipgosip.NewHeader("To", "<sip:flashotp@"+engine+">"))
	req.AppendHeader(sipgosip.NewHeader("Call-ID", callID))
	req.AppendHeader(sipgosip.NewHeader("CSeq", "1 "+method.String()))
	req.AppendHeader(sipgosip.NewHeader("Max-Forwards", "70"))
	req.AppendHeader(sipgosip.NewHeader("Content-Length", "0"))
	return req
}

// sipAttackEngine starts the engine with trunk as its one trunk and returns it with its API client.
func sipAttackEngine(t *testing.T, trunk *sipPeer) (*Main, client) {
	cfg := testConfig(t, trunk.addr())
	cfg.Dialer.DialTimeout, cfg.Dialer.CancelGuard = time.Second, time.Second
	m := startMain(t, cfg)
	return m, client{t, "http://" + m.HTTPAddr}
}

// TestAttackForgedResponses: a stranger who saw the INVITE (its Via branch, Call-ID, tags) answers it
// before the trunk does, from another address. Before responses were taken only from the trunks, a 486
// made the verification undeliverable, a 200 recorded it answered (and left the real INVITE ringing, never
// CANCELled), a 180 recorded a missed call for a phone that never rang. Now the call goes as the trunk
// says, and the forgery is counted.
func TestAttackForgedResponses(t *testing.T) {
	tests := []struct {
		code   int
		reason string
		// trunkRings: the trunk rings after the forgery, then takes the CANCEL (the call is missed); else it
		// stays silent after its 100 and the call fails no_ring at dial_timeout.
		trunkRings     bool
		state, reason2 string
	}{
		{486, "Busy Here", true, "missed", ""},
		{200, "OK", true, "missed", ""},
		{180, "Ringing", false, "failed", "no_ring"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			trunk, stranger := listenPeer(t, "127.0.0.1"), listenPeer(t, "127.0.0.2")
			m, c := sipAttackEngine(t, trunk)
			id := c.send(recipient).body["verification_id"].(string)
			inv := trunk.expect(sipgosip.INVITE, 5*time.Second)
			if inv == nil {
				t.Fatal("no INVITE reached the trunk")
			}
			trunk.send(m.SIPAddr, response(inv, 100, "Trying", ""))
			forged := response(inv, tc.code, tc.reason, "forged")
			stranger.send(m.SIPAddr, forged)
			// The forgery is read before anything the trunk sends next: one socket, read in order.
			if tc.trunkRings {
				trunk.send(m.SIPAddr, response(inv, 180, "Ringing", "callee"))
			}
			cancel := trunk.expect(sipgosip.CANCEL, 3*time.Second)
			if cancel != nil {
				trunk.send(m.SIPAddr, response(cancel, 200, "OK", ""))
				trunk.send(m.SIPAddr, response(inv, 487, "Request Terminated", "callee"))
			} else {
				t.Errorf("the real INVITE was never CANCELled")
			}
			call := c.waitCall(id)["call"].(map[string]any)
			if call["state"] != tc.state || call["reason"] != tc.reason2 {
				t.Errorf("after a forged %d from a stranger and the trunk's own answers: call %v, want %s %q", tc.code, call, tc.state, tc.reason2)
			}
			if n := c.metric(`flashotp_sip_dropped_total{reason="stranger"}`); n < 1 {
				t.Errorf("flashotp_sip_dropped_total{reason=\"stranger\"} = %v, want the forgery counted", n)
			}
			if n := stranger.count(100 * time.Millisecond); n != 0 {
				t.Errorf("the stranger got %d messages back", n)
			}
		})
	}
}

// TestAttackUnsolicitedInvite: an INVITE nobody asked for. It was answered 603 and the 603 sent again
// eleven times over 32 s to whatever address the request named (a reflection: 6.7 times the packets sent).
// Now a stranger gets no answer at all and a trunk one 403 (a trunk with inbound on: its inbound_reject),
// never retransmitted.
func TestAttackUnsolicitedInvite(t *testing.T) {
	trunk, stranger := listenPeer(t, "127.0.0.1"), listenPeer(t, "127.0.0.2")
	m, _ := sipAttackEngine(t, trunk)
	trunk.send(m.SIPAddr, request(sipgosip.INVITE, trunk.addr(), m.SIPAddr, "unsolicited-trunk"))
	stranger.send(m.SIPAddr, request(sipgosip.INVITE, stranger.addr(), m.SIPAddr, "unsolicited-stranger"))
	got := make(chan int)
	go func() { got <- stranger.count(3 * time.Second) }()
	fromTrunk := trunk.count(3 * time.Second) // Timer G would have resent the 603 at 0.5, 1.5 and 3.5 s
	if fromStranger := <-got; fromStranger != 0 || fromTrunk > 1 {
		t.Errorf("unsolicited INVITEs answered %d times to a stranger, %d to the trunk within 3 s; want 0 and at most 1", fromStranger, fromTrunk)
	}
}

// TestAttackLate2xxFlood: after a call ended, 2xx with a new To tag each. Each made one more ACK, BYE and
// goroutine (5,000 forged: 4,755 BYEs to the trunk). Now a stranger's make none, and the trunk's make at
// most maxDialogs (4) dialogs hung up, the rest dropped and counted.
func TestAttackLate2xxFlood(t *testing.T) {
	const flood = 5000
	trunk, stranger := listenPeer(t, "127.0.0.1"), listenPeer(t, "127.0.0.2")
	m, c := sipAttackEngine(t, trunk)
	id := c.send(recipient).body["verification_id"].(string)
	inv := trunk.expect(sipgosip.INVITE, 5*time.Second)
	if inv == nil {
		t.Fatal("no INVITE reached the trunk")
	}
	trunk.send(m.SIPAddr, response(inv, 180, "Ringing", "callee"))
	cancel := trunk.expect(sipgosip.CANCEL, 3*time.Second)
	if cancel == nil {
		t.Fatal("no CANCEL")
	}
	trunk.send(m.SIPAddr, response(cancel, 200, "OK", ""))
	trunk.send(m.SIPAddr, response(inv, 487, "Request Terminated", "callee"))
	if trunk.expect(sipgosip.ACK, 3*time.Second) == nil {
		t.Fatal("487 not ACKed")
	}
	if call := c.waitCall(id)["call"].(map[string]any); call["state"] != "missed" {
		t.Fatalf("call %v, want missed", call)
	}

	// byes counts the distinct dialogs (To tags) the engine sent BYE for, reading until it has been quiet
	// for half a second.
	byes := func() int {
		tags := map[string]bool{}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			msg := trunk.recv(500 * time.Millisecond)
			if msg == nil {
				break
			}
			if req, ok := msg.(*sipgosip.Request); ok && req.Method == sipgosip.BYE {
				tag, _ := req.To().Params.Get("tag")
				tags[tag] = true
				trunk.send(m.SIPAddr, response(req, 200, "OK", ""))
			}
		}
		return len(tags)
	}
	for i := range flood {
		stranger.send(m.SIPAddr, response(inv, 200, "OK", "s"+strconv.Itoa(i)))
	}
	if n := byes(); n != 0 {
		t.Errorf("%d 2xx with new To tags from a stranger: %d dialogs hung up, want 0", flood, n)
	}
	for i := range flood {
		trunk.send(m.SIPAddr, response(inv, 200, "OK", "t"+strconv.Itoa(i)))
	}
	if n := byes(); n < 1 || n > 4 {
		t.Errorf("%d 2xx with new To tags from the trunk: %d dialogs hung up, want 1..4", flood, n)
	}
	if n := c.metric(`flashotp_sip_dropped_total{reason="dialogs"}`); n < 1 {
		t.Errorf(`flashotp_sip_dropped_total{reason="dialogs"} = %v, want the 2xx past the bound counted`, n)
	}
}

// TestAttackStrayRequests: requests a trunk sends outside any transaction or dialog. An ACK was answered
// 405 (an ACK is never answered), a stray CANCEL 405 and a stray BYE 200; both now get 481.
func TestAttackStrayRequests(t *testing.T) {
	trunk := listenPeer(t, "127.0.0.1")
	m, _ := sipAttackEngine(t, trunk)
	tests := []struct {
		method sipgosip.RequestMethod
		want   int // 0: no answer
	}{
		{sipgosip.ACK, 0},
		{sipgosip.CANCEL, 481},
		{sipgosip.BYE, 481},
	}
	for _, tc := range tests {
		t.Run(tc.method.String(), func(t *testing.T) {
			trunk.send(m.SIPAddr, request(tc.method, trunk.addr(), m.SIPAddr, "stray-"+strings.ToLower(tc.method.String())))
			var codes []int
			for {
				msg := trunk.recv(time.Second) // the answer comes within milliseconds; none is a second of silence
				if msg == nil {
					break
				}
				if res, ok := msg.(*sipgosip.Response); ok {
					codes = append(codes, res.StatusCode)
				}
			}
			if (tc.want == 0 && len(codes) != 0) || (tc.want != 0 && (len(codes) != 1 || codes[0] != tc.want)) {
				t.Errorf("stray %s answered %v, want %d (0: no answer)", tc.method, codes, tc.want)
			}
		})
	}
}
