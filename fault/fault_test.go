package fault_test

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"flashotp/fault"
)

var errReason = errors.New("in use")

func TestError(t *testing.T) {
	disk := errors.New("input/output error")
	tests := []struct {
		name    string
		err     error
		code    fault.Code
		message string // of the first *fault.Error in the chain
		text    string // err.Error()
		is      []error
		isNot   []error
	}{
		{"nil", nil, "", "", "", nil, []error{fault.Internal}},
		{"plain", io.EOF, fault.Internal, "", "EOF", []error{io.EOF}, []error{fault.Internal}},
		{"errorf", fault.Errorf(fault.NotFound, "no verification %s", "otp_1"), fault.NotFound,
			"no verification otp_1", "no verification otp_1", []error{fault.NotFound}, []error{fault.InvalidRequest}},
		{"errorf wraps with %w", fault.Errorf(fault.Conflict, "%w: pool %q", errReason, "demo"), fault.Conflict,
			`in use: pool "demo"`, `in use: pool "demo"`, []error{fault.Conflict, errReason}, []error{fault.NotFound}},
		{"wrapped on the way up", fmt.Errorf("put pool: %w", fault.Errorf(fault.InvalidRequest, "name: bad")), fault.InvalidRequest,
			"name: bad", "put pool: name: bad", []error{fault.InvalidRequest}, nil},
		{"hides a failure", &fault.Error{Code: fault.Unavailable, Message: "try again", Err: fmt.Errorf("store failed: %w", disk)},
			fault.Unavailable, "try again", "store failed: input/output error", []error{fault.Unavailable, disk}, nil},
		{"a bare code", fmt.Errorf("x: %w", fault.Forbidden), fault.Forbidden, "", "x: forbidden", []error{fault.Forbidden}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.CodeOf(tt.err); got != tt.code {
				t.Errorf("CodeOf = %q, want %q", got, tt.code)
			}
			if tt.err != nil && tt.err.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.text)
			}
			var e *fault.Error
			if errors.As(tt.err, &e) != (tt.message != "") || e != nil && e.Message != tt.message {
				t.Errorf("As(*Error) = %v, want Message %q", e, tt.message)
			}
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v) = false", target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v) = true", target)
				}
			}
		})
	}
}

func TestFields(t *testing.T) {
	n := 2
	e := fault.Errorf(fault.InvalidCode, "wrong code")
	e.AttemptsRemaining, e.RetryAfter, e.Scope = &n, time.Second, "recipient"
	var got *fault.Error
	if !errors.As(fmt.Errorf("verify: %w", e), &got) || *got.AttemptsRemaining != 2 || got.RetryAfter != time.Second || got.Scope != "recipient" {
		t.Fatalf("As = %+v", got)
	}
}
