package sip_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

// message is a KindMessage request to target, as the dialer builds one.
func message(target, cli, text string) call.Request {
	return call.Request{
		Kind: call.KindMessage, Target: target, To: "+447700900123", CLI: cli, Text: text,
		DialTimeout: 5 * time.Second, CancelGuard: time.Second,
	}
}

// An SMS as SIP MESSAGE against SIPp trunks: one that takes it (its scenario checks the Content-Type and that
// no Contact came) and one that refuses it with 488. What reached the trunk is read from SIPp's trace.
func TestMessageAgainstSIPp(t *testing.T) {
	const text = "Your Acme code is 482913. Ваш код — 482913 ✓"
	tests := []struct {
		name, scenario, cli string
		state               call.State
		code                int
		reason              call.Reason
		phrase              string
		from                string
	}{
		{"number sender", "message_uas.xml", "+442079461234", call.StateSent, 200, "", "", "From: <sip:+442079461234@"},
		{"alphanumeric sender", "message_uas.xml", "Acme Inc", call.StateSent, 200, "", "", "From: <sip:Acme%20Inc@"},
		{"refused", "message_488.xml", "+442079461234", call.StateFailed, 488, call.ReasonClientError,
			`Not Acceptable Here; SIP;cause=488;text="SMS not supported"`, "From: <sip:+442079461234@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uas := peers.StartUAS(t, tc.scenario, 1)
			ua := listenUA(t)
			var seen []call.State
			res := ua.Dial(context.Background(), message(uas.Addr, tc.cli, text), func(s call.State, _ time.Time) { seen = append(seen, s) })
			if res.State != tc.state || res.SIPCode != tc.code || res.Reason != tc.reason || res.Phrase != tc.phrase || !res.Responded {
				t.Fatalf("result %s phrase %q, want %s code=%d reason=%q phrase %q\n%s", res, res.Phrase, tc.state, tc.code, tc.reason, tc.phrase, uas.Messages())
			}
			if res.CallID == "" || res.StartedAt.IsZero() || res.EndedAt.Before(res.StartedAt) || res.Rang {
				t.Errorf("result %+v: want a Call-ID, times in order, no ring", res)
			}
			if len(seen) != 1 || seen[0] != call.StateDialing {
				t.Errorf("progress %v, want [dialing]", seen)
			}
			if code := uas.Wait(t, 10*time.Second); code != 0 {
				t.Fatalf("sipp exit %d: the trunk's scenario did not complete\n%s\n%s", code, uas.Output(), uas.Messages())
			}
			msgs := uas.Received("MESSAGE ")
			if len(msgs) != 1 {
				t.Fatalf("sipp saw %d MESSAGEs, want 1:\n%s", len(msgs), uas.Messages())
			}
			m := msgs[0]
			for _, want := range []string{
				"MESSAGE sip:+447700900123@127.0.0.1:", "To: <sip:+447700900123@", tc.from,
				"Content-Type: text/plain;charset=UTF-8", "Call-ID: " + res.CallID, "CSeq: 1 MESSAGE",
				fmt.Sprintf("Content-Length: %d", len(text)), "\r\n\r\n" + text,
			} {
				if !strings.Contains(m, want) {
					t.Errorf("MESSAGE lacks %q:\n%s", want, m)
				}
			}
			for _, unwanted := range []string{"P-Asserted-Identity", "Contact:", "INVITE"} {
				if strings.Contains(m, unwanted) {
					t.Errorf("MESSAGE has %q:\n%s", unwanted, m)
				}
			}
		})
	}
}

// The trunk's settings put the MESSAGE's recipient where they put an INVITE's (domain, user=phone, tech
// prefix), and identity headers only when cli_headers names them.
func TestMessageHeaders(t *testing.T) {
	uas := peers.StartUAS(t, "message_uas.xml", 1)
	ua := listenUA(t)
	req := message(uas.Addr, "442079461234", "code 1234")
	req.Domain, req.To, req.UserPhone, req.CLIHeaders = "trunk.example", "*99#02079460123", true, []string{"from", "pai"}
	if res := ua.Dial(context.Background(), req, nil); res.State != call.StateSent {
		t.Fatalf("result %s\n%s", res, uas.Messages())
	}
	m := uas.Received("MESSAGE ")[0]
	_, port, _ := net.SplitHostPort(uas.Addr)
	for _, want := range []string{
		"MESSAGE sip:*99#02079460123@trunk.example:" + port + ";user=phone SIP/2.0",
		"To: <sip:*99#02079460123@trunk.example:" + port + ";user=phone>",
		"From: <sip:442079461234@127.0.0.1;user=phone>;tag=",
		"P-Asserted-Identity: <sip:442079461234@127.0.0.1;user=phone>",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("MESSAGE lacks %q:\n%s", want, m)
		}
	}
}

