package main

import (
	"bytes"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchdata holds the SIPp scenarios the bench runs: the callee (ring, then cancelled, its 487 retransmitted
// until the ACK) and the reference caller (INVITE, CANCEL on the 180).
//
//go:embed benchdata/*.xml
var benchdata embed.FS

// sippProc is a SIPp process the bench started; it is stopped by its PID.
type sippProc struct {
	cmd     *exec.Cmd
	addr    string
	stats   string        // its statistics file, dumped every second, if it keeps one
	done    chan struct{} // closed when it has exited
	waitErr error
	out     bytes.Buffer
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

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// startSIPp runs sipp in dir with args, on a free loopback port it returns in addr.
func startSIPp(dir string, args ...string) (*sippProc, error) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		return nil, errors.New("sipp not found: install the Debian package sip-tester")
	}
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	p := &sippProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	// -buff_size: the same 4 MiB socket buffers the engine asks for, so neither side drops datagrams first.
	p.cmd = exec.Command(sipp, append(args, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin", "-buff_size", "4194304")...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sipp: %w", err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// startCallee runs the SIPp callee and waits until it listens.
func startCallee(dir string, extra ...string) (*sippProc, error) {
	p, err := startSIPp(dir, append([]string{"-sf", "uas_ring_cancel.xml", "-l", "1000000", "-max_socket", "65000"}, extra...)...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		// SIPp holds the port once it runs: our own bind fails.
		c, err := net.ListenPacket("udp", p.addr)
		if err != nil {
			return p, nil
		}
		c.Close()
		select {
		case <-p.done:
			return nil, fmt.Errorf("sipp callee exited: %v: %s", p.waitErr, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.stop()
	return nil, errors.New("sipp callee did not start")
}

// stop ends the process (SIGTERM, then SIGKILL) by its PID.
func (p *sippProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// sippStats are the final counts of a SIPp caller run.
type sippStats struct {
	Created, Successful int
	Rate                float64 // calls created per second over the run
}

// runReferenceCaller runs SIPp as the caller at rate calls/s for calls calls against callee, and returns
// its final counts.
func runReferenceCaller(dir, callee string, rate, calls int) (sippStats, error) {
	stat := filepath.Join(dir, fmt.Sprintf("uac_%d.csv", rate))
	p, err := startSIPp(dir, callee, "-sf", "uac_ring_cancel.xml", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls),
		"-l", "1000000", "-timeout", "60s", "-trace_stat", "-stf", stat, "-fd", "1")
	if err != nil {
		return sippStats{}, err
	}
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.stop()
		return sippStats{}, errors.New("sipp caller still running after 90 s")
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
func (p *sippProc) arrivals() (int, error) {
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
