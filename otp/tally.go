package otp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Report counts are kept in memory and made durable once a second (FlushReports), not written with every
// send and outcome: each was seven report rows read, decoded, encoded and written in the store's one writer.
// What a change counted goes into its verification's record (record.Tally, a few bytes written with the
// record anyway), so after a crash the rows of the days a lost second could have touched are counted again
// from the records (recountReports): exact, not an estimate.

// tallyOp is one count a change of a verification made: its rows are the verification's day, country, the
// channel, and trunk when not empty. It is stored in the record as a CBOR array, a few bytes.
type tallyOp struct {
	_       struct{} `cbor:",toarray"`
	Kind    byte     // tallySent, …
	Channel string
	Trunk   string
	State   byte // tallyOutcome: outcomeMissed, …
	PDD     int  // tallyOutcome: the post-dial delay in ms, -1 if it never rang
}

// Kinds of tallyOp.
const (
	tallySent       = 's' // a send or resend: sent on every row
	tallyStep       = 'w' // a workflow's next step started: sent on the channel's row only
	tallyStepFailed = 'x' // a workflow's next step that never went: sent and failed on the channel's row only
	tallyMsgFailed  = 'f' // a message's receipt says it failed: failed on every row
	tallyOutcome    = 'o' // a call's or message's outcome: its state, the trunk's sent, the PDD if it rang
	tallyApproved   = 'a' // approved by the step of this channel and trunk
)

// States of a tallyOutcome.
const (
	outcomeMissed   = 'm'
	outcomeAnswered = 'a'
	outcomeFailed   = 'f'
	outcomeSent     = 's' // a message handed to its trunk: counted nowhere but the trunk's sent
)

// apply adds op's counts to c, c being the row of group.
func (op tallyOp) apply(group string, c *counters, sign int64) {
	switch op.Kind {
	case tallySent:
		c.Sent += sign
	case tallyStep, tallyStepFailed:
		if group == GroupChannel {
			c.Sent += sign
			if op.Kind == tallyStepFailed {
				c.Failed += sign
			}
		}
	case tallyMsgFailed:
		c.Failed += sign
	case tallyOutcome:
		if group == GroupTrunk {
			// A trunk's row counts a call once the trunk has taken it; the others counted it at the send.
			c.Sent += sign
		}
		switch op.State {
		case outcomeMissed:
			c.Missed += sign
		case outcomeAnswered:
			c.Answered += sign
		case outcomeFailed:
			c.Failed += sign
		}
		if op.PDD >= 0 {
			c.PDD[pddBucket(int64(op.PDD))] += sign
		}
	case tallyApproved:
		c.Approved += sign
	}
}

// tally counts op for rec: it goes into rec's Tally, stored with rec, and into the reports once the change
// is stored (the caller's: Service.addTally).
func (rec *record) tally(op tallyOp) { rec.Tally = append(rec.Tally, op) }

// rowKey names one report row.
type rowKey struct{ app, day, group, key string }

// rows calls fn with each row op counts on for rec.
func (op tallyOp) rows(rec *record, fn func(k rowKey)) {
	day := rec.CreatedAt.UTC().Format(time.DateOnly)
	fn(rowKey{rec.AppID, day, GroupDay, day})
	fn(rowKey{rec.AppID, day, GroupCountry, rec.Country})
	fn(rowKey{rec.AppID, day, GroupChannel, op.Channel})
	if op.Trunk != "" {
		fn(rowKey{rec.AppID, day, GroupTrunk, op.Trunk})
	}
}

// addTo adds the counts of ops, tally entries of rec, to rows, times sign.
func addTo(rows map[rowKey]*counters, rec *record, ops []tallyOp, sign int64) {
	for _, op := range ops {
		op.rows(rec, func(k rowKey) {
			c := rows[k]
			if c == nil {
				c = &counters{}
				rows[k] = c
			}
			op.apply(k.group, c, sign)
		})
	}
}

// reportBook holds the report counts not yet durable.
type reportBook struct {
	mu      sync.Mutex
	pending map[rowKey]*counters
	// flushing is held while a flush is on its way to the store: its counts are then neither pending nor
	// stored, and a reader waits for it. It also guards marked.
	flushing sync.Mutex
	marked   time.Time // when a flush last wrote the mark
}

// markEvery is how often an idle engine's flush still writes the mark, so that a crash after a quiet spell
// counts only the last day or two again.
const markEvery = time.Minute