// Behind a Kamailio trunk that challenges every MESSAGE (407, MD5, qop=auth): with the right credentials the
// MESSAGE is sent again authenticated and reaches the SIPp trunk behind it; with a wrong password it ends
// auth_failed after two.
func TestMessageDigestAuthThroughKamailio(t *testing.T) {
	tests := []struct {
		name, password string
		state          call.State
		code           int
		reason         call.Reason
		delivered      int
	}{
		{"right password", "s3cret", call.StateSent, 200, "", 1},
		{"wrong password", "wrong", call.StateFailed, 407, call.ReasonAuthFailed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uas := peers.StartUAS(t, "message_uas.xml", 1)
			k := peers.StartKamailio(t, "auth.cfg", uas.Addr)
			ua := listenUA(t)
			req := message(k.Addr, "+442079461234", "Your code is 482913")
			req.Username, req.Password, req.Realm = "flashotp", tc.password, "flashotp.test"
			res := ua.Dial(context.Background(), req, nil)
			if res.State != tc.state || res.SIPCode != tc.code || res.Reason != tc.reason {
				t.Fatalf("result %s, want %s code=%d reason=%q\nkamailio:\n%s\nsipp:\n%s", res, tc.state, tc.code, tc.reason, k.Log(), uas.Messages())
			}
			// Counted by CSeq: on a loaded machine a retransmission of either may reach the trunk too. Kamailio
			// writes its log as it goes: the second MESSAGE's line may trail the answer.
			testwait.Until(3*time.Second, func() bool { return strings.Contains(k.Log(), "flashotp-test: MESSAGE cseq=2") })
			log := k.Log()
			if !strings.Contains(log, "flashotp-test: MESSAGE cseq=1 auth=<null>") ||
				!strings.Contains(log, "flashotp-test: MESSAGE cseq=2 auth=flashotp") ||
				strings.Contains(log, "flashotp-test: MESSAGE cseq=3") {
				t.Errorf("want the MESSAGE challenged (CSeq 1), sent once more authenticated (CSeq 2), and no third:\n%s", log)
			}
			msgs := uas.Received("MESSAGE ")
			if len(msgs) != tc.delivered {
				t.Fatalf("%d MESSAGEs delivered, want %d\n%s", len(msgs), tc.delivered, uas.Messages())
			}
			if tc.delivered == 1 && !strings.Contains(msgs[0], "\r\n\r\nYour code is 482913") {
				t.Errorf("delivered MESSAGE lacks the text:\n%s", msgs[0])
			}
		})
	}
}

// A trunk that never answers: failed trunk_error at DialTimeout, without response, so the dialer may try
// the next trunk. One where nothing listens: the same at once (ICMP port unreachable, connection refused).
func TestMessageNoAnswer(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	ua := listenUA(t)
	tests := []struct {
		name, target, transport string
		timeout, within         time.Duration
	}{
		{"silent", dead.LocalAddr().String(), "udp", 300 * time.Millisecond, 3 * time.Second},
		{"udp port closed", closedPort(t, "udp"), "udp", 30 * time.Second, 3 * time.Second},
		{"tcp port closed", closedPort(t, "tcp"), "tcp", 30 * time.Second, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := message(tc.target, "+442079461234", "code 1234")
			req.Transport, req.DialTimeout = tc.transport, tc.timeout
			start := time.Now()
			res := ua.Dial(context.Background(), req, nil)
			if res.State != call.StateFailed || res.Reason != call.ReasonTrunkError || res.Responded || res.SIPCode != 0 {
				t.Fatalf("result %s responded=%t, want failed trunk_error without response", res, res.Responded)
			}
			if took := time.Since(start); took < tc.timeout && tc.name == "silent" || took > tc.within {
				t.Fatalf("took %s (dial_timeout %s)", took, tc.timeout)
			}
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res := ua.Dial(ctx, message(dead.LocalAddr().String(), "+442079461234", "code 1234"), nil)
		if res.State != call.StateFailed || res.Reason != call.ReasonInterrupted || res.Responded {
			t.Fatalf("result %s, want failed interrupted", res)
		}
	})
}

