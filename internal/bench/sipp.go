package bench

import (
	"bytes"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"flashotp/internal/peers"
)

// benchdata holds the SIPp scenarios the bench runs: the callee (ring, then cancelled, its 487 retransmitted
// until the ACK) and the reference caller (INVITE, CANCEL on the 180).
//
//go:embed benchdata/*.xml
var benchdata embed.FS

// callee is the SIPp callee the bench calls, ringing then cancelled, with its statistics file (dumped every
// second).
type callee struct {
	*peers.SIPp
	stats string
}

// writeScenarios copies the embedded scenarios into dir.
func writeScenarios(dir string) error {
	entries, err := benchdata.ReadDir("benchdata")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := benchdata.ReadFile("benchdata/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sippArgs are the arguments of each SIPp process the bench runs: the same 4 MiB socket buffers the engine
// asks for, so neither side drops datagrams first.
var sippArgs = []string{"-l", "1000000", "-buff_size", "4194304"}

// startCallee runs the SIPp callee in dir, keeping its statistics in the file stats, and waits until it
// listens.
func startCallee(dir, stats string) (*callee, error) {
	p, err := peers.ListenSIPp(dir, "udp", append([]string{"-sf", "uas_ring_cancel.xml", "-max_socket", "65000",
		"-trace_stat", "-stf", stats, "-fd", "1"}, sippArgs...)...)
	if err != nil {
		return nil, err
	}
	return &callee{SIPp: p, stats: stats}, nil
}

// sippStats are the final counts of a SIPp caller run.
type sippStats struct {
	Created, Successful int
	Rate                float64 // calls created per second over the run
}

// errCallerStuck is returned by runReferenceCaller when the SIPp caller has not finished its calls within
// its bound: at the machine's limit some calls wait on retransmissions that never end; that rate is not
// sustained.
var errCallerStuck = errors.New("sipp caller still running")

// runReferenceCaller runs SIPp as the caller at rate calls/s for calls calls (step long) against callee,
// and returns its final counts. A caller still running 20 s past its step is stopped by its PID, and
// errCallerStuck returned.
func runReferenceCaller(dir, callee string, rate, calls int, step time.Duration) (sippStats, error) {
	stat := filepath.Join(dir, fmt.Sprintf("uac_%d.csv", rate))
	p, err := peers.RunSIPp(dir, "udp", append([]string{callee, "-sf", "uac_ring_cancel.xml", "-r", strconv.Itoa(rate),
		"-m", strconv.Itoa(calls), "-timeout", "60s", "-trace_stat", "-stf", stat, "-fd", "1"}, sippArgs...)...)
	if err != nil {
		return sippStats{}, err
	}
	bound := step + 20*time.Second
	select {
	case <-p.Done():
	case <-time.After(bound):
		pid := p.PID()
		p.Stop()
		return sippStats{}, fmt.Errorf("%w %s after %s of calls; stopped (PID %d)", errCallerStuck, bound, step, pid)
	}
	return readSIPpStats(stat)
}

// readSIPpStats reads the last line of a SIPp statistics file.
func readSIPpStats(file string) (sippStats, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return sippStats{}, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return sippStats{}, fmt.Errorf("sipp statistics %s: %v", file, err)
	}
	head, last := rows[0], rows[len(rows)-1]
	get := func(name string) string {
		for i, h := range head {
			if h == name && i < len(last) {
				return last[i]
			}
		}
		return ""
	}
	var s sippStats
	s.Created, _ = strconv.Atoi(get("TotalCallCreated"))
	s.Successful, _ = strconv.Atoi(get("SuccessfulCall(C)"))
	s.Rate, _ = strconv.ParseFloat(get("CallRate(C)"), 64)
	return s, nil
}

// arrivals returns how many calls the callee has received so far, from its statistics (it waits for the
// next dump): the count the bench compares with the calls it placed, to see none lost or duplicated.
func (p *callee) arrivals() (int, error) {
	time.Sleep(1100 * time.Millisecond)
	_, n, err := arrivalRate(p.stats)
	return n, err
}

// arrivalRate reads a SIPp callee's statistics (dumped every second) and returns the rate calls arrived at
// between the first and the last dump that saw new calls, and how many arrived.
func arrivalRate(file string) (float64, int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 3 {
		return 0, 0, fmt.Errorf("sipp statistics %s: %v (%d rows)", file, err, len(rows))
	}
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				return i
			}
		}
		return -1
	}
	at, in := col("CurrentTime"), col("IncomingCall(C)")
	if at < 0 || in < 0 {
		return 0, 0, errors.New("sipp statistics lack CurrentTime or IncomingCall(C)")
	}
	type point struct {
		t float64
		n int
	}
	var pts []point
	for _, row := range rows[1:] {
		if len(row) <= max(at, in) {
			continue
		}
		// CurrentTime is "date<TAB>time<TAB>epoch.micros".
		f := strings.Fields(row[at])
		t, err1 := strconv.ParseFloat(f[len(f)-1], 64)
		n, err2 := strconv.Atoi(row[in])
		if err1 == nil && err2 == nil {
			pts = append(pts, point{t, n})
		}
	}
	// From the last dump before calls came to the first dump after they stopped: whole seconds of arrivals.
	first, last := -1, -1
	for i := 1; i < len(pts); i++ {
		if pts[i].n > pts[i-1].n {
			if first < 0 {
				first = i - 1
			}
			last = i
		}
	}
	if first < 0 || pts[last].t <= pts[first].t {
		if len(pts) > 0 {
			return 0, pts[len(pts)-1].n, nil
		}
		return 0, 0, errors.New("no statistics yet")
	}
	// The first and last intervals are partly idle: count only the full seconds between them.
	if last-first >= 3 {
		first, last = first+1, last-1
	}
	return float64(pts[last].n-pts[first].n) / (pts[last].t - pts[first].t), pts[len(pts)-1].n, nil
}
