package dialer

import (
	"context"
	"errors"
	"sync"
	"time"

	"flashotp/call"
	"flashotp/fault"
)

// ErrNoTrunk is returned by Probe for a name no trunk has, in a *fault.Error of code fault.NotFound.
var ErrNoTrunk = errors.New("no such trunk")

// probeTimeout bounds an OPTIONS probe, the loop's and Probe's.
const probeTimeout = 4 * time.Second

// Probe is the outcome of an OPTIONS probe of a trunk.
type Probe struct {
	At     time.Time     // when it was sent
	RTT    time.Duration // until the answer (or the error)
	Status int           // the answer's status code; 0: none came
	Err    string        // why none came (a timeout, a transport error); empty when one did
	// Up reports whether the answer says the trunk is reachable: any answer but a 5xx (405 and 404 still
	// mean up).
	Up bool
}

// TrunkStatus is where a trunk stands, for the console's Trunks page.
type TrunkStatus struct {
	Name      string
	Address   string
	Transport string
	// Up is false once the trunk failed down_after times in a row, until an OPTIONS probe answers.
	Up        bool
	LastProbe Probe // At zero: never probed (a trunk is probed only while down, or when asked)
	InFlight  int   // calls and messages placed on it, not ended
	MaxCalls  int   // 0: no limit
	MaxCPS    int   // 0: no limit
	// CPS is the calls and messages placed on it per second, over the last meterWindow.
	CPS                      float64
	Missed, Answered, Failed int64 // calls ended on it since the start, by outcome
	Failovers                int64 // calls that failed on it before any provisional and moved to the next trunk
}

// Trunks returns the status of every trunk, in the configuration's order.
func (d *Dialer) Trunks() []TrunkStatus {
	out := make([]TrunkStatus, 0, len(d.trunks))
	for _, t := range d.trunks {
		t.probeMu.Lock()
		last := t.lastProbe
		t.probeMu.Unlock()
		out = append(out, TrunkStatus{
			Name: t.Name, Address: t.Address, Transport: t.Transport, Up: !t.down.Load(), LastProbe: last,
			InFlight: int(t.inFlight.Load()), MaxCalls: t.MaxCalls, MaxCPS: t.MaxCPS, CPS: t.rate.perSecond(),
			Missed: t.missed.Load(), Answered: t.answered.Load(), Failed: t.failed.Load(), Failovers: t.failovers.Load(),
		})
	}
	return out
}

// Probe sends an OPTIONS to trunk name now (to its outbound_proxy when it has one, where its calls go) and
// returns how it went, within ctx and at most probeTimeout. An answer brings a trunk that was down back up,
// as the probe loop's would; a trunk that is up stays up whatever the answer (its calls decide that).
func (d *Dialer) Probe(ctx context.Context, name string) (Probe, error) {
	for _, t := range d.trunks {
		if t.Name == name {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			return d.options(ctx, t), nil
		}
	}
	return Probe{}, fault.Errorf(fault.NotFound, "%w: %q", ErrNoTrunk, name)
}

// options probes t with OPTIONS, records the probe, and brings t up if it answered.
func (d *Dialer) options(ctx context.Context, t *trunk) Probe {
	target := t.Address
	if t.OutboundProxy != "" {
		target = t.OutboundProxy // where its calls go
	}
	start := time.Now()
	code, err := d.caller.Options(ctx, target, t.Transport)
	p := Probe{At: start.UTC(), RTT: time.Since(start), Status: code}
	if err != nil {
		p.Status, p.Err = 0, err.Error()
	}
	p.Up = err == nil && code < 500
	t.probeMu.Lock()
	t.lastProbe = p
	t.probeMu.Unlock()
	if p.Up {
		t.failures.Store(0)
		if t.down.CompareAndSwap(true, false) {
			d.log.Info("trunk up", "trunk", t.Name, "options_status", code)
		}
	}
	return p
}

// count counts a call's outcome on t.
func (t *trunk) count(st call.State) {
	switch st {
	case call.StateMissed:
		t.missed.Add(1)
	case call.StateAnswered:
		t.answered.Add(1)
	case call.StateFailed:
		t.failed.Add(1)
	}
}

// meterWindow is how far back a trunk's calls per second look: long enough to be steady at a few calls a
// second, short enough to show a burst.
const meterWindow = 10 * time.Second

// meter counts events per second over the last meterWindow, in one-second buckets.
type meter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [meterSlots]int64
	secs    [meterSlots]int64 // the Unix second each bucket counts
}

const meterSlots = int(meterWindow / time.Second)

func newMeter(now func() time.Time) *meter { return &meter{now: now} }

// add counts one event now.
func (m *meter) add() {
	sec := m.now().Unix()
	i := int(sec % int64(meterSlots))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.secs[i] != sec {
		m.secs[i], m.buckets[i] = sec, 0
	}
	m.buckets[i]++
}

// perSecond returns the events per second over the meterWindow up to now (the current second included).
func (m *meter) perSecond() float64 {
	sec := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for i, s := range m.secs {
		if s > sec-int64(meterSlots) && s <= sec {
			n += m.buckets[i]
		}
	}
	return float64(n) / float64(meterSlots)
}
