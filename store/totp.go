package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"flashotp/totp"
)

var _ totp.Store = (*DB)(nil)

// Authenticator enrollments (totp.Store), one record per app and user under totpKey. ctx is not consulted:
// bbolt's transactions cannot be interrupted.

// Enrollment returns user's enrollment with app; none: totp.ErrNotEnrolled.
func (db *DB) Enrollment(_ context.Context, appID, user string) ([]byte, error) {
	v, err := db.bucket(bucketTOTP).Get(totpKey(appID, user))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
	}
	return v, err
}

// PutEnrollment stores record as user's enrollment with app; without replace it fails with
// totp.ErrEnrolled, writing nothing, when one is there.
func (db *DB) PutEnrollment(_ context.Context, appID, user string, record []byte, replace bool) error {
	k := totpKey(appID, user)
	b := db.bucket(bucketTOTP)
	if replace {
		return b.Put(k, record)
	}
	err := b.Create(k, record)
	if errors.Is(err, ErrExists) {
		return fmt.Errorf("enrollment: %w", totp.ErrEnrolled)
	}
	return err
}

// UpdateEnrollment replaces user's enrollment with app by what fn returns from it, in one group-committed
// transaction; none: totp.ErrNotEnrolled.
func (db *DB) UpdateEnrollment(_ context.Context, appID, user string, fn func(record []byte) ([]byte, error)) error {
	err := db.bucket(bucketTOTP).Update(totpKey(appID, user), fn)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
	}
	return err
}

// DeleteEnrollment removes user's enrollment with app; none: totp.ErrNotEnrolled.
// Enrollments calls fn with every enrollment, from one read transaction.
func (db *DB) Enrollments(_ context.Context, fn func(appID, user string, record []byte) error) error {
	return db.View(func(tx *Tx) error {
		return tx.each(bucketTOTP, func(k string, v []byte) error {
			app, user, _ := strings.Cut(k, "\x00")
			return fn(app, user, v)
		})
	})
}

func (db *DB) DeleteEnrollment(_ context.Context, appID, user string) error {
	k := totpKey(appID, user)
	var found bool
	err := db.Batch(func(tx *Tx) error {
		found = tx.Get(bucketTOTP, k) != nil
		if !found {
			return nil
		}
		return tx.Delete(bucketTOTP, k)
	})
	if err == nil && !found {
		return fmt.Errorf("enrollment: %w", totp.ErrNotEnrolled)
	}
	return err
}
