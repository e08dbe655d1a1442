package store_test

import (
	"testing"

	"flashotp/internal/conformance"
	"flashotp/internal/storetest"
	"flashotp/otp"
)

// The bbolt store keeps otp's contract as every backend must (internal/conformance).
func TestOTPConformance(t *testing.T) {
	conformance.OTP(t, func(t *testing.T) otp.Store { return storetest.Open(t).Verifications() })
}

// The bbolt store keeps the other packages' contracts as every backend must (internal/conformance).
func TestRecordsConformance(t *testing.T) {
	conformance.RecordStores(t, func(t *testing.T) conformance.Records { return storetest.Open(t) })
}
