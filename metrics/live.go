package metrics

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The live sampler's rings: 15 minutes of one-second samples, 24 hours of one-minute samples.
const (
	SecondSamples = 900
	MinuteSamples = 1440
)

// Sample is what the engine did over one interval (a second or a minute) ending at T, as the console's Live
// page draws it. Counts are of the interval; InFlight and Queue are the values at T; the post-dial delay
// quantiles are over the calls that rang in the interval (nil when none did). SendsTotal is the engine's
// cumulative count of sends, so that a reader knows something new arrived.
type Sample struct {
	T          int64                    `json:"t"` // Unix seconds
	Sends      int64                    `json:"sends"`
	Missed     int64                    `json:"missed"`
	Answered   int64                    `json:"answered"`
	Failed     int64                    `json:"failed"`
	Approved   int64                    `json:"approved"`
	Ended      int64                    `json:"ended"` // verifications that reached any final status
	InFlight   int64                    `json:"in_flight"`
	Queue      int64                    `json:"queue"`
	PDDP50     *float64                 `json:"pdd_p50"` // seconds
	PDDP99     *float64                 `json:"pdd_p99"` // seconds
	Channels   map[string]ChannelCounts `json:"channels"`
	SendsTotal int64                    `json:"sends_total"`
}

// ChannelCounts are a channel's steps that reached each outcome (flashotp_steps_ended_total).
type ChannelCounts struct {
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
}

// Gatherer is where the sampler reads the metrics: *Metrics is one.
type Gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// totals are the cumulative values of one gathering, which samples are the differences of.
type totals struct {
	sends, missed, answered, failed, approved, ended float64
	inFlight, queue                                  float64
	pdd                                              []bucket // merged over trunks, by upper bound
	steps                                            map[string]ChannelCounts
}

// bucket is one histogram bucket: its upper bound and the cumulative count up to it.
type bucket struct {
	le    float64
	count float64
}

// Sampler reads the engine's metrics once a second and keeps what happened in rings: SecondSamples
// one-second samples and MinuteSamples one-minute samples, lost on restart. Start it once, Stop it once.
type Sampler struct {
	src Gatherer
	now func() time.Time

	mu     sync.Mutex
	prev   *totals // the last gathering; nil before the first
	sec    ring
	min    ring
	minute *minuteAcc // the minute being summed
	subs   map[chan Sample]struct{}
	closed bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// minuteAcc sums the seconds of one minute.
type minuteAcc struct {
	start int64 // Unix seconds of the minute's start
	s     Sample
	pdd   []bucket // the seconds' gains of the cumulative bucket counts, summed
}

// NewSampler returns a sampler over src; now nil is time.Now.
func NewSampler(src Gatherer, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{src: src, now: now, sec: newRing(SecondSamples), min: newRing(MinuteSamples), subs: map[chan Sample]struct{}{}}
}

// Start samples once a second until Stop.
func (s *Sampler) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.Tick()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Tick()
			}
		}
	}()
}

// Stop stops sampling, waits for the sampling goroutine and closes every subscription.
func (s *Sampler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
}