// addTally counts the tally entries ops of rec (stored): sign 1, or -1 for a change undone.
func (s *Service) addTally(rec *record, ops []tallyOp, sign int64) {
	if len(ops) == 0 {
		return
	}
	b := &s.reports
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[rowKey]*counters{}
	}
	addTo(b.pending, rec, ops, sign)
}

// reportsMark is the reports' bookkeeping (Tx.Meta): when the counts were last flushed, whether the engine stopped cleanly
// then, and since when records hold their tally (zero: all of them).
type reportsMark struct {
	FlushedAt time.Time `json:"flushed_at"`
	Clean     bool      `json:"clean"`
	Since     time.Time `json:"since"`
	// Dirty lists the days, older than changeWindow, that a change counted on since the last clean stop or
	// recount: a recount counts them again too.
	Dirty []string `json:"dirty,omitempty"`
}

// markDirty lists the day of created in the mark, in tx.
func (s *Service) markDirty(tx Tx, created time.Time) error {
	m, _ := s.readMark(tx)
	day := created.UTC().Format(time.DateOnly)
	if slices.Contains(m.Dirty, day) {
		return nil
	}
	m.Dirty = append(m.Dirty, day)
	return s.putMark(tx, m)
}

// markName is the mark's name among otp's bookkeeping values (Tx.Meta) on an engine's own store.
const markName = "reports"

// mark is this engine's mark's name: on a shared store each engine has its own (markName/node), since each
// counts, flushes, crashes and stops on its own, and its restart looks for its own calls in flight.
func (s *Service) mark() string {
	if s.cfg.Nodes == nil {
		return markName
	}
	return markName + "/" + s.cfg.Node
}

func (s *Service) readMark(tx Tx) (reportsMark, bool) {
	var m reportsMark
	v := tx.Meta(s.mark())
	return m, v != nil && json.Unmarshal(v, &m) == nil
}

func (s *Service) putMark(tx Tx, m reportsMark) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.PutMeta(s.mark(), v)
}

// FlushReports makes the pending report counts durable; clean says the engine is stopping and nothing
// will be counted after it. It runs every second (Run) and once at stop, after the last outcome.
func (s *Service) FlushReports(ctx context.Context, clean bool) error {
	b := &s.reports
	b.flushing.Lock()
	defer b.flushing.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	now := s.now().UTC()
	if len(batch) == 0 && !clean && now.Sub(b.marked) < markEvery {
		return nil
	}
	err := s.db.Update(ctx, func(tx Tx) error {
		if err := addRows(tx, batch); err != nil {
			return err
		}
		m, _ := s.readMark(tx)
		m.FlushedAt, m.Clean = now, clean && s.allRecorded()
		if clean {
			m.Dirty = nil // every count is stored
		}
		return s.putMark(tx, m)
	})
	if err == nil {
		b.marked = now
	}
	if err != nil {
		// Counted again at the next flush.
		b.mu.Lock()
		if b.pending == nil {
			b.pending = map[rowKey]*counters{}
		}
		mergeRows(b.pending, batch)
		b.mu.Unlock()
	}
	return err
}

// addRows adds rows to the stored report rows; a row that comes to zero goes.
func addRows(tx Tx, rows map[rowKey]*counters) error {
	for k, d := range rows {
		var c counters
		if v := tx.ReportRow(k.app, k.day, k.group, k.key); v != nil {
			if err := c.decode(v); err != nil {
				return err
			}
		}
		c.add(d)
		if err := putRow(tx, k, &c); err != nil {
			return err
		}
	}
	return nil
}

func putRow(tx Tx, k rowKey, c *counters) error {
	if c.zero() {
		return tx.DeleteReportRow(k.app, k.day, k.group, k.key)
	}
	return tx.PutReportRow(k.app, k.day, k.group, k.key, c.encode())
}

func mergeRows(into, rows map[rowKey]*counters) {
	for k, d := range rows {
		if c := into[k]; c != nil {
			c.add(d)
		} else {
			into[k] = d
		}
	}
}

func (c *counters) add(d *counters) {
	c.Sent, c.Missed, c.Answered = c.Sent+d.Sent, c.Missed+d.Missed, c.Answered+d.Answered
	c.Failed, c.Approved = c.Failed+d.Failed, c.Approved+d.Approved
	for i, n := range d.PDD {
		c.PDD[i] += n
	}
}

// Purge keeps the counts of the records it deletes in retired rows, day by day, so that a day can be
// counted again from its records after a crash even once retention has taken some of them. They are rows
// of no app (retiredApp), the app's ID before the key (app IDs hold no slash): one scan finds them all.
func retiredGroup(group string) string { return "retired/" + group }

