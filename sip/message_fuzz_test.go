package sip

import (
	"net"
	"strconv"
	"testing"
)

// FuzzSDPMediaAddr: the SDP a callee's 183 carries is outside input; whatever it holds, the parser does not
// panic and only ever names an IP address and a valid port.
func FuzzSDPMediaAddr(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
	f.Add([]byte("c=IN IP6 ::1\nm=audio 65535 RTP/AVP 8\n"))
	f.Add([]byte("c=IN IP4 \nm=audio x RTP/AVP\n"))
	f.Add([]byte("m=audio 0\r\nc=IN IP4 999.1.1.1/127\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		addr, ok := sdpMediaAddr(body)
		if !ok {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || net.ParseIP(host) == nil {
			t.Fatalf("%q gave %q", body, addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("%q gave port %q", body, port)
		}
	})
}
