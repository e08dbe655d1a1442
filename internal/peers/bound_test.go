package peers

import (
	"net"
	"syscall"
	"testing"
)

// groupHolds finds a socket of the process group that holds the port, and none where a stranger holds it.
func TestGroupHolds(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		var port int
		if transport == "udp" {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			port = c.LocalAddr().(*net.UDPAddr).Port
		} else {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			port = l.Addr().(*net.TCPAddr).Port
		}
		if owns, known := groupHolds(syscall.Getpgrp(), transport, port); !known {
			Missing(t, "/proc cannot tell who holds a port here")
		} else if !owns {
			t.Errorf("%s port %d held by this process: not found", transport, port)
		}
		if owns, _ := groupHolds(syscall.Getpgrp()+1_000_000, transport, port); owns {
			t.Errorf("%s port %d found held by a group that does not exist", transport, port)
		}
	}
}
