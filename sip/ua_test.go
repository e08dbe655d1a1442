package sip_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/internal/fakes"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/sip"
)

func listenUA(t *testing.T) *sip.UA {
	t.Helper()
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return ua
}

func TestDialAgainstSIPp(t *testing.T) {
	tests := []struct {
		scenario    string
		dialTimeout time.Duration
		want        call.State
		code        int
		reason      call.Reason
		rang        bool
		progress    []call.State
	}{
		{"ring_cancel.xml", 5 * time.Second, call.StateMissed, 487, "", true, []call.State{call.StateDialing, call.StateRinging}},
		{"ring_cancel_sloppy.xml", 5 * time.Second, call.StateMissed, 487, "", true, []call.State{call.StateDialing, call.StateRinging}},
		{"answer.xml", 5 * time.Second, call.StateAnswered, 200, "", true, []call.State{call.StateDialing, call.StateRinging}},
		{"busy.xml", 5 * time.Second, call.StateFailed, 486, call.ReasonBusy, false, []call.State{call.StateDialing}},
		{"silent.xml", 700 * time.Millisecond, call.StateFailed, 487, call.ReasonNoRing, false, []call.State{call.StateDialing}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			uas := peers.StartUAS(t, tc.scenario, 1)
			ua := listenUA(t)
			var seen []call.State
			res := ua.Dial(context.Background(), call.Request{
				Target: uas.Addr, To: "+447700900123", CLI: "+442079461234",
				DialTimeout: tc.dialTimeout, CancelGuard: 2 * time.Second,
			}, func(s call.State, _ time.Time) { seen = append(seen, s) })
			if res.State != tc.want || res.SIPCode != tc.code || res.Reason != tc.reason || res.Rang != tc.rang {
				t.Fatalf("result %s, want %s code=%d reason=%q rang=%t\n%s", res, tc.want, tc.code, tc.reason, tc.rang, uas.Messages())
			}
			if strings.Join(states(seen), ",") != strings.Join(states(tc.progress), ",") {
				t.Errorf("progress %v, want %v", seen, tc.progress)
			}
			if code := uas.Wait(t, 10*time.Second); code != 0 {
				t.Fatalf("sipp exit %d: the callee's scenario did not complete\n%s", code, uas.Messages())
			}
			invites := uas.Received("INVITE ")
			if len(invites) == 0 {
				t.Fatal("sipp saw no INVITE")
			}
			inv := invites[0]
			for _, want := range []string{"INVITE sip:+447700900123@", "From: <sip:+442079461234@", "P-Asserted-Identity: <sip:+442079461234@", "m=audio ", "PCMU/8000", "PCMA/8000"} {
				if !strings.Contains(inv, want) {
					t.Errorf("INVITE lacks %q:\n%s", want, inv)
				}
			}
			if !strings.Contains(inv, "Via: SIP/2.0/UDP "+ua.Addr()) {
				t.Errorf("INVITE did not leave from the listening socket %s:\n%s", ua.Addr(), inv)
			}
		})
	}
}

// A trunk that never answers: the call fails no_ring at dial_timeout, without CANCEL (no provisional came).
func TestDialNoResponse(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	ua := listenUA(t)
	start := time.Now()
	res := ua.Dial(context.Background(), call.Request{
		Target: dead.LocalAddr().String(), To: "+447700900123", CLI: "+442079461234",
		DialTimeout: 300 * time.Millisecond, CancelGuard: time.Second,
	}, nil)
	if res.State != call.StateFailed || res.Reason != call.ReasonNoRing || res.Responded {
		t.Fatalf("result %s, want failed no_ring without response", res)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("call held its slot %s", took)
	}
}

// closedPort returns an address on 127.0.0.1 where nothing listens: a port that was just bound and let go.
func closedPort(t *testing.T, network string) string {
	t.Helper()
	var (
		addr string
		err  error
	)
	if network == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", "127.0.0.1:0"); err == nil {
			addr = c.LocalAddr().String()
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			addr = l.Addr().String()
			l.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// A trunk address where nothing listens fails the call at once as trunk_error (UDP: the ICMP port
// unreachable; TCP: connection refused), not after dial_timeout as no_ring. Calls to a live phone on the
// same UA socket at the same time are not touched by those errors.
func TestDialClosedPort(t *testing.T) {
	var out fakes.Buffer
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneRing, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ua := listenUA(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			target := closedPort(t, transport)
			const n = 10
			dead, live := make(chan call.Result, n), make(chan call.Result, n)
			for i := 0; i < n; i++ {
				go func() {
					dead <- ua.Dial(context.Background(), call.Request{
						Target: target, Transport: transport, To: "+447700900123", CLI: "+442079461234",
						DialTimeout: 30 * time.Second, CancelGuard: time.Second,
					}, nil)
				}()
				go func() {
					live <- ua.Dial(context.Background(), call.Request{
						Target: phone.Addr(), To: "+447700900124", CLI: "+442079461235", DialTimeout: 5 * time.Second, CancelGuard: time.Second,
					}, nil)
				}()
			}
			timeout := time.After(5 * time.Second)
			for i := 0; i < 2*n; i++ {
				select {
				case res := <-dead:
					if res.State != call.StateFailed || res.Reason != call.ReasonTrunkError || res.SIPCode != 0 || res.Responded {
						t.Fatalf("call to the closed port: %s, want failed trunk_error without response", res)
					}
				case res := <-live:
					if res.State != call.StateMissed {
						t.Fatalf("call to the live phone beside them: %s, want missed", res)
					}
				case <-timeout:
					t.Fatalf("%d of %d calls still running after 5 s (dial_timeout 30 s)", 2*n-i, 2*n)
				}
			}
		})
	}
}

