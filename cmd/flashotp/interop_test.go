package main

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"flashotp/internal/peers"
)

// A TCP trunk with sip.public_address set to an address nothing answers at (TEST-NET-1, never contacted, on a
// port nothing listens on): the callee must answer on the connection the INVITE came on, as the Via's
// ;rport asks. linphone (belle-sip) honours the Via: without rport it connects to the sent-by for its 180,
// the engine never hears it and the call ends no_ring although the phone rang. SIPp answers on the
// connection whatever the Via says; there the Via itself is checked. Either way the call is missed and its
// code verifies.
func TestTCPBehindUnreachablePublicAddress(t *testing.T) {
	for _, callee := range []string{"linphone", "sipp"} {
		t.Run(callee, func(t *testing.T) {
			var (
				trunk string
				cli   func() string
				uas   *peers.UAS
				l     *peers.Linphone
			)
			if callee == "linphone" {
				l = peers.StartLinphone(t)
				trunk = l.Addr
				cli = func() string {
					m := regexp.MustCompile(`Receiving new incoming call from sip:(\+[0-9]+)@`).FindStringSubmatch(l.Log())
					if m == nil {
						t.Fatalf("linphone showed no incoming call:\n%s", l.Log())
					}
					return m[1]
				}
			} else {
				uas = peers.StartUASOn(t, "tcp", "ring_cancel.xml", 1)
				trunk = uas.Addr
				cli = func() string { return cliOf(t, uas, recipient) }
			}
			closed, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(closed.Addr().String())
			closed.Close()
			public := "192.0.2.1:" + port

			cfg := testConfig(t, trunk)
			cfg.Trunks[0].Transport = "tcp"
			cfg.SIP.PublicAddress = public
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}
			id := c.send(recipient).body["verification_id"].(string)
			v := c.waitCall(id)
			if call := v["call"].(map[string]any); call["state"] != "missed" || call["sip_code"] != 487.0 {
				if l != nil {
					t.Fatalf("call %v, want missed 487\nlinphone:\n%s", call, l.Log())
				}
				t.Fatalf("call %v, want missed 487\n%s", call, uas.Messages())
			}
			if uas != nil {
				via := regexp.MustCompile(`(?m)^Via: .*$`).FindString(uas.Received("INVITE ")[0])
				if !strings.HasPrefix(via, "Via: SIP/2.0/TCP "+public+";") || !strings.Contains(via, ";rport") {
					t.Errorf("INVITE's %q: want TCP, sent-by %s and ;rport", via, public)
				}
			}
			code := cli()
			if a := c.verify(id, code[len(code)-4:]); a.status != 200 {
				t.Fatalf("verify: %d %s", a.status, a.raw)
			}
		})
	}
}
