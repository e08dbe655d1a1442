package otp

import (
	"context"
	"sync"
	"time"
)

// sweepBatch bounds the records one sweep or purge transaction touches.
const sweepBatch = 500

// Run sweeps expired verifications every second (their expired event and webhook) and deletes records
// past the retention every minute, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := func(d time.Duration, fn func(ctx context.Context) error, what string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := fn(ctx); err != nil {
						s.log.Error(what, "err", err)
					}
				}
			}
		}()
	}
	// sweeping runs fn only on the engine that sweeps (nodes.go).
	sweeping := func(fn func(ctx context.Context) (int, error)) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			if !s.sweeps() {
				return nil
			}
			_, err := fn(ctx)
			return err
		}
	}
	every(time.Second, sweeping(s.SweepExpired), "sweep expired verifications")
	every(time.Minute, sweeping(s.Purge), "purge old records")
	every(time.Minute, func(context.Context) error { s.limiter.Sweep(); return nil }, "")
	every(time.Second, func(ctx context.Context) error { return s.FlushReports(ctx, false) }, "flush report counts")
	every(time.Second, func(ctx context.Context) error { _, err := s.RecordUnrecorded(ctx); return err }, "record call outcomes")
	every(summaryEvery, func(context.Context) error { s.act.log(s.log, summaryEvery); return nil }, "")
	if s.cfg.Nodes != nil {
		every(s.cfg.Lease/4, s.tendLeases, "engine leases")
	}
	<-ctx.Done()
}

// SweepExpired marks pending verifications past their expires_at expired, with their event and webhook,
// and returns how many it marked. A verification whose workflow step timed out starts its next step.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	type entry struct {
		id string
		at time.Time
	}
	total := 0
	for {
		now := s.now().UTC()
		var keys []entry
		_ = s.db.View(ctx, func(tx Tx) error {
			for id, at := range tx.Expiring(now) {
				keys = append(keys, entry{id, at})
				if len(keys) == sweepBatch {
					break
				}
			}
			return nil
		})
		if len(keys) == 0 {
			return total, nil
		}
		n := 0
		type due struct {
			id   string
			step int // the step to start
		}
		var steps []due // verifications whose step timed out
		err := s.db.Update(ctx, func(tx Tx) error {
			n, steps = 0, steps[:0]
			for _, k := range keys {
				if err := tx.DeleteExpiry(k.id, k.at); err != nil {
					return err
				}
				rec, err := get(tx, k.id)
				if err != nil {
					continue // retention took it
				}
				if rec.Status == StatusPending && rec.ExpiresAt.UnixMilli() != k.at.UnixMilli() && rec.Next.UnixMilli() == k.at.UnixMilli() {
					// Its step's timeout passed without an approval: the workflow's next step goes.
					steps = append(steps, due{k.id, len(rec.Steps)})
					continue
				}
				// A resend moved expires_at, or a step's timeout no longer holds: this entry is stale.
				if rec.Status != StatusPending || rec.ExpiresAt.UnixMilli() != k.at.UnixMilli() {
					continue
				}
				rec.Status = StatusExpired
				if err := s.put(tx, rec); err != nil {
					return err
				}
				if err := s.transitions(tx, rec, StatusPending, now); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		for range n {
			s.ended(StatusPending, StatusExpired)
		}
		for _, st := range steps {
			s.advance(ctx, st.id, st.step)
		}
		total += n
		if len(keys) < sweepBatch {
			return total, nil
		}
	}
}

// Purge deletes the verifications (with their index keys and attempts) and the events older than the
// retention, and returns how many records it deleted. Report counters are kept: they hold no personal data;
// a deleted record's counts move to its day's retired rows (tally.go).
func (s *Service) Purge(ctx context.Context) (int, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.cfg.Retention)
	total := 0
	for {
		var recs []*record
		var events [][2]string // app, event ID
		err := s.db.View(ctx, func(tx Tx) error {
			for id, v := range tx.Verifications() {
				if !idTime(id).Before(cutoff) {
					break
				}
				rec, err := decode(id, v)
				if err != nil {
					return err
				}
				recs = append(recs, rec)
				if len(recs) == sweepBatch {
					break
				}
			}
			// Events are kept app by app.
			for app := range tx.EventApps() {
				for id := range tx.OldestEvents(app) {
					if !idTime(id).Before(cutoff) {
						break
					}
					events = append(events, [2]string{app, id})
					if len(events) == sweepBatch {
						break
					}
				}
				if len(events) == sweepBatch {
					break
				}
			}
			return nil
		})
		if err != nil || len(recs)+len(events) == 0 {
			return total, err
		}
		err = s.db.Update(ctx, func(tx Tx) error {
			for _, old := range recs {
				// Read again: a change (a late receipt) may have come since, and the retired counts must
				// be the record's last.
				v := tx.Verification(old.ID)
				if v == nil {
					continue // gone meanwhile
				}
				rec, err := decode(old.ID, v)
				if err != nil {
					return err
				}
				if err := retire(tx, rec); err != nil {
					return err
				}
				if err := s.forget(tx, rec); err != nil {
					return err
				}
			}
			for _, e := range events {
				if err := tx.DeleteEvent(e[0], e[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(recs) + len(events)
		if len(recs) < sweepBatch && len(events) < sweepBatch {
			return total, nil
		}
	}
}
