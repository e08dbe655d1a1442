package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"flashotp/otp"
)

// benchSoak is part s: the engine as a process of its own (startEngine, so that the load generator's
// connections and memory are not counted), sends at c.SoakRate, each verified, for c.Soak; every 30 s its
// Go heap (after a GC, through /admin/debug/pprof/heap?gc=1), goroutines, open files and resident memory
// are read from its own /metrics. They must stay flat.
func benchSoak(ctx context.Context, c Config, callee *callee, logf func(string, ...any)) (benchRow, error) {
	row := benchRow{part: "s", what: fmt.Sprintf("soak: %d sends/s and their verifies for %s", c.SoakRate, c.Soak)}
	e, err := startEngine(c.Engine, filepath.Join(c.dir, "soak"), callee.Addr)
	if err != nil {
		return row, err
	}
	defer e.Stop()
	post := e.poster()
	type sample struct {
		rss, heap, db     float64
		goroutines, files int
	}
	var profile []byte
	take := func() sample {
		if b, err := e.get("/admin/debug/pprof/heap?gc=1", "Authorization", "Bearer "+adminToken); err == nil {
			profile = b
		}
		m, _ := e.gauges()
		var db float64
		if fi, err := os.Stat(e.dbFile); err == nil {
			db = float64(fi.Size())
		}
		return sample{m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"], db, int(m["go_goroutines"]), int(m["process_open_fds"])}
	}
	var (
		sent, failed atomic.Int64
		wg           sync.WaitGroup
		samples      []sample
	)
	t0 := time.Now()
	tick, every := time.NewTicker(time.Second/time.Duration(max(c.SoakRate, 1))), time.NewTicker(30*time.Second)
	defer tick.Stop()
	defer every.Stop()
	var i int64
	for time.Since(t0) < c.Soak && ctx.Err() == nil {
		select {
		case <-every.C:
			s := take()
			samples = append(samples, s)
			if c.Heap != "" && profile != nil {
				_ = os.WriteFile(fmt.Sprintf("%s-%s.pprof", c.Heap, time.Since(t0).Round(time.Second)), profile, 0o600)
			}
			logf("s: %s: %.1f MiB resident, %.1f MiB Go heap in use, %.1f MiB database file (mapped), %d goroutines, %d open files, %d sent, %d failed",
				time.Since(t0).Round(time.Second), s.rss/(1<<20), s.heap/(1<<20), s.db/(1<<20), s.goroutines, s.files, sent.Load(), failed.Load())
		case <-tick.C:
			i++
			wg.Add(1)
			go func(i int64) {
				defer wg.Done()
				code, b, _ := post("/otp/send", fmt.Sprintf(`{"appid":"bench","recipient":"+1415%07d","channel":"flashcall"}`, 2_000_000+i%7_000_000))
				if code != 202 {
					failed.Add(1)
					return
				}
				sent.Add(1)
				var v otp.Verification
				_ = json.Unmarshal(b, &v)
				if code, _, _ := post("/otp/verify", fmt.Sprintf(`{"appid":"bench","verification_id":%q,"otp_code":"00000"}`, v.ID)); code >= 500 || code == 0 {
					failed.Add(1)
				}
			}(i)
		}
	}
	wg.Wait()
	if len(samples) < 3 {
		return row, fmt.Errorf("only %d samples: give --soak of at least 90s", len(samples))
	}
	// The first sample is the warm-up; from the second on, nothing may keep growing.
	first, last := samples[1], samples[len(samples)-1]
	row.rate = float64(sent.Load()) / time.Since(t0).Seconds()
	row.completion = 1 - float64(failed.Load())/float64(max(sent.Load()+failed.Load(), 1))
	row.note = fmt.Sprintf("the engine's own, from 60 s in to the end: Go heap %.1f → %.1f MiB, goroutines %d → %d, open files %d → %d; resident %.1f → %.1f MiB with the database file (kept for otp.retention) %.1f → %.1f MiB",
		first.heap/(1<<20), last.heap/(1<<20), first.goroutines, last.goroutines, first.files, last.files,
		first.rss/(1<<20), last.rss/(1<<20), first.db/(1<<20), last.db/(1<<20))
	logf("s: %s", row.note)
	return row, nil
}
