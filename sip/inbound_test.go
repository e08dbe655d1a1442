package sip_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/sip"
)

// INVITEs to the UA: an inbound trunk's are told to the handler with the caller ID of the first trusted
// header that has one, and rejected with the trunk's code; another peer's are refused 403 and told to no
// one; a stranger's get no answer.
func TestInboundInvites(t *testing.T) {
	ua, err := sip.Listen(sip.Config{
		Listen: "127.0.0.1:0",
		Peers:  []string{"127.0.0.1:5060", "127.0.0.3:5060", "127.0.0.4:5060"},
		Inbound: []sip.InboundTrunk{
			{Name: "carrier", Peers: []string{"127.0.0.1:5060"}, Trust: []string{sip.TrustPAI, sip.TrustFrom}, Reject: 603},
			{Name: "from-only", Peers: []string{"127.0.0.4:5060"}, Trust: []string{sip.TrustFrom}, Reject: 486},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	var (
		mu    sync.Mutex
		calls []sip.InboundCall
	)
	ua.SetInbound(func(c sip.InboundCall) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	})
	tests := []struct {
		name, source, from, pai string
		want                    string // the status line's start; "" no answer
		call                    *sip.InboundCall
	}{
		{"PAI first", "127.0.0.1", "+14155550000", "<sip:+14155552671@carrier.example;user=phone>", "SIP/2.0 603 Decline",
			&sip.InboundCall{Trunk: "carrier", Called: "+442079461100", Caller: "+14155552671"}},
		{"tel PAI", "127.0.0.1", "anonymous", "<tel:+14155552672>", "SIP/2.0 603 ",
			&sip.InboundCall{Trunk: "carrier", Called: "+442079461100", Caller: "+14155552672"}},
		{"From when no PAI", "127.0.0.1", "14155552673", "", "SIP/2.0 603 ",
			&sip.InboundCall{Trunk: "carrier", Called: "+442079461100", Caller: "14155552673"}},
		{"withheld", "127.0.0.1", "anonymous", "", "SIP/2.0 603 ",
			&sip.InboundCall{Trunk: "carrier", Called: "+442079461100"}},
		{"PAI not trusted", "127.0.0.4", "+14155552674", "<sip:+19999999999@x>", "SIP/2.0 486 Busy Here",
			&sip.InboundCall{Trunk: "from-only", Called: "+442079461100", Caller: "+14155552674"}},
		{"a trunk without inbound", "127.0.0.3", "+14155552675", "", "SIP/2.0 403 ", nil},
		{"a stranger", "127.0.0.2", "+14155552676", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			calls = nil
			mu.Unlock()
			conn, err := net.ListenPacket("udp", tc.source+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			invite := "INVITE sip:+442079461100@" + ua.Addr() + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bKin" + strings.ReplaceAll(tc.name, " ", "") + "\r\n" +
				"From: <sip:" + tc.from + "@" + tc.source + ">;tag=1\r\nTo: <sip:+442079461100@" + ua.Addr() + ">\r\n" +
				"Call-ID: inbound-" + strings.ReplaceAll(tc.name, " ", "-") + "\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
			if tc.pai != "" {
				invite += "P-Asserted-Identity: " + tc.pai + "\r\n"
			}
			invite += "Content-Length: 0\r\n\r\n"
			to, _ := net.ResolveUDPAddr("udp", ua.Addr())
			if _, err := conn.WriteTo([]byte(invite), to); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4096)
			n, _, err := conn.ReadFrom(buf)
			switch {
			case tc.want == "" && !errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatalf("answered %q, want no answer", buf[:n])
			case tc.want != "" && (err != nil || !strings.HasPrefix(string(buf[:n]), tc.want)):
				t.Fatalf("answered %q (%v), want %s", buf[:n], err, tc.want)
			case strings.Contains(string(buf[:n]), " 200 "):
				t.Fatalf("an INVITE answered 200")
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tc.call == nil && len(calls) > 0:
				t.Errorf("the handler heard %+v", calls)
			case tc.call != nil && (len(calls) != 1 || calls[0].Trunk != tc.call.Trunk || calls[0].Called != tc.call.Called || calls[0].Caller != tc.call.Caller):
				t.Errorf("the handler heard %+v, want %+v", calls, *tc.call)
			}
		})
	}
}
