package dialer

import (
	"context"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/internal/testwait"
)

// Trunks shows each trunk's calls by outcome, its failovers, its calls in flight and per second; Probe
// brings a trunk that was down back up once it answers, and records a probe with no answer without
// marking an up trunk down.
func TestTrunkStatus(t *testing.T) {
	caller := &fakeCaller{script: map[string]call.Result{"a:1": serverFail, "b:1": missed}, up: map[string]bool{}}
	rep := newReporter(4)
	d := New(Config{Trunks: []Trunk{
		{Name: "a", Address: "a:1", Transport: "udp", Weight: 1, DownAfter: 2, OptionsInterval: time.Hour, MaxCPS: 50, MaxCalls: 10},
		{Name: "b", Address: "b:1", Transport: "tcp", Priority: 1, Weight: 1, DownAfter: 2, OptionsInterval: time.Hour},
	}, Settings: Settings{QueueSize: 8}}, caller, rep, nil)
	d.Start()
	defer d.Stop(context.Background())
	for _, id := range []string{"1", "2", "3", "4"} {
		if err := d.Submit(Request{ID: id, To: "+14155552671", CLI: "+442079461234"}); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 5*time.Second, "call "+id+" ended", func() bool {
			rep.mu.Lock()
			defer rep.mu.Unlock()
			return len(rep.ended[id]) == 1
		})
	}
	// a: two 503s (each failed over to b), then down: calls 3 and 4 go to b alone.
	st := d.Trunks()
	a, b := st[0], st[1]
	if a.Name != "a" || a.Up || a.Failed != 2 || a.Failovers != 2 || a.Missed != 0 || a.MaxCPS != 50 || a.MaxCalls != 10 || a.Transport != "udp" || a.InFlight != 0 {
		t.Errorf("a: %+v", a)
	}
	if b.Name != "b" || !b.Up || b.Missed != 4 || b.Failed != 0 || b.Failovers != 0 || b.Address != "b:1" || b.Transport != "tcp" {
		t.Errorf("b: %+v", b)
	}
	// 2 calls on a, 4 on b within the last ten seconds.
	if a.CPS != 0.2 || b.CPS != 0.4 {
		t.Errorf("cps a %v b %v, want 0.2 and 0.4", a.CPS, b.CPS)
	}
	if !a.LastProbe.At.IsZero() {
		t.Errorf("a probed before anyone asked: %+v", a.LastProbe)
	}

	p, err := d.Probe(t.Context(), "a")
	if err != nil || p.Up || p.Err == "" {
		t.Fatalf("probe of a silent a: %+v, %v", p, err)
	}
	if len(d.Down()) != 1 {
		t.Fatal("a silent probe brought a up")
	}
	caller.mu.Lock()
	caller.up["a:1"] = true
	caller.mu.Unlock()
	if p, err := d.Probe(t.Context(), "a"); err != nil || !p.Up || p.Status != 200 {
		t.Fatalf("probe of a: %+v, %v", p, err)
	}
	if len(d.Down()) != 0 {
		t.Fatal("a answered OPTIONS and is still down")
	}
	if p, _ := d.Probe(t.Context(), "b"); p.Up || !d.Trunks()[1].Up || d.Trunks()[1].LastProbe.Err == "" {
		t.Fatalf("a silent probe of an up trunk: %+v, status %+v", p, d.Trunks()[1])
	}
}

// The meter counts what happened in the last ten seconds, the current one included.
func TestMeter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newMeter(func() time.Time { return now })
	for range 5 {
		m.add()
	}
	if got := m.perSecond(); got != 0.5 {
		t.Fatalf("5 events now: %v/s, want 0.5", got)
	}
	now = now.Add(9 * time.Second)
	m.add()
	if got := m.perSecond(); got != 0.6 {
		t.Fatalf("9 s later: %v/s, want 0.6", got)
	}
	now = now.Add(time.Second) // the first five fall out of the window
	if got := m.perSecond(); got != 0.1 {
		t.Fatalf("10 s later: %v/s, want 0.1", got)
	}
	now = now.Add(time.Hour) // a bucket reused after wrapping round counts afresh
	m.add()
	if got := m.perSecond(); got != 0.1 {
		t.Fatalf("an hour later: %v/s, want 0.1", got)
	}
}
