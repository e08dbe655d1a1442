package metrics

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

// clock is a settable time for the sampler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// The sampler's samples are the differences of what the engine's collectors count between two ticks, with
// the gauges as they are at the tick, the post-dial delay quantiles over the calls that rang in between
// (merged over trunks), and the steps by channel; minutes sum their seconds.
func TestSamplerSamples(t *testing.T) {
	m := New()
	queue := 3
	m.Watch(Watched{Trunks: []string{"a", "b"}, TrunksDown: func() []string { return nil }, QueueLen: func() int { return queue }, StoreFailures: func() uint64 { return 0 }})
	c := &clock{t: time.Date(2026, 12, 6, 10, 0, 58, 0, time.UTC)}
	s := NewSampler(m, c.now)
	m.Sent(time.Millisecond) // before the baseline: in sends_total only
	s.Tick()
	if sec, _ := s.Samples(); len(sec) != 0 {
		t.Fatalf("the baseline made %d samples", len(sec))
	}

	c.t = c.t.Add(time.Second)
	for range 3 {
		m.Sent(time.Millisecond)
	}
	m.CallStarted("a")
	m.CallStarted("b")
	m.CallStarted("b")
	m.CallEnded("a", "missed", "", true)
	m.CallEnded("b", "failed", "busy", true)
	// 10 calls rang: 9 within 50 ms on a, one at 2.5 s on b.
	for range 9 {
		m.Ringing("a", 40*time.Millisecond, -1)
	}
	m.Ringing("b", 2500*time.Millisecond, -1)
	m.VerificationEnded("approved")
	m.VerificationEnded("expired")
	m.StepEnded("flashcall", "delivered")
	m.StepEnded("sms", "sent")
	m.StepEnded("sms", "failed")
	s.Tick()
	sec, _ := s.Samples()
	if len(sec) != 1 {
		t.Fatalf("%d samples, want 1", len(sec))
	}
	got := sec[0]
	if got.T != c.t.Unix() || got.Sends != 3 || got.SendsTotal != 4 || got.Missed != 1 || got.Failed != 1 || got.Answered != 0 ||
		got.Approved != 1 || got.Ended != 2 || got.InFlight != 1 || got.Queue != 3 {
		t.Errorf("sample %+v", got)
	}
	// 9 of 10 in the (0.01, 0.05] bucket: the median interpolates to 0.01 + 0.04 * 5/9; p99 falls in
	// (2, 3]: 2 + 1 * (9.9-9)/1.
	if got.PDDP50 == nil || *got.PDDP50 != 0.0322 || got.PDDP99 == nil || *got.PDDP99 != 2.9 {
		t.Errorf("pdd p50 %v p99 %v, want 0.0322 and 2.9", deref(got.PDDP50), deref(got.PDDP99))
	}
	if got.Channels["flashcall"] != (ChannelCounts{Delivered: 1}) || got.Channels["sms"] != (ChannelCounts{Sent: 1, Failed: 1}) {
		t.Errorf("channels %+v", got.Channels)
	}

	// A quiet second: zero counts, the gauges as they are, no quantiles (null in JSON).
	c.t = c.t.Add(time.Second)
	queue = 0
	s.Tick()
	sec, minutes := s.Samples()
	quiet := sec[1]
	if quiet.Sends != 0 || quiet.SendsTotal != 4 || quiet.InFlight != 1 || quiet.Queue != 0 || quiet.PDDP50 != nil || quiet.Channels["sms"] != (ChannelCounts{}) {
		t.Errorf("quiet sample %+v", quiet)
	}
	b, _ := json.Marshal(quiet)
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	if v, ok := raw["pdd_p50"]; !ok || v != nil {
		t.Errorf("pdd_p50 in JSON: %v (present %v), want null", v, ok)
	}
	// 10:00:59 and 10:01:00 are two minutes: the first is closed once the second's sample comes.
	if len(minutes) != 1 || minutes[0].T != time.Date(2026, 12, 6, 10, 1, 0, 0, time.UTC).Unix() || minutes[0].Sends != 3 || minutes[0].Missed != 1 ||
		minutes[0].PDDP50 == nil || *minutes[0].PDDP50 != 0.0322 || minutes[0].Channels["sms"] != (ChannelCounts{Sent: 1, Failed: 1}) {
		t.Errorf("minutes %+v", minutes)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// The rings keep the newest SecondSamples seconds and MinuteSamples minutes, oldest first.
func TestSamplerRings(t *testing.T) {
	m := New()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s := NewSampler(m, c.now)
	s.Tick()
	for i := range SecondSamples + 100 {
		c.t = c.t.Add(time.Second)
		if i%7 == 0 {
			m.Sent(time.Millisecond)
		}
		s.Tick()
	}
	sec, _ := s.Samples()
	if len(sec) != SecondSamples || sec[0].T != c.t.Unix()-SecondSamples+1 || sec[len(sec)-1].T != c.t.Unix() {
		t.Fatalf("%d seconds from %d to %d, want %d ending at %d", len(sec), sec[0].T, sec[len(sec)-1].T, SecondSamples, c.t.Unix())
	}
	for i := 1; i < len(sec); i++ {
		if sec[i].T != sec[i-1].T+1 {
			t.Fatalf("seconds out of order at %d", i)
		}
	}
	// Filling the minutes' ring a second at a time would take 86,400 ticks: a minute a tick instead (each
	// tick's sample lands in a new minute and closes the one before).
	for range MinuteSamples + 10 {
		c.t = c.t.Add(time.Minute)
		s.Tick()
	}
	_, minutes := s.Samples()
	if len(minutes) != MinuteSamples || minutes[len(minutes)-1].T != c.t.Unix()-c.t.Unix()%60 {
		t.Fatalf("%d minutes, the last at %d, want %d ending at %d", len(minutes), minutes[len(minutes)-1].T, MinuteSamples, c.t.Unix()-c.t.Unix()%60)
	}
}

// Subscribers get each second's sample; Stop ends every subscription and the sampling goroutine.
func TestSamplerSubscribeStop(t *testing.T) {
	before := runtime.NumGoroutine()
	m := New()
	s := NewSampler(m, nil)
	s.Start()
	ch, _ := s.Subscribe()
	other, cancel := s.Subscribe()
	cancel()
	if _, ok := <-other; ok {
		t.Fatal("an ended subscription got a sample")
	}
	m.Sent(time.Millisecond)
	select {
	case smp := <-ch:
		if smp.SendsTotal != 1 {
			t.Errorf("sample %+v, want sends_total 1", smp)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no sample within 3 s")
	}
	s.Stop()
	for range ch { // drained, then closed
	}
	if late, _ := s.Subscribe(); func() bool { _, ok := <-late; return ok }() {
		t.Error("a subscription after Stop is open")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Stop, %d before", n, before)
	}
}

// The cost of a tick (a gathering of every collector, the Go runtime's and the process's included), which
// the sampler pays once a second.
func BenchmarkSamplerTick(b *testing.B) {
	m := New()
	for _, tr := range []string{"a", "b", "c"} {
		m.CallEnded(tr, "missed", "", false)
		m.CallEnded(tr, "failed", "busy", false)
		m.Ringing(tr, 40*time.Millisecond, time.Millisecond)
	}
	s := NewSampler(m, nil)
	for b.Loop() {
		s.Tick()
	}
}
