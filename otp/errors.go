package otp

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by Service. Each stands for one API error code (SPEC section 4); httpapi maps them.
var (
	// ErrInvalidRequest is returned for malformed input other than the recipient.
	ErrInvalidRequest = errors.New("invalid_request")
	// ErrInvalidRecipient is returned when the recipient is not a valid E.164 mobile or fixed number.
	ErrInvalidRecipient = errors.New("invalid_recipient")
	// ErrDestinationBlocked is returned for a blocked number type, a country the app does not allow, or a
	// send the app's pre-send hook denied.
	ErrDestinationBlocked = errors.New("destination_blocked")
	// ErrNotFound is returned for an unknown verification, or one of another app.
	ErrNotFound = errors.New("not_found")
	// ErrInvalidCode is returned for a wrong code with attempts left.
	ErrInvalidCode = errors.New("invalid_code")
	// ErrMaxAttempts is returned when this or an earlier wrong code used up the attempts.
	ErrMaxAttempts = errors.New("max_attempts_reached")
	// ErrExpired is returned for a verification past its expires_at.
	ErrExpired = errors.New("expired")
	// ErrUndeliverable is returned when the call failed before it rang.
	ErrUndeliverable = errors.New("undeliverable")
	// ErrAlreadyVerified is returned when the code was already used.
	ErrAlreadyVerified = errors.New("already_verified")
	// ErrRateLimited is returned when a rate limit is full; RetryAfter says for how long.
	ErrRateLimited = errors.New("rate_limited")
	// ErrResendTooSoon is returned for a resend within the app's resend_cooldown, or while the last call is
	// still in flight.
	ErrResendTooSoon = errors.New("resend_too_soon")
	// ErrUnavailable is returned when no call can be accepted now (queue full, every trunk down, shutting
	// down, a failing disk); RetryAfter may say when to try again.
	ErrUnavailable = errors.New("unavailable")
)

// Error is a Service error with a message for the caller. Its Code is one of the sentinels above.
type Error struct {
	Code    error
	Message string
	// AttemptsRemaining is set for ErrInvalidCode.
	AttemptsRemaining *int
	// RetryAfter is set for ErrRateLimited and ErrResendTooSoon, and may be for ErrUnavailable.
	RetryAfter time.Duration
	// Scope is set for ErrRateLimited: the limit's scope (as GET /otp/rate-limits names it), or
	// "max_resends".
	Scope string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Code }

func errorf(code error, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}