func TestDialRefusesBadNumbers(t *testing.T) {
	ua := listenUA(t)
	for _, to := range []string{"+44770\r\nX: y", "447700900123", "+", "+4477009001231234567"} {
		res := ua.Dial(context.Background(), call.Request{Target: "127.0.0.1:9", To: to, CLI: "+442079461234", DialTimeout: time.Second, CancelGuard: time.Second}, nil)
		if res.State != call.StateFailed || res.Responded {
			t.Errorf("to %q: %s, want failed before sending", to, res)
		}
	}
}

func states(s []call.State) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// The UA against the built-in phone, in every mode.
func TestDialPhone(t *testing.T) {
	tests := []struct {
		mode   string
		want   call.State
		reason call.Reason
		line   string
	}{
		{sip.PhoneRing, call.StateMissed, "", "missed call from +442079461234 to +447700900123\n"},
		{sip.PhoneAnswer, call.StateAnswered, "", "answered call from +442079461234 to +447700900123\n"},
		{sip.PhoneBusy, call.StateFailed, call.ReasonBusy, "busy: refused call from +442079461234 to +447700900123\n"},
		{sip.PhoneSilent, call.StateFailed, call.ReasonNoRing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			var out fakes.Buffer
			phone, err := sip.ListenPhone("127.0.0.1:0", tc.mode, &out, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer phone.Close()
			ua := listenUA(t)
			req := call.Request{
				Target: phone.Addr(), To: "+447700900123", CLI: "+442079461234",
				DialTimeout: 500 * time.Millisecond, CancelGuard: time.Second,
			}
			if tc.mode == sip.PhoneAnswer {
				req.RingTime = time.Second // the phone answers at once; a CANCEL right after the 180 could win
			}
			res := ua.Dial(context.Background(), req, nil)
			if res.State != tc.want || res.Reason != tc.reason {
				t.Fatalf("result %s, want %s %q", res, tc.want, tc.reason)
			}
			deadline := time.Now().Add(2 * time.Second)
			for out.String() != tc.line && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if out.String() != tc.line {
				t.Fatalf("phone printed %q, want %q", out.String(), tc.line)
			}
		})
	}
}

// What a trunk's settings put in the INVITE: number formats and tech prefix (the dialer's, passed in To and
// CLI), user=phone, the CLI headers, privacy and domain.
func TestInviteHeaders(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel.xml", 1)
	ua := listenUA(t)
	res := ua.Dial(context.Background(), call.Request{
		Target: uas.Addr, Domain: "trunk.example", To: "*99#02079460123", CLI: "442079461234",
		UserPhone: true, CLIHeaders: []string{"pai", "rpid"}, Privacy: true,
		DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
	}, nil)
	if res.State != call.StateMissed {
		t.Fatalf("result %s\n%s", res, uas.Messages())
	}
	inv := uas.Received("INVITE ")[0]
	_, port, _ := net.SplitHostPort(uas.Addr)
	for _, want := range []string{
		"INVITE sip:*99#02079460123@trunk.example:" + port + ";user=phone SIP/2.0",
		"From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=",
		"To: <sip:*99#02079460123@trunk.example:" + port + ";user=phone>",
		"P-Asserted-Identity: <sip:442079461234@",
		"Remote-Party-ID: <sip:442079461234@",
		";party=calling;screen=yes;privacy=full",
		"Privacy: id",
	} {
		if !strings.Contains(inv, want) {
			t.Errorf("INVITE lacks %q:\n%s", want, inv)
		}
	}
}

// OPTIONS, the probe of a trunk that is down: any answer is an answer; silence is an error.
func TestOptions(t *testing.T) {
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneRing, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ua := listenUA(t)
	if code, err := ua.Options(context.Background(), phone.Addr(), "udp"); err != nil || code != 200 {
		t.Fatalf("options to the phone: %d %v", code, err)
	}
	dead, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if code, err := ua.Options(ctx, dead.LocalAddr().String(), "udp"); err == nil {
		t.Fatalf("options to a silent trunk answered %d", code)
	}
}

// Calls leave nothing running behind them: after 100 flash calls the UA holds no more goroutines than
// before (the transactions sipgo keeps for retransmissions end on their own timers, without goroutines).
func TestNoGoroutineLeft(t *testing.T) {
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneRing, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ua := listenUA(t)
	req := call.Request{Target: phone.Addr(), To: "+447700900123", CLI: "+442079461234", DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second}
	ua.Dial(context.Background(), req, nil) // warm up: connections, pools
	// Lets the warm-up call's short-lived goroutines end. No condition says when they have (the count is what
	// is measured); counted too early, before would be too high and the check below too loose.
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := ua.Dial(context.Background(), req, nil); res.State != call.StateMissed {
				t.Errorf("call %s", res)
			}
		}()
	}
	wg.Wait()
	// The phone's server transactions (in this process too) wait for sipgo's Timer I, T4 = 5 s, after
	// each ACK before they end.
	testwait.Until(12*time.Second, func() bool { return runtime.NumGoroutine() <= before+5 })
	if n := runtime.NumGoroutine(); n > before+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after 100 calls, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
