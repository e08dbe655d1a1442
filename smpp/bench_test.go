package smpp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"flashotp/internal/peers"
	"flashotp/message"
	"flashotp/smpp"
)

// BenchmarkSend submits one-part messages to the test SMSC (node-smpp) from 16 goroutines a CPU through one
// session, window 10, no rate limit to speak of: what one bound session carries here, each message with
// its submit_sm_resp and, soon after, its receipt. Run with
//
//	go test -run XXX -bench Send -benchtime 5000x ./smpp/
func BenchmarkSend(b *testing.B) {
	smsc := peers.StartSMSC(b, "flashotp", "secret1")
	s, err := smpp.New(smpp.Config{SMSCs: []smpp.Settings{{Name: "bench", Address: smsc.Addr, SystemID: "flashotp",
		Password: "secret1", Rate: 1e6, Window: 10}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if res := s.Send(ctx, message.Message{Ref: "warm", To: "+447700900123", Text: "code 1"}); res.State != message.Sent {
		b.Fatalf("warm-up: %+v", res)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			res := s.Send(ctx, message.Message{Ref: fmt.Sprint(i), To: "+447700900123", Text: "Your code is 123456"})
			if res.State != message.Sent {
				b.Errorf("send: %+v", res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
