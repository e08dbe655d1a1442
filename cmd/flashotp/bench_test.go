package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/dialer"
	"flashotp/numberpool"
	"flashotp/sip"
)

// lineCounter counts the lines the built-in phone prints.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

// benchEngine runs the engine with the built-in phone in ring mode and returns the send URL and the count
// of missed calls the phone has seen.
func benchEngine(b *testing.B) (string, *lineCounter) {
	cfg := configs.Default()
	cfg.HTTP.Listen, cfg.SIP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.Path = filepath.Join(b.TempDir(), "flashotp.db")
	cfg.Trunks = []dialer.Trunk{{Name: "phone", Address: "127.0.0.1:0"}}
	cfg.Pool = []numberpool.FilePool{{Name: "demo", Numbers: []string{"+44207946XXXX"}}}
	// Rate limits off: the benchmark's clients are one app on one address sending to one number range.
	off := apps.Limit{}
	cfg.Apps = []apps.ConfigApp{{App: apps.App{ID: "demo", RateLimits: map[string]apps.Limit{
		"recipient": off, "app": off, "client": off, "prefix": off, "failed_verifications": off,
	}}, APIKey: "demo", APISecret: "demo-secret"}}
	cfg.Phone = sip.PhoneSettings{Enabled: true, Listen: "127.0.0.1:0", Mode: sip.PhoneRing}
	cfg.HTTP.DrainDelay = 0
	missed := &lineCounter{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	m.PhoneOut = missed
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Ready
	b.Cleanup(func() { cancel(); <-done })
	return "http://" + m.HTTPAddr + "/otp/send", missed
}

var sendSeq atomic.Int64

// postSend sends one flash call, each to another recipient (as real traffic does: one recipient gets a few
// calls a day, and its cooldown history stays short).
func postSend(b *testing.B, url string) {
	body := fmt.Sprintf(`{"appid":"demo","recipient":"+1415555%04d","channel":"flashcall"}`, 2000+sendSeq.Add(1)%8000)
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
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

// waitMissed waits (bounded) until the phone has seen n missed calls.
func waitMissed(b *testing.B, missed *lineCounter, n int64) {
	deadline := time.Now().Add(60 * time.Second)
	for missed.n.Load() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	if got := missed.n.Load(); got < n {
		b.Fatalf("phone saw %d missed calls of %d", got, n)
	}
}

// BenchmarkSendToMissed measures the whole engine's throughput: POST /otp/send over HTTP, the verification
// stored in bbolt, the flash call through the dialer and the SIP UA to the built-in phone, until the phone
// has seen every call cancelled. 16 clients send at once.
func BenchmarkSendToMissed(b *testing.B) {
	url, missed := benchEngine(b)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postSend(b, url)
		}
	})
	waitMissed(b, missed, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkSendToMissedLatency measures one call at a time: from POST /otp/send until the phone has been
// cancelled (the CANCEL left right after the 180; ring_time 0).
func BenchmarkSendToMissedLatency(b *testing.B) {
	url, missed := benchEngine(b)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		postSend(b, url)
		waitMissed(b, missed, int64(i))
	}
}
