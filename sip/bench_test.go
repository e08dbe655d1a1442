package sip_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/sip"
)

// BenchmarkFlashCall measures whole flash calls (INVITE, 180, CANCEL, 200, 487, ACK) from the UA to the
// built-in phone on loopback, b.N of them, with 64 in flight at once.
func BenchmarkFlashCall(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneRing, io.Discard, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer phone.Close()
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	req := call.Request{Target: phone.Addr(), To: "+447700900123", CLI: "+442079461234", DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second}
	b.SetParallelism(32) // with GOMAXPROCS 2: 64 calls in flight
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := ua.Dial(context.Background(), req, nil); res.State != call.StateMissed {
				b.Errorf("call %s", res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
