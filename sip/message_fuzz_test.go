package sip

import (
	"net"
	"strconv"
	"testing"
)

// FuzzSDPMediaAddr: the SDP a callee's 183 carries is outside input; whatever it holds, the parser does not
// panic and only ever names an IP address and a valid port, written as a socket shows the sender of a packet
// (the media sink counts a call's packets by that). Seeds: testdata/fuzz/FuzzSDPMediaAddr.
func FuzzSDPMediaAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		addr, ok := sdpMediaAddr(body)
		if !ok {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || net.ParseIP(host) == nil {
			t.Fatalf("%q gave %q", body, addr)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			t.Fatalf("%q gave port %q", body, port)
		}
		if from := (&net.UDPAddr{IP: net.ParseIP(host), Port: p}).String(); addr != from {
			t.Fatalf("%q gave %q: packets from there show as %q", body, addr, from)
		}
	})
}
