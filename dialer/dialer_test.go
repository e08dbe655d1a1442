package dialer

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/fault"
	"flashotp/internal/testwait"
)

// fakeCaller answers each call with what script says for the trunk it was sent to.
type fakeCaller struct {
	mu     sync.Mutex
	script map[string]call.Result // by target address
	block  chan struct{}          // when not nil, calls wait for it or their context
	dialed []string               // targets, in order
	up     map[string]bool        // targets that answer OPTIONS
	probed []string
}

var _ Caller = (*fakeCaller)(nil)

func (f *fakeCaller) Dial(ctx context.Context, c call.Request, progress func(call.State, time.Time)) call.Result {
	f.mu.Lock()
	f.dialed = append(f.dialed, c.Target)
	res := f.script[c.Target]
	f.mu.Unlock()
	progress(call.StateDialing, time.Now())
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return call.Result{State: call.StateFailed, Reason: call.ReasonInterrupted}
		}
	}
	return res
}

// Options answers 200 for targets in up, else fails like a silent trunk.
func (f *fakeCaller) Options(_ context.Context, target, _ string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probed = append(f.probed, target)
	if f.up[target] {
		return 200, nil
	}
	return 0, errors.New("timeout")
}

// fakeReporter records outcomes per call.
type fakeReporter struct {
	mu    sync.Mutex
	ended map[string][]call.Result
	trunk map[string]string
	all   chan struct{}
	want  int
}

var _ Reporter = (*fakeReporter)(nil)

func newReporter(want int) *fakeReporter {
	return &fakeReporter{ended: map[string][]call.Result{}, trunk: map[string]string{}, all: make(chan struct{}), want: want}
}

func (r *fakeReporter) CallProgress(string, string, call.State, time.Time) {}

func (r *fakeReporter) CallEnded(id, trunk, _ string, res call.Result) {
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
	missed          = call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, Provisional: true}
	silent          = call.Result{State: call.StateFailed, Reason: call.ReasonNoRing}
	serverFail      = call.Result{State: call.StateFailed, SIPCode: 503, Reason: call.ReasonTrunkError, Responded: true}
	timeout408      = call.Result{State: call.StateFailed, SIPCode: 408, Reason: call.ReasonUnavailable, Responded: true}
	busyAfter       = call.Result{State: call.StateFailed, SIPCode: 486, Reason: call.ReasonBusy, Responded: true, Provisional: true, Rang: true}
	busyBefore      = call.Result{State: call.StateFailed, SIPCode: 486, Reason: call.ReasonBusy, Responded: true}
	fail503After100 = call.Result{State: call.StateFailed, SIPCode: 503, Reason: call.ReasonTrunkError, Responded: true, Provisional: true}
)

func TestFailover(t *testing.T) {
	tests := []struct {
		name      string
		a         call.Result
		wantTrunk string
		wantDials int
		wantState call.State
	}{
		{"first trunk works", missed, "a", 1, call.StateMissed},
		{"silent trunk fails over", silent, "b", 2, call.StateMissed},
		{"503 before any 1xx fails over", serverFail, "b", 2, call.StateMissed},
		{"408 before any 1xx fails over", timeout408, "b", 2, call.StateMissed},
		// After a 1xx the phone may have the call: it is never placed again.
		{"486 after 180 does not fail over", busyAfter, "a", 1, call.StateFailed},
		{"503 after 100 does not fail over", fail503After100, "a", 1, call.StateFailed},
		// A callee's answer is not a trunk's failure.
		{"486 without ring does not fail over", busyBefore, "a", 1, call.StateFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller := &fakeCaller{script: map[string]call.Result{"a:1": tc.a, "b:1": missed}}
			rep := newReporter(1)
			d := New(Config{Trunks: []Trunk{
				{Name: "a", Address: "a:1", Weight: 1, DownAfter: 3, OptionsInterval: time.Hour},
				{Name: "b", Address: "b:1", Priority: 1, Weight: 1, DownAfter: 3, OptionsInterval: time.Hour},
			}, Settings: Settings{QueueSize: 4}}, caller, rep, nil)
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
			if len(caller.dialed) != tc.wantDials {
				t.Fatalf("dialed %v, want %d calls", caller.dialed, tc.wantDials)
			}
		})
	}
}