// Input that cannot make a MESSAGE is refused before anything is sent: client_error, no response.
func TestMessageRefusesBadInput(t *testing.T) {
	trunk, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	ua := listenUA(t)
	good := message(trunk.LocalAddr().String(), "+442079461234", "code 1234")
	tests := map[string]func(*call.Request){
		"empty text":        func(r *call.Request) { r.Text = "" },
		"blank text":        func(r *call.Request) { r.Text = " \r\n" },
		"text not UTF-8":    func(r *call.Request) { r.Text = "code \xff" },
		"text too long":     func(r *call.Request) { r.Text = strings.Repeat("1", 1601) },
		"NUL in text":       func(r *call.Request) { r.Text = "code\x00 1234" },
		"header in sender":  func(r *call.Request) { r.CLI = "Acme\r\nX: y" },
		"long sender ID":    func(r *call.Request) { r.CLI = "AcmeBankLimited" },
		"sender not GSM":    func(r *call.Request) { r.CLI = "Acme<>" + "`" },
		"recipient letters": func(r *call.Request) { r.To = "+44abc" },
		"header in to":      func(r *call.Request) { r.To = "+44770\r\nX: y" },
		"bad target":        func(r *call.Request) { r.Target = "nowhere" },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			req := good
			change(&req)
			res := ua.Dial(context.Background(), req, nil)
			if res.State != call.StateFailed || res.Reason != call.ReasonClientError || res.Responded {
				t.Fatalf("result %s, want failed client_error before sending", res)
			}
		})
	}
	// Nothing reached the trunk; the good request does.
	if res := ua.Dial(context.Background(), func() call.Request { r := good; r.DialTimeout = 200 * time.Millisecond; return r }(), nil); res.Reason != call.ReasonTrunkError {
		t.Fatalf("good request to the silent trunk: %s", res)
	}
	buf := make([]byte, 4096)
	_ = trunk.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := trunk.ReadFrom(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "\r\n\r\ncode 1234") {
		t.Fatalf("first packet at the trunk: %q %v, want the good MESSAGE", buf[:n], err)
	}
}

// The demo phone takes a MESSAGE: 200, and one line "sms from <sender>: <text>", whatever control
// characters the sender put in the text or its name.
func TestPhoneMessage(t *testing.T) {
	var out fakes.Buffer
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneRing, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ua := listenUA(t)
	for _, cli := range []string{"+442079461234", "Acme Inc"} {
		if res := ua.Dial(context.Background(), message(phone.Addr(), cli, "Your code is 482913.\nDo not share it."), nil); res.State != call.StateSent {
			t.Fatalf("from %s: %s", cli, res)
		}
	}
	want := "sms from +442079461234: Your code is 482913. Do not share it.\n" +
		"sms from Acme Inc: Your code is 482913. Do not share it.\n"
	testwait.For(t, 2*time.Second, "the phone's lines", func() bool { return out.String() == want })

	// A hostile MESSAGE, straight on the wire: an escape sequence, a bidi override and a fake second line.
	before := len(out.String())
	conn, err := net.Dial("udp", phone.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "code \x1b[2J1234\u202e\r\nsms from +1555: 9999"
	raw := "MESSAGE sip:+447700900123@" + phone.Addr() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK-hostile1\r\n" +
		"From: <sip:Evil%0D%0AX@127.0.0.1>;tag=1\r\nTo: <sip:+447700900123@127.0.0.1>\r\nCall-ID: hostile-1\r\n" +
		"CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 OK") {
		t.Fatalf("answer %q %v, want 200 OK", buf[:n], err)
	}
	want = "sms from Evil  X: code \uFFFD[2J1234\uFFFD  sms from +1555: 9999\n"
	line := func() string { return out.String()[before:] }
	testwait.For(t, 2*time.Second, "the phone's line", func() bool { return line() != "" })
	if line() != want {
		t.Fatalf("phone printed %q, want %q", line(), want)
	}
}

// BenchmarkMessage measures SMS sent as SIP MESSAGE from the UA to a SIPp trunk that answers 200 (without
// tracing) on loopback, b.N of them, 64 in flight at once.
//
//	go test -run '^$' -bench BenchmarkMessage -benchtime 20000x -count 3 ./sip/
func BenchmarkMessage(b *testing.B) {
	peers.Require(b, "sipp", "sip-tester")
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	uas, err := peers.ListenSIPp(b.TempDir(), "udp", "-sf", peers.Scenario(b, "message_uas.xml"), "-m", "100000000")
	if err != nil {
		b.Fatal(err)
	}
	defer uas.Stop()
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	req := message(uas.Addr, "+442079461234", "Your Acme code is 482913. Do not share it.")
	b.SetParallelism(32) // with GOMAXPROCS 2: 64 in flight
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := ua.Dial(context.Background(), req, nil); res.State != call.StateSent {
				b.Errorf("message %s", res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}

// Messages leave nothing running behind them: after 100 MESSAGEs the trunk took, the UA holds no more
// goroutines than before.
func TestMessageNoGoroutineLeft(t *testing.T) {
	uas := peers.StartUAS(t, "message_uas.xml", 101)
	ua := listenUA(t)
	req := message(uas.Addr, "+442079461234", "code 1234")
	if res := ua.Dial(context.Background(), req, nil); res.State != call.StateSent { // warm up: pools
		t.Fatalf("message %s", res)
	}
	// Lets the warm-up's short-lived goroutines end; as in TestNoGoroutineLeft, the count is what is measured.
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := ua.Dial(context.Background(), req, nil); res.State != call.StateSent {
				t.Errorf("message %s", res)
			}
		}()
	}
	wg.Wait()
	if !testwait.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= before+5 }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after 100 messages, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}
