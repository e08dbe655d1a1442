package store_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"flashotp/store"
)

// BenchmarkCreate: durable record writes from 32 concurrent writers (as sends are), each acknowledged only
// once its group commit is on disk.
func BenchmarkCreate(b *testing.B) {
	db, err := store.Open(b.TempDir()+"/bench.db", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 600) // about a verification record
	var n atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.Bucket("verifications").Create(fmt.Sprintf("otp_%020d", n.Add(1)), value); err != nil {
				b.Error(err)
			}
		}
	})
}