// Trunks of one priority share calls by weight; a lower priority is tried first.
func TestOrder(t *testing.T) {
	d := New(Config{Trunks: []Trunk{
		{Name: "backup", Priority: 2, Weight: 1},
		{Name: "big", Priority: 1, Weight: 3},
		{Name: "small", Priority: 1, Weight: 1},
	}, Settings: Settings{QueueSize: 1}}, &fakeCaller{}, newReporter(0), nil)
	first := map[string]int{}
	for i := 0; i < 4000; i++ {
		o := d.order(nil)
		if o[2].Name != "backup" {
			t.Fatalf("order %s %s %s: backup must come last", o[0].Name, o[1].Name, o[2].Name)
		}
		first[o[0].Name]++
	}
	// 3:1 expected; 2.5..3.6 is far outside chance for 4000 draws.
	if r := float64(first["big"]) / float64(first["small"]); r < 2.5 || r > 3.6 {
		t.Fatalf("big first %d times, small %d: ratio %.2f, want about 3", first["big"], first["small"], r)
	}
}

// A trunk that keeps failing is marked down, skipped while another is up, and back once OPTIONS answers.
func TestTrunkDownAndProbe(t *testing.T) {
	caller := &fakeCaller{script: map[string]call.Result{"a:1": serverFail, "b:1": missed}, up: map[string]bool{}}
	rep := newReporter(5)
	d := New(Config{Trunks: []Trunk{
		{Name: "a", Address: "a:1", Weight: 1, DownAfter: 2, OptionsInterval: time.Second},
		{Name: "b", Address: "b:1", Priority: 1, Weight: 1, DownAfter: 2, OptionsInterval: time.Second},
	}, Settings: Settings{QueueSize: 8}}, caller, rep, nil)
	d.Start()
	defer d.Stop(context.Background())
	submit := func(id string) {
		if err := d.Submit(Request{ID: id, To: "+14155552671", CLI: "+442079461234"}); err != nil {
			t.Fatal(err)
		}
	}
	waitEnded := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			rep.mu.Lock()
			got := len(rep.ended)
			rep.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls ended, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	submit("1")
	waitEnded(1)
	submit("2")
	waitEnded(2)
	if down := d.Down(); len(down) != 1 || down[0] != "a" {
		t.Fatalf("down %v after two 503s, want [a]", down)
	}
	caller.mu.Lock()
	caller.dialed = nil
	caller.mu.Unlock()
	submit("3")
	waitEnded(3)
	caller.mu.Lock()
	if len(caller.dialed) != 1 || caller.dialed[0] != "b:1" {
		t.Fatalf("with a down, dialed %v, want only b", caller.dialed)
	}
	caller.up["a:1"] = true
	caller.script["a:1"] = missed
	caller.mu.Unlock()
	testwait.For(t, 5*time.Second, "a up again after answering OPTIONS", func() bool { return len(d.Down()) == 0 })
	caller.mu.Lock()
	probed := len(caller.probed)
	caller.mu.Unlock()
	if probed == 0 {
		t.Fatal("no OPTIONS probe")
	}
}

// A call whose every trunk is down is refused at once (ErrTrunksDown, with the time to the next probe)
// rather than queued for a trunk that will not take it; once a probe brings a trunk back, calls are taken.
func TestEveryTrunkDownRefused(t *testing.T) {
	caller := &fakeCaller{script: map[string]call.Result{"a:1": serverFail, "b:1": missed}, up: map[string]bool{}}
	rep := newReporter(2)
	d := New(Config{Trunks: []Trunk{
		{Name: "a", Address: "a:1", Weight: 1, DownAfter: 2, OptionsInterval: time.Second},
		{Name: "b", Address: "b:1", Weight: 1, DownAfter: 2, OptionsInterval: time.Second},
	}, Settings: Settings{QueueSize: 8}}, caller, rep, nil)
	d.Start()
	defer d.Stop(context.Background())
	onA := Request{To: "+14155552671", CLI: "+442079461234", Trunks: []string{"a"}}
	for _, id := range []string{"1", "2"} {
		r := onA
		r.ID = id
		if err := d.Submit(r); err != nil {
			t.Fatal(err)
		}
	}
	rep.wait(t)

	tests := []struct {
		name   string
		trunks []string
		down   bool
	}{
		{"only a down trunk", []string{"a"}, true},
		{"an up trunk too", []string{"a", "b"}, false},
		{"any trunk", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Available(tc.trunks)
			var down *fault.Error
			if got := errors.As(err, &down); got != tc.down || tc.down && (!errors.Is(err, ErrTrunksDown) || down.Code != fault.Unavailable || down.RetryAfter <= 0 || down.RetryAfter > 2*time.Second) {
				t.Fatalf("Available(%v) = %v (%+v), want down %t with a retry within the probe interval", tc.trunks, err, down, tc.down)
			}
			if tc.down && err.Error() != "no trunk can take the call: every trunk is down: [a]" {
				t.Errorf("Available(%v) says %q", tc.trunks, err)
			}
			if err := d.Submit(Request{ID: "x", To: "+14155552671", CLI: "+442079461234", Trunks: tc.trunks}); errors.Is(err, ErrTrunksDown) != tc.down {
				t.Fatalf("Submit on %v = %v, want down %t", tc.trunks, err, tc.down)
			}
		})
	}

	caller.mu.Lock()
	caller.up["a:1"] = true
	caller.mu.Unlock()
	testwait.For(t, 5*time.Second, "a admitted again after answering OPTIONS", func() bool { return d.Available(onA.Trunks) == nil })
}

