package otp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"flashotp/store"
)

// sweepBatch bounds the records one sweep or purge transaction touches.
const sweepBatch = 500

// Run sweeps expired verifications every second (their expired event and webhook) and deletes records
// past the retention every minute, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := func(d time.Duration, fn func() error, what string) {
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
					if err := fn(); err != nil {
						s.log.Error(what, "err", err)
					}
				}
			}
		}()
	}
	every(time.Second, func() error { _, err := s.SweepExpired(); return err }, "sweep expired verifications")
	every(time.Minute, func() error { _, err := s.Purge(); return err }, "purge old records")
	every(time.Minute, func() error { s.limiter.Sweep(); return nil }, "")
	<-ctx.Done()
}

// SweepExpired marks pending verifications past their expires_at expired, with their event and webhook,
// and returns how many it marked.
func (s *Service) SweepExpired() (int, error) {
	total := 0
	for {
		now := s.now().UTC()
		var keys []string
		limit := fmt.Sprintf("%015d\x01", now.UnixMilli()) // above every key of this millisecond
		_ = s.db.View(func(tx *store.Tx) error {
			tx.Scan(bucketExpiry, "", "", false, func(k string, _ []byte) bool {
				if k >= limit {
					return false
				}
				keys = append(keys, k)
				return len(keys) < sweepBatch
			})
			return nil
		})
		if len(keys) == 0 {
			return total, nil
		}
		n := 0
		err := s.db.Batch(func(tx *store.Tx) error {
			n = 0
			for _, k := range keys {
				if err := tx.Delete(bucketExpiry, k); err != nil {
					return err
				}
				rec, err := get(tx, k[strings.IndexByte(k, 0)+1:])
				if err != nil {
					continue // retention took it
				}
				// A resend moved expires_at: this key is stale.
				if rec.Status != StatusPending || expiryKey(rec.ExpiresAt, rec.ID) != k {
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
		total += n
		if len(keys) < sweepBatch {
			return total, nil
		}
	}
}

// Purge deletes the verifications (with their index keys and attempts) and the events older than the
// retention, and returns how many records it deleted. Report counters are kept: they hold no personal data.
func (s *Service) Purge() (int, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.cfg.Retention)
	total := 0
	for {
		var recs []*record
		var events []string
		err := s.db.View(func(tx *store.Tx) error {
			var err error
			tx.Scan(bucketVerifications, "", "", false, func(k string, v []byte) bool {
				if !idTime(k).Before(cutoff) {
					return false
				}
				var rec *record
				if rec, err = get(tx, k); err != nil {
					return false
				}
				recs = append(recs, rec)
				return len(recs) < sweepBatch
			})
			if err != nil {
				return err
			}
			// Events are keyed app first: walk app by app.
			after := ""
			for len(events) < sweepBatch {
				app := ""
				tx.Scan(bucketEvents, "", after, false, func(k string, _ []byte) bool {
					app = k[:strings.IndexByte(k, 0)]
					return false
				})
				if app == "" {
					break
				}
				tx.Scan(bucketEvents, app+"\x00", "", false, func(k string, _ []byte) bool {
					if !idTime(k[len(app)+1:]).Before(cutoff) {
						return false
					}
					events = append(events, k)
					return len(events) < sweepBatch
				})
				after = app + "\x01"
			}
			return nil
		})
		if err != nil || len(recs)+len(events) == 0 {
			return total, err
		}
		err = s.db.Batch(func(tx *store.Tx) error {
			for _, rec := range recs {
				if err := s.forget(tx, rec); err != nil {
					return err
				}
			}
			for _, k := range events {
				if err := tx.Delete(bucketEvents, k); err != nil {
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
