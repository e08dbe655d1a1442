package otp

import (
	"crypto/rand"
	"encoding/json"
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

// flashRecord is the record of a flash call that rang and was missed, as the hot path stores it.
func flashRecord() *record {
	now := time.Date(2026, 12, 6, 4, 0, 0, 123456789, time.UTC)
	ended, pdd := now.Add(900*time.Millisecond), int64(12)
	rec := &record{
		Verification: Verification{ID: "otp_01KBX4Q2J8W0Y3N5R7T9V1X3Z5", AppID: "demo", Recipient: "+14155552671", Channel: ChannelFlashCall,
			Status: StatusPending, AttemptsRemaining: 5, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute), CLIPrefix: "+44207946",
			Call: Call{State: "missed", Trunk: "sipp", SIPCode: 487, StartedAt: &now, EndedAt: &ended, PostDialDelayMS: &pdd}},
		CodeMAC: make([]byte, 32), MaxAttempts: 5, Country: "US", SentAt: now,
	}
	rec.tally(tallyOp{Kind: tallySent, Channel: ChannelFlashCall})
	rec.tally(tallyOp{Kind: tallyOutcome, Channel: ChannelFlashCall, Trunk: "sipp", State: outcomeMissed, PDD: 12})
	return rec
}

// BenchmarkRecordCodec: a flash call's record encoded and decoded as it is stored (CBOR), and as JSON (how
// records were stored before issue 18, and are still read); bytes/record is the encoded size.
func BenchmarkRecordCodec(b *testing.B) {
	rec := flashRecord()
	for _, c := range []struct {
		name string
		enc  func(*record) ([]byte, error)
	}{{"cbor", encodeRecord}, {"json", func(r *record) ([]byte, error) { return json.Marshal(r) }}} {
		v, err := c.enc(rec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc(rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(v)), "bytes/record")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r record
				if err := decodeRecord(v, &r); err != nil || r.ID != rec.ID || len(r.Tally) != len(rec.Tally) {
					b.Fatalf("decoded %+v, %v", r, err)
				}
			}
		})
	}
}