// Admission is bounded, Stop ends every accepted call exactly once, and no goroutine outlives Stop.
func TestQueueFullStopAndLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	caller := &fakeCaller{script: map[string]call.Result{"a:1": missed}, block: make(chan struct{})}
	const queue, slots = 4, 2
	rep := newReporter(queue + slots)
	d := New(Config{Trunks: []Trunk{{Name: "a", Address: "a:1", MaxCalls: slots, Weight: 1, DownAfter: 3, OptionsInterval: time.Hour}}, Settings: Settings{QueueSize: queue}}, caller, rep, nil)
	d.Start()

	accepted, full := 0, 0
	for i := 0; i < 50; i++ {
		err := d.Submit(Request{ID: string(rune('A' + i))})
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrQueueFull) && errors.Is(err, fault.Unavailable):
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
		if len(ends) != 1 || ends[0].Reason != call.ReasonInterrupted {
			t.Fatalf("call %s ended %v, want once interrupted", id, ends)
		}
	}
	if err := d.Submit(Request{ID: "late"}); !errors.Is(err, ErrStopped) || !errors.Is(err, fault.Unavailable) || err.Error() != "no capacity for the call: dialer stopped" {
		t.Fatalf("submit after stop: %v", err)
	}
	testwait.Until(2*time.Second, func() bool { return runtime.NumGoroutine() <= before })
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Stop, %d before", n, before)
	}
}

// A message takes no channel: with the trunk's one channel held by a ringing call, a message still goes
// out; a voice call waits for the channel as a flash call does (and, as any call waiting for its trunk,
// holds the queue behind it). The request's kind and payload reach the
// caller.
func TestMessageTakesNoChannel(t *testing.T) {
	caller := &kindCaller{block: make(chan struct{}), got: make(chan call.Request, 4)}
	rep := newReporter(3)
	d := New(Config{Trunks: []Trunk{{Name: "a", Address: "a:1", MaxCalls: 1, Weight: 1, DownAfter: 3, OptionsInterval: time.Hour}}, Settings: Settings{QueueSize: 8}}, caller, rep, nil)
	d.Start()
	defer func() { _ = d.Stop(context.Background()) }()
	for _, r := range []Request{
		{ID: "flash", To: "+15551230001", CLI: "+442079460001"},
		{ID: "sms", To: "+15551230003", CLI: "Shop", Kind: call.KindMessage, Text: "1234 is your code"},
		{ID: "voice", To: "+15551230002", CLI: "+442079460002", Kind: call.KindVoice, Prompt: []byte{0xff}, AnswerTimeout: time.Second, Repeat: 1},
	} {
		if err := d.Submit(r); err != nil {
			t.Fatal(err)
		}
	}
	// The flash call and the message go out together (in either order) while the flash call holds the channel.
	kinds := map[call.Kind]call.Request{}
	for range 2 {
		select {
		case c := <-caller.got:
			kinds[c.Kind] = c
		case <-time.After(5 * time.Second):
			t.Fatalf("placed %v; the message waited for the channel a call holds", kinds)
		}
	}
	if m, ok := kinds[call.KindMessage]; !ok || m.Text != "1234 is your code" || m.CLI != "Shop" {
		t.Fatalf("placed %+v, want the flash call and the message", kinds)
	}
	if _, ok := kinds[call.KindFlash]; !ok {
		t.Fatalf("placed %+v, want the flash call and the message", kinds)
	}
	close(caller.block)
	select {
	case c := <-caller.got:
		if c.Kind != call.KindVoice || len(c.Prompt) != 1 || c.AnswerTimeout != time.Second || c.Repeat != 1 {
			t.Fatalf("third placed: %+v, want the voice call with its prompt", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the voice call never got the channel")
	}
	rep.wait(t)
}

// kindCaller hands each request to got; calls (not messages) wait for block.
type kindCaller struct {
	block chan struct{}
	got   chan call.Request
}

func (k *kindCaller) Dial(ctx context.Context, c call.Request, progress func(call.State, time.Time)) call.Result {
	progress(call.StateDialing, time.Now())
	k.got <- c
	if c.Kind == call.KindMessage {
		return call.Result{State: call.StateSent, SIPCode: 202, Responded: true}
	}
	select {
	case <-k.block:
	case <-ctx.Done():
	}
	return call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, Provisional: true}
}

func (k *kindCaller) Options(context.Context, string, string) (int, error) { return 200, nil }
