package email_test

import (
	"context"
	"testing"
	"time"

	"flashotp/email"
	"flashotp/internal/peers"
	"flashotp/message"
	"flashotp/templates"
)

// BenchmarkSendAiosmtpd sends rendered emails to aiosmtpd over STARTTLS with AUTH, a connection each, one
// at a time and max_connections at once; it reports messages per second. Bounded: run it with -benchtime
// 200x (docs/channels.md, "Email").
func BenchmarkSendAiosmtpd(b *testing.B) {
	for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit} {
		srv := peers.StartSMTPD(b, peers.SMTPDOptions{TLS: mode, User: user, Password: password})
		snd, err := email.New(settingsFor(srv, mode), nil)
		if err != nil {
			b.Fatal(err)
		}
		e, err := templates.RenderEmail(nil, "en", "en", templates.Data{Code: "730155", App: "shop", Minutes: 5})
		if err != nil {
			b.Fatal(err)
		}
		m := message.Message{Ref: "bench", Channel: "email", To: "user@example.com", Subject: e.Subject, Text: e.Text, HTML: e.HTML}
		one := func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if res := snd.Send(ctx, m); res.State != message.Sent {
				b.Fatalf("Send = %+v", res)
			}
		}
		b.Run(mode+"/serial", func(b *testing.B) {
			for b.Loop() {
				one(b)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(mode+"/parallel", func(b *testing.B) {
			b.SetParallelism(2) // 2 × GOMAXPROCS senders, against max_connections (4) connections
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one(b)
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
