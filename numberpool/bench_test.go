package numberpool_test

import (
	"testing"

	"flashotp/numberpool"
)

// BenchmarkPick: one caller ID drawn for a new recipient from one 4-X pattern (local-first candidates,
// cooldown and quarantine checks with their HMACs, use counts).
func BenchmarkPick(b *testing.B) {
	f := newFixture(b, numberpool.Config{}, pool("demo", entry("+44207946XXXX")))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := f.reg.Pick(b.Context(), numberpool.PickRequest{App: "demo", Recipient: recipient(i % 10_000_000), Country: "US", CodeLength: 4}); err != nil {
			b.Fatal(err)
		}
	}
}
