package otp

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"

	"flashotp/fault"
)

// counters are one row of the reports: counts, and post-dial delays as a histogram. A row is updated by
// every event, so it is stored compactly (encode), not as JSON.
type counters struct {
	Sent, Missed, Answered, Failed, Approved int64
	PDD                                      [pddBuckets]int64 // histogram bucket → calls
}

// pddBuckets covers delays up to 10^(pddBuckets-1)/10 ms, about 17 minutes; longer ones count in the last.
const pddBuckets = 61

func (c *counters) zero() bool { return *c == counters{} }

// encode writes c as varints: the five counts, then (bucket, calls) pairs of the non-empty buckets.
func (c *counters) encode() []byte {
	b := make([]byte, 0, 32)
	for _, n := range []int64{c.Sent, c.Missed, c.Answered, c.Failed, c.Approved} {
		b = binary.AppendVarint(b, n)
	}
	for i, n := range c.PDD {
		if n != 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendVarint(b, n)
		}
	}
	return b
}

func (c *counters) decode(b []byte) error {
	*c = counters{}
	next := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for _, p := range []*int64{&c.Sent, &c.Missed, &c.Answered, &c.Failed, &c.Approved} {
		var ok bool
		if *p, ok = next(); !ok {
			return errors.New("report row: truncated")
		}
	}
	for len(b) > 0 {
		i, n := binary.Uvarint(b)
		if n <= 0 || i >= pddBuckets {
			return errors.New("report row: bad histogram bucket")
		}
		b = b[n:]
		v, ok := next()
		if !ok {
			return errors.New("report row: truncated histogram")
		}
		c.PDD[i] = v
	}
	return nil
}

// Report groups.
const (
	GroupDay     = "day"
	GroupCountry = "country"
	GroupChannel = "channel"
	GroupTrunk   = "trunk"
)

// PDD histogram: bucket i holds delays in [pddBound(i-1), pddBound(i)) ms, ten buckets per decade (about
// 26% wide), so the median is known within its bucket; bucket 0 holds delays under 1 ms.
func pddBucket(ms int64) int {
	if ms < 1 {
		return 0
	}
	return min(int(math.Floor(10*math.Log10(float64(ms))))+1, pddBuckets-1)
}

func pddBound(i int) float64 { return math.Pow(10, float64(i)/10) }

// median returns the median of a histogram, interpolated within its bucket; -1 if empty.
func median(h *[pddBuckets]int64) float64 {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return -1
	}
	half := float64(n) / 2
	var seen int64
	for b, c := range h {
		if c > 0 && float64(seen+c) >= half {
			lo := 0.0
			if b > 0 {
				lo = pddBound(b - 1)
			}
			return lo + (pddBound(b)-lo)*(half-float64(seen))/float64(c)
		}
		seen += c
	}
	return -1
}

// ReportRow is one row of GET /otp/reports.
type ReportRow struct {
	Key                string   `json:"key"` // the day (YYYY-MM-DD), country, channel or trunk
	Sent               int64    `json:"sent"`
	Missed             int64    `json:"missed"`
	Answered           int64    `json:"answered"`
	Failed             int64    `json:"failed"`
	Approved           int64    `json:"approved"`
	ConversionRate     float64  `json:"conversion_rate"`        // approved / sent
	P50PostDialDelayMS *float64 `json:"p50_post_dial_delay_ms"` // null when no call rang
}

// GroupBys are the groupings of the reports.
var GroupBys = []string{GroupDay, GroupCountry, GroupChannel, GroupTrunk}

// Reports sums the app's report counters over the days from since to until (UTC days, both included),
// grouped by groupBy. The counters are kept as events happen (tally.go); nothing is scanned but the rows
// asked for.
func (s *Service) Reports(ctx context.Context, appID string, since, until time.Time, groupBy string) ([]ReportRow, error) {
	return s.ReportsOf(ctx, []string{appID}, since, until, groupBy)
}

// ReportsOf is Reports summed over the apps appIDs: counts add up, and the post-dial delay's median is
// that of every app's calls together.
func (s *Service) ReportsOf(ctx context.Context, appIDs []string, since, until time.Time, groupBy string) ([]ReportRow, error) {
	if !slices.Contains(GroupBys, groupBy) {
		return nil, fault.Errorf(fault.InvalidRequest, "group_by: want day, country, channel or trunk")
	}
	if until.IsZero() {
		until = s.now()
	}
	if since.IsZero() {
		since = until.AddDate(0, 0, -30)
	}
	first, last := since.UTC().Format(time.DateOnly), until.UTC().Format(time.DateOnly)
	if first > last {
		return nil, fault.Errorf(fault.InvalidRequest, "since: must not be after until")
	}
	sums := map[string]*counters{}
	var keys []string
	// The stored rows, then the counts not yet flushed; a flush on its way is waited for.
	s.reports.flushing.Lock()
	err := s.db.View(ctx, func(tx Tx) error {
		for _, appID := range appIDs {
			if err := sumRows(tx, appID, groupBy, first, last, sums, &keys); err != nil {
				return err
			}
		}
		return nil
	})
	s.reports.mu.Lock()
	for k, c := range s.reports.pending {
		if k.group != groupBy || k.day < first || k.day > last || !slices.Contains(appIDs, k.app) {
			continue
		}
		sum := sums[k.key]
		if sum == nil {
			sum = &counters{}
			sums[k.key] = sum
			keys = append(keys, k.key)
		}
		sum.add(c)
	}
	s.reports.mu.Unlock()
	s.reports.flushing.Unlock()
	slices.Sort(keys)
	rows := make([]ReportRow, 0, len(keys))
	for _, k := range keys {
		c := sums[k]
		row := ReportRow{Key: k, Sent: c.Sent, Missed: c.Missed, Answered: c.Answered, Failed: c.Failed, Approved: c.Approved}
		if c.Sent > 0 {
			row.ConversionRate = math.Round(float64(c.Approved)/float64(c.Sent)*10000) / 10000
		}
		if m := median(&c.PDD); m >= 0 {
			m = math.Round(m*10) / 10
			row.P50PostDialDelayMS = &m
		}
		rows = append(rows, row)
	}
	return rows, err
}

// sumRows adds the app's rows of group on the days first to last into sums, its new keys into keys.
func sumRows(tx Tx, appID, group, first, last string, sums map[string]*counters, keys *[]string) error {
	for key, v := range tx.ReportRows(appID, group, first, last) {
		var c counters
		if err := c.decode(v); err != nil {
			return err
		}
		sum := sums[key]
		if sum == nil {
			sum = &counters{}
			sums[key] = sum
			*keys = append(*keys, key)
		}
		sum.add(&c)
	}
	return nil
}
