package otp

import (
	"testing"

	"flashotp/store"
)

// BenchmarkMAC: the code's HMAC-SHA256 under the server key, as send and verify compute it.
func BenchmarkMAC(b *testing.B) {
	db, err := store.Open(b.TempDir()+"/bench.db", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := &Service{db: db}
	b.ReportAllocs()
	for b.Loop() {
		s.mac("otp_01KAKQ4G2ZB0X8Y8K0FJ3N6M1V", "5831")
	}
}
