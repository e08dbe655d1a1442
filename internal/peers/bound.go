package peers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// waitBound reports whether the process group pgid (a peer started with Setpgid: its PID) bound
// 127.0.0.1:port for transport within d, and gives up early when exited is closed. That the port cannot be
// bound says only that someone holds it: on a busy machine another process can take a free port between
// our probe and the peer's bind, and the peer then exits (SIPp: "Unable to bind main socket", status 254)
// while the test would talk to the stranger. So the holder is checked in /proc; where /proc cannot tell,
// a port someone holds counts. /proc is asked first: a probe that binds the port holds it for a moment, and a
// peer binding in that moment fails.
func waitBound(transport string, port int, d time.Duration, exited <-chan struct{}, pgid int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if owns, known := groupHolds(pgid, transport, port); owns {
			return true
		} else if !known && !canBind(transport, addr) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// canBind reports whether addr can be bound for transport now (the socket is closed at once).
func canBind(transport, addr string) bool {
	var c io.Closer
	var err error
	if transport == "udp" {
		c, err = net.ListenPacket("udp", addr)
	} else {
		c, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// groupHolds reports whether a process of group pgid has a socket bound to 127.0.0.1:port for transport
// (UDP; for tcp and tls a listening TCP socket), and whether /proc could tell.
func groupHolds(pgid int, transport string, port int) (owns, known bool) {
	table, listening := "/proc/net/udp", ""
	if transport != "udp" {
		table, listening = "/proc/net/tcp", "0A"
	}
	f, err := os.Open(table)
	if err != nil {
		return false, false
	}
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	inodes := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
		fields := strings.Fields(s.Text())
		if len(fields) > 9 && fields[1] == local && (listening == "" || fields[3] == listening) {
			inodes["socket:["+fields[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return false, true
	}
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return false, false
	}
	for _, proc := range procs {
		if processGroup(proc) != pgid {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(proc, "fd"))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(proc, "fd", fd.Name())); err == nil && inodes[target] {
				return true, true
			}
		}
	}
	return false, true
}

// processGroup returns the process group of /proc/<pid> (0 if it cannot be read).
func processGroup(proc string) int {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so count from the last ')'.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	fields := strings.Fields(rest)
	if len(fields) < 3 {
		return 0
	}
	pgrp, _ := strconv.Atoi(fields[2])
	return pgrp
}
