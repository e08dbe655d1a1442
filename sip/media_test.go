package sip

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Only RTP from the watched address is counted: not a stranger's, not datagrams that merely have 12 bytes.
func TestMediaSinkCountsRTPOnly(t *testing.T) {
	m, err := ListenMedia("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	callee, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	stranger, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	count, stop := m.Watch(callee.LocalAddr().String())
	defer stop()

	sink := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: m.Port()}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	const packets = 5
	for i := 0; i < packets; i++ {
		_, _ = stranger.WriteTo(raw, sink)
		_, _ = callee.WriteTo([]byte("\x00garbage, not RTP"), sink) // 18 bytes: parses as a version 0 header
		_, _ = callee.WriteTo(raw, sink)
	}
	// The sink reads in order; a last RTP packet from the callee says when all before it were read.
	deadline := time.Now().Add(5 * time.Second)
	for count.Load() < packets && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Then a little longer: had the garbage or the stranger's packets been counted, the count would reach
	// packets early and go on growing. That nothing more is counted has no condition to wait for.
	time.Sleep(50 * time.Millisecond)
	if got := count.Load(); got != packets {
		t.Errorf("counted %d packets, want %d (the callee's RTP only)", got, packets)
	}
}
