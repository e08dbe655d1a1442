package otp

import (
	"math"
	"testing"
)

func TestCountersEncoding(t *testing.T) {
	c := counters{Sent: 3, Missed: 2, Failed: 1, Approved: -1 + 2}
	for _, ms := range []int64{0, 5, 41, 41, 2_000_000_000} {
		c.PDD[pddBucket(ms)]++
	}
	var back counters
	if err := back.decode(c.encode()); err != nil || back != c {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, c)
	}
	for _, bad := range [][]byte{{}, {2, 4}, append(c.encode(), 200, 1)} {
		if err := back.decode(bad); err == nil {
			t.Errorf("decode(%v) accepted", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	var h [pddBuckets]int64
	if median(&h) != -1 {
		t.Error("median of nothing")
	}
	for _, ms := range []int64{40, 41, 42, 1000, 3} {
		h[pddBucket(ms)]++
	}
	// The median, 41 ms, lies in the bucket [39.8, 50.1): the estimate must too.
	if m := median(&h); m < 39.8 || m >= 50.2 || math.IsNaN(m) {
		t.Errorf("median %.1f, want within 41's bucket", m)
	}
}
