package sip_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/internal/peers"
	"flashotp/sip"
)

// A flash call over TCP to linphone (belle-sip), which answers where the Via's sent-by and rport tell it:
// with ;rport, on the connection the INVITE came on. Without it belle-sip opens a new connection to the
// sent-by (the UA's UDP port, or public_address), which nothing accepts, and the call that rang ends
// no_ring. public_address here is TEST-NET-1, never contacted.
func TestDialLinphoneTCP(t *testing.T) {
	l := peers.StartLinphone(t)
	for _, public := range []string{"", "192.0.2.1:5060"} {
		t.Run("public_address="+public, func(t *testing.T) {
			ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, PublicAddress: public})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ua.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := ua.Dial(ctx, call.Request{
				Target: l.Addr, Transport: "tcp", To: "+447700900123", CLI: "+442079461234",
				DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
			}, nil)
			if res.State != call.StateMissed || res.SIPCode != 487 || !res.Rang {
				t.Fatalf("result %s, want missed code=487 rang=true\nlinphonec:\n%s\ntrace:\n%s", res, l.Log(), l.Trace())
			}
		})
	}
	if n := strings.Count(l.Log(), "Receiving new incoming call from sip:+442079461234@"); n != 2 {
		t.Errorf("linphonec showed %d incoming calls from the CLI, want 2:\n%s", n, l.Log())
	}
}

// topVia returns the first Via header line of a SIP message.
func topVia(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(line, "Via:") || strings.HasPrefix(line, "v:") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Every request the UA sends asks for rport (RFC 3581) in its Via, on every transport: the INVITE, the
// CANCEL, the ACK and BYE of a 200 that raced the CANCEL (answer.xml), an OPTIONS probe and a MESSAGE. (TLS:
// the engine's TestTransports.)
func TestViaRport(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			uas := peers.StartUASOn(t, transport, "answer.xml", 1)
			ua := listenUA(t)
			res := ua.Dial(context.Background(), call.Request{
				Target: uas.Addr, Transport: transport, To: "+447700900123", CLI: "+442079461234",
				DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
			}, nil)
			if res.State != call.StateAnswered {
				t.Fatalf("result %s, want answered\n%s", res, uas.Messages())
			}
			if code := uas.Wait(t, 10*time.Second); code != 0 {
				t.Fatalf("sipp exit %d\n%s", code, uas.Messages())
			}
			for _, method := range []string{"INVITE", "CANCEL", "ACK", "BYE"} {
				msgs := uas.Received(method + " ")
				if len(msgs) == 0 {
					t.Errorf("no %s came", method)
				}
				for _, m := range msgs {
					if via := topVia(m); !strings.HasPrefix(via, "Via: SIP/2.0/"+strings.ToUpper(transport)+" ") || !strings.Contains(via, ";rport") {
						t.Errorf("%s's Via %q: want %s with ;rport", method, via, strings.ToUpper(transport))
					}
				}
			}

			// OPTIONS and MESSAGE, to a trunk that reads the request and says nothing.
			send := map[string]func(target string){
				"OPTIONS": func(target string) {
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					defer cancel()
					_, _ = ua.Options(ctx, target, transport)
				},
				"MESSAGE": func(target string) {
					ua.Dial(context.Background(), call.Request{
						Kind: call.KindMessage, Target: target, Transport: transport, To: "+447700900123", CLI: "+442079461234",
						Text: "Your code is 123456", DialTimeout: 300 * time.Millisecond,
					}, nil)
				},
			}
			for method, send := range send {
				got := make(chan string, 1)
				send(readOneRequest(t, transport, got))
				select {
				case m := <-got:
					if via := topVia(m); !strings.HasPrefix(m, method+" ") || !strings.Contains(via, ";rport") {
						t.Errorf("%s's Via %q: want ;rport\n%s", method, via, m)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no %s came", method)
				}
			}
		})
	}
}

// readOneRequest listens on a loopback port for transport and sends the first SIP message it reads, with
// "\r\n" turned into "\n", to got. It returns the port's address.
func readOneRequest(t *testing.T, transport string, got chan<- string) string {
	t.Helper()
	buf := make([]byte, 65535)
	if transport == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			if n, _, err := c.ReadFrom(buf); err == nil {
				got <- strings.ReplaceAll(string(buf[:n]), "\r\n", "\n")
			}
		}()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var msg []byte
		for !strings.Contains(string(msg), "\r\n\r\n") {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			msg = append(msg, buf[:n]...)
		}
		got <- strings.ReplaceAll(string(msg), "\r\n", "\n")
	}()
	return l.Addr().String()
}

