package dialer_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"flashotp/call"
	"flashotp/dialer"
	"flashotp/fault"
	"flashotp/internal/peers"
	"flashotp/sip"
)

// noReports is a Reporter for a dialer that places no call.
type noReports struct{}

func (noReports) CallProgress(string, string, call.State, time.Time) {}
func (noReports) CallEnded(string, string, string, call.Result)      {}

// Probe sends a real OPTIONS through the SIP user agent: a SIPp trunk answers 200 (up, with its round
// trip), a socket that never answers is a probe with no status and an error, an unknown name is not found.
func TestProbeAgainstSIPp(t *testing.T) {
	uas := peers.StartUAS(t, "options_answer.xml", 1)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	d := dialer.New(dialer.Config{Settings: dialer.Settings{QueueSize: 4}, Trunks: []dialer.Trunk{
		{Name: "sipp", Address: uas.Addr, Transport: "udp"},
		{Name: "silent", Address: silent.LocalAddr().String(), Transport: "udp"},
	}}, ua, noReports{}, nil)

	before := time.Now()
	p, err := d.Probe(t.Context(), "sipp")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Up || p.Status != 200 || p.Err != "" || p.RTT <= 0 || p.RTT > 2*time.Second || p.At.Before(before.Add(-time.Second)) {
		t.Fatalf("probe of SIPp: %+v\n%s", p, uas.Messages())
	}
	if code := uas.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("sipp exit %d: its scenario did not complete\n%s", code, uas.Messages())
	}
	if got := uas.Received("OPTIONS "); len(got) != 1 || !strings.HasPrefix(got[0], "OPTIONS sip:") {
		t.Fatalf("SIPp received %d OPTIONS: %q", len(got), got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	p, err = d.Probe(ctx, "silent")
	if err != nil {
		t.Fatal(err)
	}
	if p.Up || p.Status != 0 || p.Err == "" {
		t.Fatalf("probe of a silent trunk: %+v", p)
	}

	for _, st := range d.Trunks() {
		if !st.Up || st.LastProbe.At.IsZero() || st.Name == "sipp" && st.LastProbe.Status != 200 || st.Name == "silent" && st.LastProbe.Err == "" {
			t.Errorf("status %+v", st)
		}
	}
	_, err = d.Probe(t.Context(), "nope")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.NotFound || !errors.Is(err, dialer.ErrNoTrunk) {
		t.Fatalf("probe of an unknown trunk: %v", err)
	}
}