// retiredApp is the app the retired rows are kept under: "" is no app's.
const retiredApp = ""

// retire keeps the counts of rec, about to be deleted by retention, in its day's retired rows.
func retire(tx Tx, rec *record) error {
	rows := map[rowKey]*counters{}
	addTo(rows, rec, rec.Tally, 1)
	retired := make(map[rowKey]*counters, len(rows))
	for k, c := range rows {
		retired[rowKey{retiredApp, k.day, retiredGroup(k.group), k.app + "/" + k.key}] = c
	}
	return addRows(tx, retired)
}

// changeWindow bounds how long after its creation a verification's record can still change but for message
// receipts: its lifetime (the longest TTL after the longest workflow's timeouts, resends moving it on) and
// its last call's outcome. A change later than that (a receipt days after its SMS) lists its day in the
// mark's Dirty.
const changeWindow = 24 * time.Hour

// recountReports opens the reports at start. After an unclean stop the counts of up to a second before it
// were lost with the memory: the rows of every day whose records could have changed since the last flush
// are counted again from the records (and the retired rows of those retention took). Days before the first
// start that tallied records keep their rows as they were.
//
// It returns the days it counted, and from when a record may show a call in flight that a crash cut short
// (zero after a clean stop: none).
func (s *Service) recountReports(ctx context.Context) (days []string, inFlightFrom time.Time, err error) {
	var mark reportsMark
	var found bool
	if err := s.db.View(ctx, func(tx Tx) error { mark, found = s.readMark(tx); return nil }); err != nil {
		return nil, time.Time{}, err
	}
	now := s.now().UTC()
	if !found {
		// The first start that tallies: from now on every record holds its tally. Records already there (from
		// an engine before tallies) do not: their days keep their rows.
		mark = reportsMark{FlushedAt: now}
		return nil, now.Add(-changeWindow), s.db.Update(ctx, func(tx Tx) error {
			for range tx.VerificationsFrom("") {
				mark.Since = now
				break
			}
			return s.putMark(tx, mark)
		})
	}
	if !mark.Clean {
		inFlightFrom = mark.FlushedAt.Add(-changeWindow)
		var todo []string
		for d := inFlightFrom; d.Format(time.DateOnly) <= now.Format(time.DateOnly); d = d.AddDate(0, 0, 1) {
			todo = append(todo, d.Format(time.DateOnly))
		}
		for _, day := range append(todo, mark.Dirty...) {
			if slices.Contains(days, day) || !mark.Since.IsZero() && day <= mark.Since.Format(time.DateOnly) {
				continue // done, or it may hold records from before tallies: its rows stay
			}
			if err := s.recountDay(ctx, day); err != nil {
				return days, inFlightFrom, err
			}
			days = append(days, day)
		}
	}
	mark.Clean, mark.Dirty = false, nil // not clean until the flush at a clean stop
	return days, inFlightFrom, s.db.Update(ctx, func(tx Tx) error { return s.putMark(tx, mark) })
}

// recountDay counts the report rows of day again, from the records created that day and the retired rows.
func (s *Service) recountDay(ctx context.Context, day string) error {
	start, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return err
	}
	from, until := bound("otp_", start), bound("otp_", start.AddDate(0, 0, 1))
	rows := map[rowKey]*counters{}
	appSet := map[string]bool{}
	err = s.db.View(ctx, func(tx Tx) error {
		for id, v := range tx.VerificationsFrom(from) {
			if id >= until {
				break
			}
			rec, err := decode(id, v)
			if err != nil {
				return err
			}
			appSet[rec.AppID] = true
			addTo(rows, rec, rec.Tally, 1)
		}
		for _, g := range GroupBys {
			for key, v := range tx.ReportRows(retiredApp, retiredGroup(g), day, day) {
				app, key, ok := strings.Cut(key, "/")
				var c counters
				if err := c.decode(v); !ok || err != nil {
					return fmt.Errorf("retired report row %q: %v", key, err)
				}
				appSet[app] = true
				mergeRows(rows, map[rowKey]*counters{{app, day, g, key}: &c})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx Tx) error {
		for app := range tx.ReportApps() {
			appSet[app] = true
		}
		for app := range appSet {
			for _, g := range GroupBys {
				var stale []string
				for key := range tx.ReportRows(app, g, day, day) {
					stale = append(stale, key)
				}
				for _, key := range stale {
					if err := tx.DeleteReportRow(app, day, g, key); err != nil {
						return err
					}
				}
			}
		}
		for k, c := range rows {
			if err := putRow(tx, k, c); err != nil {
				return err
			}
		}
		return nil
	})
}
