package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"flashotp/internal/pgserver"
)

// clusterKey is the store.secret_key the engines of part n share.
var clusterKey = strings.Repeat("b3", 16)

// benchCluster is part n<engines>: that many engines (flashotp serve, each its own process, each its own
// node.id) on one new database of the PostgreSQL server pg on this machine, the SIPp callee their trunk;
// one wrk per engine POSTing /otp/send from c.Connections/engines connections (at least one per wrk
// thread) for c.Duration, each wrk to recipients of its own. Figures: the 202s per second summed over the
// engines, the worst wrk's p50 and p99, the engines' CPU per send (the database server's is not counted),
// and every call must end missed (the reports, which the engines share).
func benchCluster(c Config, pg *pgserver.Server, callee *callee, engines, run int, logf func(string, ...any)) (benchRow, error) {
	part := fmt.Sprintf("n%d", engines)
	row := benchRow{part: part, what: fmt.Sprintf("wrk %d conns POST /otp/send → %d × flashotp serve on one PostgreSQL → SIPp callee, %s", c.Connections, engines, c.Duration)}
	dsn, err := pg.CreateDB(fmt.Sprintf("bench_%s_%d", part, run))
	if err != nil {
		return row, err
	}
	var procs []*engineProc
	defer func() {
		for _, e := range procs {
			e.Stop()
		}
	}()
	var scripts []string
	for k := range engines {
		dir := filepath.Join(c.dir, fmt.Sprintf("%s-%d-%d", part, run, k))
		store := fmt.Sprintf("{driver: postgres, dsn: %q, secret_key: %s}\nnode: {id: bench-%d}", dsn, clusterKey, k)
		e, err := startEngineOn(c.Engine, dir, callee.Addr, store)
		if err != nil {
			return row, err
		}
		procs = append(procs, e)
		script, err := sendsScript(dir, k, engines)
		if err != nil {
			return row, err
		}
		scripts = append(scripts, script)
	}
	before, err := callee.arrivals()
	if err != nil {
		return row, err
	}
	cpu0 := make([]time.Duration, engines)
	for k, e := range procs {
		cpu0[k] = e.cpu()
	}
	results := make([]wrkResult, engines)
	errs := make([]error, engines)
	var wg sync.WaitGroup
	for k, e := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[k], errs[k] = runWrk(scripts[k], e.Base, max(c.Connections/engines, wrkThreads), c.Duration)
		}()
	}
	wg.Wait()
	var accepted, other, socket int64
	var rate float64
	for k, w := range results {
		if errs[k] != nil {
			return row, errs[k]
		}
		accepted += w.Requests - w.Non2xx
		other, socket = other+w.Non2xx, socket+w.SocketErrors
		rate += float64(w.Requests-w.Non2xx) / w.Duration.Seconds()
		row.p50, row.p99 = max(row.p50, w.P50), max(row.p99, w.P99)
	}
	out, complete := procs[0].waitOutcomes(accepted, outcomeBound)
	var cpu time.Duration
	for k, e := range procs {
		cpu += e.cpu() - cpu0[k]
	}
	after, err := callee.arrivals()
	if err != nil {
		return row, err
	}
	sent := max(out.Sent, accepted)
	row.rate = rate
	row.completion = float64(min(out.Missed, int64(after-before))) / float64(max(sent, 1))
	row.cpuPerCall = cpu / time.Duration(max(sent, 1))
	row.note = fmt.Sprintf("%d accepted (202), %d other answers, %d socket errors; the engines recorded %d sent, %d missed, %d answered, %d failed; the callee saw %d INVITEs; p50/p99: the worst engine's; CPU: the engines' own, not the database's",
		accepted, other, socket, out.Sent, out.Missed, out.Answered, out.Failed, after-before)
	if !complete {
		row.note += fmt.Sprintf("; not every call had an outcome %s after the load", outcomeBound)
	}
	logf("%s: run %d: %.0f sends/s, %s", part, run+1, row.rate, row.note)
	return row, nil
}