// A CANCEL carries the credentials of the INVITE it cancels, for a trunk that challenged with 407 and one
// that challenged with 401: some proxies drop a CANCEL without them, and the phone rings on.
func TestCancelCarriesCredentials(t *testing.T) {
	tests := []struct {
		code, header string
	}{
		{"407", "Proxy-Authorization"},
		{"401", "Authorization"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			uas := peers.StartUAS(t, "auth"+tc.code+"_ring_cancel.xml", 1)
			ua := listenUA(t)
			res := ua.Dial(context.Background(), call.Request{
				Target: uas.Addr, To: "+447700900123", CLI: "+442079461234",
				Username: "flashotp", Password: "s3cret", Realm: "flashotp.test",
				DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
			}, nil)
			if res.State != call.StateMissed || res.SIPCode != 487 {
				t.Fatalf("result %s, want missed code=487\n%s", res, uas.Messages())
			}
			if code := uas.Wait(t, 10*time.Second); code != 0 {
				t.Fatalf("sipp exit %d: the CANCEL lacked the credentials?\n%s", code, uas.Messages())
			}
			invites, cancels := uas.Received("INVITE "), uas.Received("CANCEL ")
			if len(invites) != 2 || len(cancels) != 1 {
				t.Fatalf("%d INVITEs and %d CANCELs, want 2 and 1\n%s", len(invites), len(cancels), uas.Messages())
			}
			want := headerLine(invites[1], tc.header)
			if want == "" || headerLine(cancels[0], tc.header) != want {
				t.Fatalf("CANCEL's %s %q, want the INVITE's %q", tc.header, headerLine(cancels[0], tc.header), want)
			}
		})
	}
}

// headerLine returns the line of msg that holds header name, or "".
func headerLine(msg, name string) string {
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(strings.ToLower(line), strings.ToLower(name)+":") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// The UA answers a peer's OPTIONS with what it supports: Allow, Accept and Supported (SIPp checks them), over
// UDP and over the TCP listener.
func TestOptionsAnswer(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, TCP: transport == "tcp"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ua.Close() })
			uac := peers.StartUAC(t, transport, "options_ask.xml", ua.Addr())
			if code := uac.Wait(t, 15*time.Second); code != 0 {
				t.Fatalf("sipp exit %d: the answer to OPTIONS lacks a header\n%s", code, uac.Messages())
			}
		})
	}
}

// A flash call through a Net::SIP registrar and stateless proxy to baresip registered there: the proxy
// forwards the INVITE to the contact baresip registered, and the CANCEL after it, and the call is missed.
func TestDialThroughNetSIP(t *testing.T) {
	proxy := peers.StartNetSIP(t, "udp")
	b := peers.StartBaresipRegistered(t, proxy.Addr)
	ua := listenUA(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := ua.Dial(ctx, call.Request{
		Target: proxy.Addr, To: peers.BaresipUser, CLI: "+442079461234",
		DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second,
	}, nil)
	if res.State != call.StateMissed || res.SIPCode != 487 || !res.Rang {
		t.Fatalf("result %s, want missed code=487 rang=true\nnet::sip:\n%s\nbaresip:\n%s", res, proxy.Log(), b.Log())
	}
	if !strings.Contains(b.Log(), "Incoming call from:  sip:+442079461234@") {
		t.Errorf("baresip did not show the incoming call from the CLI:\n%s", b.Log())
	}
	// baresip's -s trace: the INVITE came from the proxy, not straight from the UA.
	if !strings.Contains(b.Log(), "UDP "+proxy.Addr+" -> "+registeredContact(b.Log())+"\nINVITE sip:"+peers.BaresipUser) {
		t.Errorf("no INVITE reached baresip from the proxy %s:\n%s", proxy.Addr, b.Log())
	}
}

// registeredContact returns the host:port baresip sent its REGISTER from, as its -s trace shows it.
func registeredContact(log string) string {
	for _, entry := range strings.Split(log, "#\n")[1:] {
		head, msg, _ := strings.Cut(entry, "\n")
		if from, _, ok := strings.Cut(strings.TrimPrefix(head, "UDP "), " -> "); ok && strings.HasPrefix(msg, "REGISTER ") {
			return from
		}
	}
	return "(no REGISTER)"
}
