package otp

import (
	"crypto/rand"
	"testing"
	"time"
)

// serverKey is a server key as the store generates one.
func serverKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// BenchmarkMAC: the code's HMAC-SHA256 under the server key, as send and verify compute it.
func BenchmarkMAC(b *testing.B) {
	s := &Service{cfg: Config{Key: serverKey()}}
	b.ReportAllocs()
	for b.Loop() {
		s.mac("otp_01KAKQ4G2ZB0X8Y8K0FJ3N6M1V", "5831")
	}
}

// BenchmarkVerifyCloseness: checking a wrong code that shares no digit with the right one, and one that
// shares all but the last, takes the same time (the code's MAC is compared, with hmac.Equal, never the
// code): the figures go in docs/benchmarks.md, side by side.
func BenchmarkVerifyCloseness(b *testing.B) {
	s := &Service{cfg: Config{Key: serverKey()}, now: time.Now}
	const id = "otp_01KAKQ4G2ZB0X8Y8K0FJ3N6M1V"
	stored := record{Verification: Verification{ID: id, Status: StatusPending, CodeLength: 8, ExpiresAt: time.Now().Add(time.Hour)},
		CodeMAC: s.mac(id, "12345678"), MaxAttempts: 1 << 30}
	for _, tc := range []struct{ name, code string }{{"no_digit_right", "00000000"}, {"all_but_last_right", "12345670"}} {
		b.Run(tc.name, func(b *testing.B) {
			now := time.Now()
			for b.Loop() {
				rec := stored
				if s.check(&rec, tc.code, now) == nil {
					b.Fatal("a wrong code verified")
				}
			}
		})
	}
}
