package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/configs"
)

// lineCounter counts the lines the built-in phone prints.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

// BenchmarkSendToMissed measures the whole engine: POST /otp/send over HTTP, the verification stored in
// bbolt, the flash call through the dialer and the SIP UA to the built-in phone, until the phone has seen
// every call cancelled. 16 clients send at once.
func BenchmarkSendToMissed(b *testing.B) {
	cfg := configs.Default()
	cfg.HTTP.Listen, cfg.SIP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.Path = filepath.Join(b.TempDir(), "flashotp.db")
	cfg.Trunks = []configs.Trunk{{Name: "phone", Address: "127.0.0.1:0"}}
	cfg.Pool = []configs.Pool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	cfg.Apps = []configs.App{{ID: "demo", APIKey: "demo", APISecret: "demo-secret"}}
	cfg.Phone = configs.Phone{Enabled: true, Listen: "127.0.0.1:0", Mode: configs.PhoneRing}
	var missed lineCounter
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})))
	m.PhoneOut = &missed
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Ready
	defer func() { cancel(); <-done }()

	url := "http://" + m.HTTPAddr + "/otp/send"
	body := []byte(`{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("X-API-Key", "demo")
			req.Header.Set("X-API-Secret", "demo-secret")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 202 {
				b.Errorf("send: %d", res.StatusCode)
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for missed.n.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got := missed.n.Load(); got != int64(b.N) {
		b.Fatalf("phone saw %d missed calls of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
