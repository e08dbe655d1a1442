package dialer

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"flashotp/sip"
)

// fakeCaller answers each call with what script says for the trunk it was sent to.
type fakeCaller struct {
	mu     sync.Mutex
	script map[string]sip.Result // by target address
	block  chan struct{}         // when not nil, calls wait for it or their context
	dialed []string              // targets, in order
}

var _ Caller = (*fakeCaller)(nil)

func (f *fakeCaller) Dial(ctx context.Context, c sip.Call, progress func(sip.State, time.Time)) sip.Result {
	f.mu.Lock()
	f.dialed = append(f.dialed, c.Target)
	res := f.script[c.Target]
	f.mu.Unlock()
	progress(sip.StateDialing, time.Now())
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return sip.Result{State: sip.StateFailed, Reason: sip.ReasonInterrupted}
		}
	}
	return res
}

// fakeReporter records outcomes per call.
type fakeReporter struct {
	mu    sync.Mutex
	ended map[string][]sip.Result
	trunk map[string]string
	all   chan struct{}
	want  int
}

var _ Reporter = (*fakeReporter)(nil)

func newReporter(want int) *fakeReporter {
	return &fakeReporter{ended: map[string][]sip.Result{}, trunk: map[string]string{}, all: make(chan struct{}), want: want}
}

func (r *fakeReporter) CallProgress(string, string, sip.State, time.Time) {}

func (r *fakeReporter) CallEnded(id, trunk string, res sip.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[id] = append(r.ended[id], res)
	r.trunk[id] = trunk
	if len(r.ended) == r.want {
		close(r.all)
	}
}

func (r *fakeReporter) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.all:
	case <-time.After(5 * time.Second):
		t.Fatalf("only %d of %d calls ended", len(r.ended), r.want)
	}
}

var (
	missed     = sip.Result{State: sip.StateMissed, SIPCode: 487, Rang: true, Responded: true}
	silent     = sip.Result{State: sip.StateFailed, Reason: sip.ReasonNoRing}
	serverFail = sip.Result{State: sip.StateFailed, SIPCode: 503, Reason: sip.ReasonTrunkError, Responded: true}
)

func TestFailover(t *testing.T) {
	tests := []struct {
		name      string
		a         sip.Result
		wantTrunk string
		wantDials []string
		wantState sip.State
	}{
		{"first trunk works", missed, "a", []string{"a:1"}, sip.StateMissed},
		{"silent trunk fails over", silent, "b", []string{"a:1", "b:1"}, sip.StateMissed},
		// A 503 is a response: the INVITE may have reached the network, so it is never dialed again.
		{"answered failure does not fail over", serverFail, "a", []string{"a:1"}, sip.StateFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller := &fakeCaller{script: map[string]sip.Result{"a:1": tc.a, "b:1": missed}}
			rep := newReporter(1)
			d := New(Config{Trunks: []Trunk{{Name: "a", Address: "a:1"}, {Name: "b", Address: "b:1"}}, QueueSize: 4}, caller, rep, nil)
			d.Start()
			if err := d.Submit(Request{ID: "v1", To: "+14155552671", CLI: "+442079461234"}); err != nil {
				t.Fatal(err)
			}
			rep.wait(t)
			if err := d.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := rep.ended["v1"]; len(got) != 1 || got[0].State != tc.wantState || rep.trunk["v1"] != tc.wantTrunk {
				t.Fatalf("ended %v on %q, want one %s on %q", got, rep.trunk["v1"], tc.wantState, tc.wantTrunk)
			}
			if len(caller.dialed) != len(tc.wantDials) {
				t.Fatalf("dialed %v, want %v", caller.dialed, tc.wantDials)
			}
		})
	}
}

// Admission is bounded, Stop ends every accepted call exactly once, and no goroutine outlives Stop.
func TestQueueFullStopAndLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	caller := &fakeCaller{script: map[string]sip.Result{"a:1": missed}, block: make(chan struct{})}
	const queue, slots = 4, 2
	rep := newReporter(queue + slots)
	d := New(Config{Trunks: []Trunk{{Name: "a", Address: "a:1", MaxCalls: slots}}, QueueSize: queue}, caller, rep, nil)
	d.Start()

	accepted, full := 0, 0
	for i := 0; i < 50; i++ {
		err := d.Submit(Request{ID: string(rune('A' + i))})
		switch err {
		case nil:
			accepted++
		case ErrQueueFull:
			full++
		default:
			t.Fatalf("submit: %v", err)
		}
		if i == slots-1 {
			// Let the dispatcher hand the first calls to the trunk's two channels.
			deadline := time.Now().Add(2 * time.Second)
			for d.QueueLen() > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	// Two calls in flight, four in the queue, and one more the dispatcher may hold waiting for a channel.
	if accepted < queue+slots || accepted > queue+slots+1 || full == 0 {
		t.Fatalf("accepted %d, refused %d", accepted, full)
	}
	rep.want = accepted
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep.wait(t)
	for id, ends := range rep.ended {
		if len(ends) != 1 || ends[0].Reason != sip.ReasonInterrupted {
			t.Fatalf("call %s ended %v, want once interrupted", id, ends)
		}
	}
	if err := d.Submit(Request{ID: "late"}); err != ErrStopped {
		t.Fatalf("submit after stop: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Stop, %d before", n, before)
	}
}
