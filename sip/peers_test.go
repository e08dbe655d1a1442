package sip_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/sip"
)

// The UA reads SIP only from its peers' IPs (a host name resolved; any port) and from AcceptFrom; a
// stranger's datagram gets no answer and is counted.
func TestPeersOnly(t *testing.T) {
	var (
		mu      sync.Mutex
		dropped = map[string]int{}
	)
	ua, err := sip.Listen(sip.Config{
		Listen:     "127.0.0.1:0",
		Peers:      []string{"localhost:5060", "127.0.0.4:5080"},
		AcceptFrom: []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")},
		Dropped: func(reason string) {
			mu.Lock()
			dropped[reason]++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	tests := []struct {
		source   string
		answered bool
	}{
		{"127.0.0.1", true},  // localhost, resolved; another port than the peer's
		{"127.0.0.4", true},  // an IP peer, another port
		{"127.0.1.9", true},  // in AcceptFrom
		{"127.0.0.2", false}, // a stranger on the same host
		{"127.0.2.1", false},
	}
	strangers := 0
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			conn, err := net.ListenPacket("udp", tc.source+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			options := "OPTIONS sip:flashotp@" + ua.Addr() + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK" + strings.ReplaceAll(tc.source, ".", "") + "\r\n" +
				"From: <sip:probe@" + tc.source + ">;tag=1\r\nTo: <sip:flashotp@" + ua.Addr() + ">\r\n" +
				"Call-ID: peers-" + tc.source + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
			to, _ := net.ResolveUDPAddr("udp", ua.Addr())
			if _, err := conn.WriteTo([]byte(options), to); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second)) // an answer takes milliseconds
			buf := make([]byte, 4096)
			n, _, err := conn.ReadFrom(buf)
			switch {
			case tc.answered && err != nil:
				t.Errorf("OPTIONS from %s unanswered: %v", tc.source, err)
			case !tc.answered && !errors.Is(err, os.ErrDeadlineExceeded):
				t.Errorf("OPTIONS from %s answered: %q", tc.source, buf[:n])
			case tc.answered && !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 "):
				t.Errorf("OPTIONS from %s answered %q", tc.source, buf[:n])
			}
		})
		if !tc.answered {
			strangers++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped[sip.DropStranger] != strangers {
		t.Errorf("dropped %v, want %s: %d", dropped, sip.DropStranger, strangers)
	}
}