// Subscribe returns a channel that receives each new one-second sample, and the function that ends the
// subscription. A subscriber that does not keep up misses samples rather than hold the sampler back; the
// channel is closed when the subscription ends or the sampler stops.
func (s *Sampler) Subscribe() (<-chan Sample, func()) {
	ch := make(chan Sample, 8)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	s.subs[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// Samples returns the one-second and the one-minute samples, oldest first. The minute being summed is not
// among the minutes yet.
func (s *Sampler) Samples() (seconds, minutes []Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sec.slice(), s.min.slice()
}

// Tick takes one sample now: Start calls it every second. The first gathering is the baseline and makes no
// sample.
func (s *Sampler) Tick() {
	mfs, err := s.src.Gather()
	if err != nil && len(mfs) == 0 {
		return // nothing read: the next tick's deltas cover this second too
	}
	cur := read(mfs)
	t := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.prev
	s.prev = cur
	if prev == nil {
		return
	}
	smp, pdd := diff(prev, cur, t)
	s.sec.push(smp)
	s.addToMinute(smp, pdd)
	for ch := range s.subs {
		select {
		case ch <- smp:
		default: // a slow reader misses this one
		}
	}
}

// addToMinute adds a one-second sample (and its post-dial delay bucket deltas) to its minute; a sample of
// a later minute first closes the minute being summed.
func (s *Sampler) addToMinute(smp Sample, pdd []bucket) {
	start := smp.T - smp.T%60
	if s.minute != nil && s.minute.start != start {
		s.closeMinute()
	}
	if s.minute == nil {
		s.minute = &minuteAcc{start: start, s: Sample{T: start + 60, Channels: map[string]ChannelCounts{}}}
	}
	m := s.minute
	m.s.Sends += smp.Sends
	m.s.Missed += smp.Missed
	m.s.Answered += smp.Answered
	m.s.Failed += smp.Failed
	m.s.Approved += smp.Approved
	m.s.Ended += smp.Ended
	m.s.InFlight, m.s.Queue, m.s.SendsTotal = smp.InFlight, smp.Queue, smp.SendsTotal
	for ch, c := range smp.Channels {
		a := m.s.Channels[ch]
		a.Sent, a.Delivered, a.Failed = a.Sent+c.Sent, a.Delivered+c.Delivered, a.Failed+c.Failed
		m.s.Channels[ch] = a
	}
	m.pdd = addBuckets(m.pdd, pdd)
}

func (s *Sampler) closeMinute() {
	m := s.minute
	m.s.PDDP50, m.s.PDDP99 = quantile(m.pdd, 0.5), quantile(m.pdd, 0.99)
	s.min.push(m.s)
	s.minute = nil
}

// read sums the families the console shows.
func read(mfs []*dto.MetricFamily) *totals {
	t := &totals{steps: map[string]ChannelCounts{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "flashotp_send_duration_seconds":
				t.sends += float64(m.GetHistogram().GetSampleCount())
			case "flashotp_calls_ended_total":
				v := m.GetCounter().GetValue()
				switch label(m, "outcome") {
				case "missed":
					t.missed += v
				case "answered":
					t.answered += v
				case "failed":
					t.failed += v
				}
			case "flashotp_verifications_ended_total":
				v := m.GetCounter().GetValue()
				t.ended += v
				if label(m, "status") == "approved" {
					t.approved += v
				}
			case "flashotp_calls_in_flight":
				t.inFlight += m.GetGauge().GetValue()
			case "flashotp_dialer_queue_depth":
				t.queue += m.GetGauge().GetValue()
			case "flashotp_post_dial_delay_seconds":
				var bs []bucket
				for _, b := range m.GetHistogram().GetBucket() {
					bs = append(bs, bucket{le: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
				}
				bs = append(bs, bucket{le: math.Inf(1), count: float64(m.GetHistogram().GetSampleCount())})
				t.pdd = addBuckets(t.pdd, bs)
			case "flashotp_steps_ended_total":
				ch, v := label(m, "channel"), int64(m.GetCounter().GetValue())
				c := t.steps[ch]
				switch label(m, "state") {
				case "sent":
					c.Sent += v
				case "delivered":
					c.Delivered += v
				case "failed":
					c.Failed += v
				}
				t.steps[ch] = c
			}
		}
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// addBuckets adds b's counts to a's, bucket by upper bound (every trunk's histogram has the same bounds;
// a bound only one has is kept as it is).
func addBuckets(a, b []bucket) []bucket {
	for _, x := range b {
		i := sort.Search(len(a), func(i int) bool { return a[i].le >= x.le })
		if i < len(a) && a[i].le == x.le {
			a[i].count += x.count
			continue
		}
		a = append(a, bucket{})
		copy(a[i+1:], a[i:])
		a[i] = x
	}
	return a
}

// diff is the sample at t of what happened between two gatherings, and the post-dial delay buckets'
// cumulative counts gained.
func diff(prev, cur *totals, t int64) (Sample, []bucket) {
	d := func(a, b float64) int64 { return max(0, int64(math.Round(b-a))) }
	s := Sample{
		T: t, Sends: d(prev.sends, cur.sends), Missed: d(prev.missed, cur.missed), Answered: d(prev.answered, cur.answered),
		Failed: d(prev.failed, cur.failed), Approved: d(prev.approved, cur.approved), Ended: d(prev.ended, cur.ended),
		InFlight: int64(math.Round(cur.inFlight)), Queue: int64(math.Round(cur.queue)), SendsTotal: int64(math.Round(cur.sends)),
		Channels: map[string]ChannelCounts{},
	}
	for ch, c := range cur.steps {
		p := prev.steps[ch]
		s.Channels[ch] = ChannelCounts{Sent: max(0, c.Sent-p.Sent), Delivered: max(0, c.Delivered-p.Delivered), Failed: max(0, c.Failed-p.Failed)}
	}
	var pdd []bucket
	for _, b := range cur.pdd {
		before := 0.0
		if i := sort.Search(len(prev.pdd), func(i int) bool { return prev.pdd[i].le >= b.le }); i < len(prev.pdd) && prev.pdd[i].le == b.le {
			before = prev.pdd[i].count
		}
		pdd = append(pdd, bucket{le: b.le, count: max(0, b.count-before)})
	}
	s.PDDP50, s.PDDP99 = quantile(pdd, 0.5), quantile(pdd, 0.99)
	return s, pdd
}

// quantile is the q-quantile of a histogram of cumulative buckets (the last +Inf), interpolated linearly
// within its bucket as Prometheus's histogram_quantile does: a rank in the +Inf bucket is the highest finite
// bound. nil when the histogram is empty.
func quantile(bs []bucket, q float64) *float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return nil
	}
	rank := q * bs[len(bs)-1].count
	i := sort.Search(len(bs), func(i int) bool { return bs[i].count >= rank })
	var v float64
	switch {
	case math.IsInf(bs[i].le, 1):
		v = 0
		if i > 0 {
			v = bs[i-1].le
		}
	default:
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bs[i-1].le, bs[i-1].count
		}
		v = lo + (bs[i].le-lo)*(rank-below)/(bs[i].count-below)
	}
	v = math.Round(v*10000) / 10000
	return &v
}

// ring holds the last n samples.
type ring struct {
	buf  []Sample
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]Sample, n)} }

func (r *ring) push(s Sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
}

// slice returns a copy of the samples, oldest first.
func (r *ring) slice() []Sample {
	if !r.full {
		return append([]Sample(nil), r.buf[:r.next]...)
	}
	return append(append(make([]Sample, 0, len(r.buf)), r.buf[r.next:]...), r.buf[:r.next]...)
}
