package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"flashotp/internal/testwait"
	"flashotp/metrics"
)

// The console's data routes on the wired engine, a flash call to the built-in phone going through: the live
// figures (polled and streamed) show the send and its missed call, the verification is listed masked with its
// timeline, the trunk shows the call and answers a probe now, and the engine stops at once with a live
// stream open.
func TestConsoleDataEndToEnd(t *testing.T) {
	const token = "t0k-console"
	cfg := phoneConfig(t)
	cfg.HTTP.AdminToken = token
	m := NewMain(cfg, quietLog())
	m.PhoneOut = &phoneLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		t.Fatalf("engine did not start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	api := client{t, "http://" + m.HTTPAddr}

	res := api.do("POST", "/console/api/session", `{"token":"`+token+`"}`)
	if res.status != http.StatusOK {
		t.Fatalf("sign in: %d %s", res.status, res.raw)
	}
	cookie := ""
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "flashotp_console" {
			cookie = "flashotp_console=" + c.Value
		}
	}
	csrf := res.body["csrf_token"].(string)
	console := func(method, path string) answer {
		t.Helper()
		return api.do(method, path, "", "Cookie", cookie, "X-CSRF-Token", csrf)
	}

	// A stream open before the send.
	req, _ := http.NewRequest("GET", api.base+"/console/api/live/stream", nil)
	req.Header.Set("Cookie", cookie)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	streamed := make(chan metrics.Sample, 64)
	go func() {
		defer close(streamed)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var smp metrics.Sample
				if json.Unmarshal([]byte(data), &smp) == nil {
					streamed <- smp
				}
			}
		}
	}()

	sent := api.send(recipient)
	if sent.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	api.waitCall(id)

	deadline := time.After(10 * time.Second)
	var sends, missed, delivered int64
	for sends < 1 || missed < 1 || delivered < 1 {
		select {
		case smp, ok := <-streamed:
			if !ok {
				t.Fatal("the stream ended")
			}
			sends, missed, delivered = sends+smp.Sends, missed+smp.Missed, delivered+smp.Channels["flashcall"].Delivered
		case <-deadline:
			t.Fatalf("streamed sends %d, missed %d, flashcall delivered %d: want the send and its missed call", sends, missed, delivered)
		}
	}
	var live struct {
		M15    []metrics.Sample `json:"m15"`
		Trunks []struct {
			Name string
			Up   bool
		}
	}
	if err := json.Unmarshal([]byte(console("GET", "/console/api/live").raw), &live); err != nil || len(live.M15) == 0 ||
		live.M15[len(live.M15)-1].SendsTotal != 1 || len(live.Trunks) != 1 || !live.Trunks[0].Up {
		t.Errorf("live: %v %+v", err, live)
	}

	list := console("GET", "/console/api/verifications")
	if list.status != http.StatusOK || !strings.Contains(list.raw, `"recipient":"+14•••••••71"`) || strings.Contains(list.raw, "4155552") || !strings.Contains(list.raw, id) {
		t.Errorf("verifications: %d %s", list.status, list.raw)
	}
	timeline := console("GET", "/console/api/verifications/"+id)
	if timeline.status != http.StatusOK || !strings.Contains(timeline.raw, `"type":"call_missed"`) {
		t.Errorf("timeline: %d %s", timeline.status, timeline.raw)
	}
	if r := console("POST", "/console/api/verifications/"+id+"/reveal"); r.status != http.StatusOK || r.body["recipient"] != recipient {
		t.Errorf("reveal: %d %s", r.status, r.raw)
	}

	var trunks struct {
		Trunks []struct {
			Name  string
			Up    bool
			Calls struct{ Missed int }
		}
	}
	testwait.For(t, 5*time.Second, "the trunk's missed call", func() bool {
		_ = json.Unmarshal([]byte(console("GET", "/console/api/trunks").raw), &trunks)
		return len(trunks.Trunks) == 1 && trunks.Trunks[0].Calls.Missed == 1
	})
	probe := console("POST", "/console/api/trunks/phone/probe")
	if probe.status != http.StatusOK || probe.body["up"] != true || probe.body["status"] != float64(200) {
		t.Errorf("probe of the phone: %d %s", probe.status, probe.raw)
	}
	after := console("GET", "/console/api/trunks")
	if !strings.Contains(after.raw, `"last_probe_status":200`) || strings.Contains(after.raw, `"options_rtt_ms":null`) {
		t.Errorf("trunks after the probe: %s", after.raw)
	}
	overview := console("GET", "/console/api/overview")
	if overview.status != http.StatusOK || overview.body["version"] != version || overview.body["apps"] != float64(1) || overview.body["trunks"] != float64(1) {
		t.Errorf("overview: %d %s", overview.status, overview.raw)
	}
	if r := console("GET", "/console/api/webhooks"); r.status != http.StatusOK || r.raw != `{"items":[]}` {
		t.Errorf("webhooks: %d %s", r.status, r.raw)
	}

	// The stream is still open: the engine stops without waiting for it.
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("engine stop: %v", err)
	}
	stopped = true
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the engine took %s to stop with a live stream open", took)
	}
	for range streamed { // ends with the engine
	}
}
