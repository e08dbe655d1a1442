package otp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Copied counts what Copy copied.
type Copied struct {
	Verifications, Attempts, Expiries, Events, ReportRows int
}

// copyBatch is how many records Copy writes in one transaction of the target.
const copyBatch = 500

// ErrNotEmpty is returned by Copy when the target already holds verifications or events: a store is moved
// into an empty one, never merged.
var ErrNotEmpty = errors.New("the target store is not empty")

// Copy copies every record of from into to, which must hold no verification and no event: verifications
// with their verify attempts and expiry entries, events, report rows (the retired ones too) and otp's
// bookkeeping, as they are (the records are not re-encoded). It is how a bbolt file moves into PostgreSQL
// (`flashotp store migrate`), with the engine stopped. The webhook deliveries written beside verifications
// are the webhook package's store's, copied beside this.
func Copy(ctx context.Context, from, to Store) (Copied, error) {
	var c Copied
	if err := to.View(ctx, func(tx Tx) error {
		for range tx.Verifications() {
			return fmt.Errorf("%w: it holds verifications", ErrNotEmpty)
		}
		for range tx.EventApps() {
			return fmt.Errorf("%w: it holds events", ErrNotEmpty)
		}
		return nil
	}); err != nil {
		return c, err
	}
	// batch queues writes and runs them in transactions of copyBatch.
	var pending []func(Tx) error
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := to.Update(ctx, func(tx Tx) error {
			for _, w := range pending {
				if err := w(tx); err != nil {
					return err
				}
			}
			return nil
		})
		pending = pending[:0]
		return err
	}
	put := func(w func(Tx) error) error {
		if pending = append(pending, w); len(pending) < copyBatch {
			return nil
		}
		return flush()
	}
	err := from.View(ctx, func(tx Tx) error {
		type entry struct {
			id string
			ms int64
		}
		indexed := map[entry]bool{}
		var expiries []entry
		for id, at := range tx.Expiring(time.Unix(1<<40, 0)) {
			e := entry{id, at.UnixMilli()}
			indexed[e] = true
			expiries = append(expiries, e)
		}
		for id, v := range tx.Verifications() {
			rec, err := decode(id, v)
			if err != nil {
				return err
			}
			v := append([]byte(nil), v...)
			app, recipient, expires := rec.AppID, rec.Recipient, rec.ExpiresAt
			if err := put(func(tx Tx) error {
				if err := tx.CreateVerification(id, app, recipient, expires, v); err != nil {
					return err
				}
				if !indexed[entry{id, expires.UnixMilli()}] {
					// CreateVerification indexes the expiry; the source had dealt with it already.
					return tx.DeleteExpiry(id, expires)
				}
				return nil
			}); err != nil {
				return err
			}
			c.Verifications++
			for aid, a := range tx.Attempts(id) {
				a := append([]byte(nil), a...)
				if err := put(func(tx Tx) error { return tx.PutAttempt(id, aid, a) }); err != nil {
					return err
				}
				c.Attempts++
			}
		}
		// After every verification: an expiry entry without its verification is copied too, as it was.
		for _, e := range expiries {
			if err := put(func(tx Tx) error { return tx.PutExpiry(e.id, time.UnixMilli(e.ms)) }); err != nil {
				return err
			}
			c.Expiries++
		}
		for app := range tx.EventApps() {
			for id, v := range tx.Events(app, "") {
				v := append([]byte(nil), v...)
				if err := put(func(tx Tx) error { return tx.PutEvent(app, id, v) }); err != nil {
					return err
				}
				c.Events++
			}
		}
		apps := append([]string{""}, slices.Collect(tx.ReportApps())...) // "": the retired rows
		for _, app := range apps {
			for k, v := range tx.AllReportRows(app) {
				v := append([]byte(nil), v...)
				if err := put(func(tx Tx) error { return tx.PutReportRow(app, k.Day, k.Group, k.Key, v) }); err != nil {
					return err
				}
				c.ReportRows++
			}
		}
		if v := tx.Meta(markName); v != nil {
			if err := put(func(tx Tx) error { return tx.PutMeta(markName, v) }); err != nil {
				return err
			}
		}
		return flush()
	})
	return c, err
}
