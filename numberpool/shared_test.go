package numberpool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"flashotp/fault"
	"flashotp/internal/testwait"
	"flashotp/numberpool"
)

// sharedPair is two registries over one store, as two engines sharing it (Config.Shared).
func sharedPair(t *testing.T, configPools ...numberpool.Pool) (*fixture, *numberpool.Registry) {
	t.Helper()
	f := newFixture(t, numberpool.Config{Shared: true, Node: "node-a"}, configPools...)
	cfg := f.cfg
	cfg.Node = "node-b"
	other, err := numberpool.NewRegistry(t.Context(), cfg, f.db, f.configs)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return f, other
}

// A recipient's cooldown holds across registries that share the store, even when they pick at once: five
// numbers give one recipient five different CLIs from two registries, then neither gives a sixth.
func TestSharedCooldown(t *testing.T) {
	gb := []string{"+442079460001", "+442079460002", "+442079460003", "+442079460004", "+442079460005"}
	f, other := sharedPair(t, pool("demo", local([]string{"GB"}, gb...)))
	req := numberpool.PickRequest{App: "demo", Recipient: "+447700900123", Country: "GB", CodeLength: 4}
	var (
		mu   sync.Mutex
		got  = map[string]int{}
		errs []error
		wg   sync.WaitGroup
	)
	for i := range 5 {
		reg := []*numberpool.Registry{f.reg, other}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := reg.Pick(context.Background(), req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got[p.CLI]++
		}()
	}
	wg.Wait()
	if len(errs) > 0 || len(got) != 5 {
		t.Fatalf("five picks at once from two registries gave %v, errors %v; want the five CLIs once each", got, errs)
	}
	for i, reg := range []*numberpool.Registry{f.reg, other} {
		if p, err := reg.Pick(t.Context(), req); !errors.Is(err, fault.Unavailable) {
			t.Errorf("a sixth pick from registry %d = %v, %v; want unavailable: every CLI in the cooldown", i, p.CLI, err)
		}
	}
}

// Rejections in two registries count together toward an entry's quarantine once each reads the other's
// quarantines again; a release in one is a release in the other; a pool made in one is in the other.
func TestSharedReload(t *testing.T) {
	gb := []string{"+442079460001", "+442079460002", "+442079460003", "+442079460004", "+442079460005"}
	p := pool("demo", local([]string{"GB"}, gb...), entry("+12025XXXXXX"))
	p.QuarantineAfter, p.QuarantineFor = 3, numberpool.Duration(time.Hour)
	f, other := sharedPair(t, p)
	ctx := t.Context()
	entryOut := func(reg *numberpool.Registry) bool {
		reports, _ := reg.Pools()
		_, ok := reports[0].Quarantine["entry:e1"]
		return ok
	}
	reload := func(reg *numberpool.Registry) {
		t.Helper()
		if err := reg.ReloadQuarantines(ctx); err != nil {
			t.Fatalf("ReloadQuarantines: %v", err)
		}
	}

	f.reg.Reject(ctx, gb[0], 403, "Forbidden", false)
	f.reg.Reject(ctx, gb[1], 403, "Forbidden", false)
	reload(other)
	for i := range 30 {
		p, err := other.Pick(ctx, numberpool.PickRequest{App: "demo", Recipient: recipient(i), Country: "GB", CodeLength: 4})
		if err != nil || p.CLI == gb[0] || p.CLI == gb[1] {
			t.Fatalf("the other registry picked %s, %v; the first registry quarantined %s and %s", p.CLI, err, gb[0], gb[1])
		}
	}
	other.Reject(ctx, gb[2], 403, "Forbidden", false)
	if !entryOut(other) {
		t.Fatalf("three rejections over two registries did not quarantine the entry")
	}
	reload(f.reg)
	if !entryOut(f.reg) {
		t.Fatalf("the entry quarantined by the other registry is not out here")
	}
	reload(f.reg) // reading the same quarantines again counts nothing twice
	if err := f.reg.Release(ctx, numberpool.Target{Pool: "demo", Entry: "e1"}); err != nil {
		t.Fatal(err)
	}
	reload(other)
	if entryOut(other) {
		t.Fatalf("the entry released in one registry is still out in the other")
	}
	// The release forgot the entry's rejections there too: one more is not three.
	other.Reject(ctx, gb[3], 403, "Forbidden", false)
	if entryOut(other) {
		t.Errorf("rejections from before the release still counted")
	}

	if _, err := f.reg.CreatePool(ctx, pool("extra", entry("+33198765XXXX"))); err != nil {
		t.Fatal(err)
	}
	if err := other.ReloadPools(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Pool("extra"); !ok {
		t.Errorf("a pool made in one registry is not in the other after ReloadPools")
	}
}

// The pools' reports of registries sharing a store count the picks of all of them (each stores its own
// counts every second and reads the others').
func TestSharedUses(t *testing.T) {
	f, other := sharedPair(t, pool("demo", entry("+44207946XXXX")))
	for i, reg := range []*numberpool.Registry{f.reg, f.reg, f.reg, other, other} {
		if _, err := reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: recipient(i), Country: "GB", CodeLength: 4}); err != nil {
			t.Fatal(err)
		}
	}
	for i, reg := range []*numberpool.Registry{f.reg, other} {
		testwait.For(t, 5*time.Second, fmt.Sprintf("registry %d's report of 5 picks", i), func() bool {
			reports, _ := reg.Pools()
			return reports[0].Uses["e1"] == 5
		})
	}
}
