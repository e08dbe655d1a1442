package fault

import (
	"errors"
	"fmt"
	"time"
)

// Code is an API error code, as "error.code" carries it. A Code is also an error, so that
// errors.Is(err, fault.NotFound) asks an error's code.
type Code string

// The codes of SPEC section 4, and those of the admin API and the HTTP layer.
const (
	// InvalidRequest: malformed JSON, a missing or unknown field, a bad value other than the recipient.
	InvalidRequest Code = "invalid_request"
	// InvalidRecipient: the recipient is not a valid E.164 mobile or fixed number.
	InvalidRecipient Code = "invalid_recipient"
	// DestinationBlocked: a country the app does not allow, a blocked number type, or a send the app's
	// pre-send hook denied.
	DestinationBlocked Code = "destination_blocked"
	// NotFound: an unknown verification (or one of another app), an unknown route, app, key or pool.
	NotFound Code = "not_found"
	// InvalidCode: a wrong code with attempts left; AttemptsRemaining says how many.
	InvalidCode Code = "invalid_code"
	// MaxAttempts: this or an earlier wrong code used up the attempts.
	MaxAttempts Code = "max_attempts_reached"
	// Expired: the verification is past its expires_at.
	Expired Code = "expired"
	// Undeliverable: the call failed before it rang.
	Undeliverable Code = "undeliverable"
	// AlreadyVerified: the code was already used.
	AlreadyVerified Code = "already_verified"
	// Unauthorized: no or wrong credentials.
	Unauthorized Code = "unauthorized"
	// Forbidden: an appid of another app.
	Forbidden Code = "forbidden"
	// RequestTooLarge: a body over http.max_body_bytes.
	RequestTooLarge Code = "request_too_large"
	// RateLimited: a rate limit is full; RetryAfter says for how long, Scope which limit.
	RateLimited Code = "rate_limited"
	// ResendTooSoon: a resend within the app's resend_cooldown, or while the last call is in flight;
	// RetryAfter says for how long.
	ResendTooSoon Code = "resend_too_soon"
	// Unavailable: no call can be accepted now (queue full, every trunk down, shutting down, a failing
	// disk); RetryAfter may say when to try again.
	Unavailable Code = "unavailable"
	// Internal: anything else; the detail is only in the log.
	Internal Code = "internal"
	// Conflict: an admin change that clashes with what is there (a name taken, numbers an app needs,
	// what the config file owns, a revoked key).
	Conflict Code = "conflict"
	// MethodNotAllowed: a route asked with a method it does not take.
	MethodNotAllowed Code = "method_not_allowed"
	// AdminDisabled: an admin route while no admin token is configured.
	AdminDisabled Code = "admin_disabled"
)

func (c Code) Error() string { return string(c) }

// Error is an error the caller is told: its Code and Message, and what goes with them.
type Error struct {
	Code    Code
	Message string
	// RetryAfter is set for RateLimited and ResendTooSoon, and may be for Unavailable.
	RetryAfter time.Duration
	// AttemptsRemaining is set for InvalidCode.
	AttemptsRemaining *int
	// Scope is set for RateLimited: the limit's scope (as GET /otp/rate-limits names it), or "max_resends".
	Scope string
	// Err, when set, is the failure behind Message that the caller is not told (a failing disk): it is the
	// error's text, for the log.
	Err error

	wrapped error // what Errorf's %w verbs wrapped, for errors.Is and errors.As
}

// Errorf returns an *Error with code and the message format makes. Like fmt.Errorf, a %w verb wraps its
// operand: it is part of the message, and errors.Is finds it.
func Errorf(code Code, format string, a ...any) *Error {
	err := fmt.Errorf(format, a...)
	return &Error{Code: code, Message: err.Error(), wrapped: err}
}

// Error returns Err's text if the error hides one, else Message.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns Err, or what Errorf wrapped.
func (e *Error) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return e.wrapped
}

// Is reports whether target is e's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns the code of the first *Error (or Code) in err's chain; any other error is Internal, and
// nil is "".
func CodeOf(err error) Code {
	var (
		e *Error
		c Code
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &c):
		return c
	}
	return Internal
}
