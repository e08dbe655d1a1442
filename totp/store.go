package totp

import (
	"context"
	"errors"
)

// Errors a Store returns, which the Service turns into the caller's errors.
var (
	// ErrNotEnrolled is returned by Enrollment, UpdateEnrollment and DeleteEnrollment when the user has no enrollment
	// with the app.
	ErrNotEnrolled = errors.New("not enrolled")
	// ErrEnrolled is returned by PutEnrollment, without replace, when the user already has one.
	ErrEnrolled = errors.New("already enrolled")
)

// Store keeps the enrollments, one per (app, user). The Service encodes each record (its secret sealed); to
// a Store a record is opaque bytes under its app and user. flashotp/store implements it on bbolt.
type Store interface {
	// Enrollment returns user's enrollment with app; none: ErrNotEnrolled.
	Enrollment(ctx context.Context, appID, user string) ([]byte, error)
	// PutEnrollment stores record as user's enrollment with app. With replace false it fails with
	// ErrEnrolled when the user has one, writing nothing.
	PutEnrollment(ctx context.Context, appID, user string, record []byte, replace bool) error
	// UpdateEnrollment replaces user's enrollment with app by what fn returns from it, in one transaction.
	// fn returning its argument unchanged writes nothing; fn failing writes nothing and UpdateEnrollment
	// returns its error. fn may run more than once, so it must compute only from its argument. No
	// enrollment: ErrNotEnrolled.
	UpdateEnrollment(ctx context.Context, appID, user string, fn func(record []byte) ([]byte, error)) error
	// DeleteEnrollment removes user's enrollment with app; none: ErrNotEnrolled.
	DeleteEnrollment(ctx context.Context, appID, user string) error
	// Enrollments calls fn with every enrollment, from one consistent read (moving a store to another
	// backend); fn must not call the Store.
	Enrollments(ctx context.Context, fn func(appID, user string, record []byte) error) error
}
