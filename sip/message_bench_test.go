package sip

import (
	"io"
	"log/slog"
	"testing"

	"flashotp/call"
)

// BenchmarkNewInvite: building one flash call's INVITE with its SDP offer.
func BenchmarkNewInvite(b *testing.B) {
	ua, err := Listen(Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	c := call.Request{Target: "127.0.0.1:5062", To: "+447700900123", CLI: "+442079461234"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ua.newInvite(c); err != nil {
			b.Fatal(err)
		}
	}
}
