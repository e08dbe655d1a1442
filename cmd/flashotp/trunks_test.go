package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"flashotp/dialer"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/otp"
)

// Through a Kamailio trunk that challenges every INVITE (407, MD5, qop=auth): with the right credentials the
// flash call is missed and its code verifies; with a wrong password it ends auth_failed after at most two
// INVITEs.
func TestDigestAuthThroughKamailio(t *testing.T) {
	tests := []struct {
		name, password string
		state, reason  string
		maxInvites     int
	}{
		{"right password", "s3cret", "missed", "", 2},
		{"wrong password", "wrong", "failed", "auth_failed", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uas := peers.StartUAS(t, "ring_cancel_proxy.xml", 1)
			k := peers.StartKamailio(t, "auth.cfg", uas.Addr)
			cfg := testConfig(t, k.Addr)
			cfg.Trunks[0].Username, cfg.Trunks[0].Password, cfg.Trunks[0].Realm = "flashotp", tc.password, "flashotp.test"
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}

			id := c.send(recipient).body["verification_id"].(string)
			v := c.waitCall(id)
			call := v["call"].(map[string]any)
			if call["state"] != tc.state || call["reason"] != tc.reason {
				t.Fatalf("call %v, want %s %q\nkamailio:\n%s", call, tc.state, tc.reason, k.Log())
			}
			invites := strings.Count(k.Log(), "flashotp-test: INVITE")
			if invites < 1 || invites > tc.maxInvites {
				t.Fatalf("%d INVITEs reached the trunk, want 1..%d", invites, tc.maxInvites)
			}
			if tc.state == "missed" {
				cli := cliOf(t, uas, recipient)
				if a := c.verify(id, cli[len(cli)-4:]); a.status != 200 {
					t.Fatalf("verify: %d %s", a.status, a.raw)
				}
			}
		})
	}
}

// Two trunks: a failure before any provisional moves the call to the next trunk; a failure after a ring
// never places a second call.
func TestFailoverBetweenTrunks(t *testing.T) {
	tests := []struct {
		name, first   string
		state, trunk  string
		secondInvites int
	}{
		{"503 first", "unavailable_503.xml", "missed", "b", 1},
		{"180 then 486 first", "ring_then_busy.xml", "failed", "a", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := peers.StartUAS(t, tc.first, 1)
			b := peers.StartUAS(t, "ring_cancel.xml", 1)
			cfg := testConfig(t, a.Addr)
			cfg.Trunks = []dialer.Trunk{
				{Name: "a", Address: a.Addr, Priority: 1},
				{Name: "b", Address: b.Addr, Priority: 2},
			}
			cfg.Dialer.RingTime = time.Second // the 486 comes before the CANCEL would
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}

			v := c.waitCall(c.send(recipient).body["verification_id"].(string))
			call := v["call"].(map[string]any)
			if call["state"] != tc.state || call["trunk"] != tc.trunk {
				t.Fatalf("call %v, want %s on %s", call, tc.state, tc.trunk)
			}
			if n := len(a.Received("INVITE ")); n != 1 {
				t.Fatalf("first trunk got %d INVITEs, want 1", n)
			}
			time.Sleep(200 * time.Millisecond) // a wrongly placed second call would have arrived by now
			if n := len(b.Received("INVITE ")); n != tc.secondInvites {
				t.Fatalf("second trunk got %d INVITEs, want %d", n, tc.secondInvites)
			}
		})
	}
}

// The flash call over TCP (SIPp listening on TCP) and over TLS (a Kamailio TLS trunk in front of a SIPp
// callee: Debian's SIPp has no TLS). The TLS trunk's certificate names trunk.test, not its address, so
// tls_server_name is what lets it verify.
func TestTransports(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir, "trunk.test")
	tlsConf := filepath.Join(dir, "kamailio-tls.cfg")
	if err := os.WriteFile(tlsConf, []byte("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"+
		"private_key = "+keyFile+"\ncertificate = "+certFile+"\n\n[client:default]\nverify_certificate = no\nrequire_certificate = no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, transport := range []string{"tcp", "tls", "tls with the wrong name"} {
		t.Run(transport, func(t *testing.T) {
			wrongName := strings.HasSuffix(transport, "wrong name")
			transport, _, _ := strings.Cut(transport, " ")
			var uas *peers.UAS
			trunk := ""
			if transport == "tcp" {
				uas = peers.StartUASOn(t, "tcp", "ring_cancel.xml", 1)
				trunk = uas.Addr
			} else {
				uas = peers.StartUAS(t, "ring_cancel_proxy.xml", 1)
				trunk = peers.StartKamailioOn(t, "tls", "tls.cfg", uas.Addr, map[string]string{"TLSCONF": tlsConf}).Addr
			}
			cfg := testConfig(t, trunk)
			cfg.Trunks[0].Transport = transport
			if transport == "tls" {
				cfg.Trunks[0].TLSCA, cfg.Trunks[0].TLSServerName = caFile, "trunk.test"
				if wrongName {
					cfg.Trunks[0].TLSServerName = "other.test"
				}
			}
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}
			id := c.send(recipient).body["verification_id"].(string)
			v := c.waitCall(id)
			if wrongName {
				// The certificate does not name other.test: no call may go out on that connection.
				if call := v["call"].(map[string]any); call["state"] != "failed" || call["reason"] != "trunk_error" || len(uas.Received("INVITE ")) != 0 {
					t.Fatalf("call %v over an unverified TLS trunk", call)
				}
				return
			}
			if call := v["call"].(map[string]any); call["state"] != "missed" || call["sip_code"] != 487.0 {
				t.Fatalf("call %v\n%s", call, uas.Messages())
			}
			inv := uas.Received("INVITE ")[0]
			if !strings.Contains(inv, "SIP/2.0/"+strings.ToUpper(transport)+" 127.0.0.1") {
				t.Fatalf("INVITE did not come over %s:\n%s", transport, inv)
			}
			// The engine's Via (behind Kamailio, the second) asks for rport, on TLS too (RFC 3581).
			if !regexp.MustCompile(`SIP/2\.0/` + strings.ToUpper(transport) + ` 127\.0\.0\.1:[0-9]+;[^\r\n]*\brport\b`).MatchString(inv) {
				t.Fatalf("the INVITE's %s Via asks for no rport:\n%s", transport, inv)
			}
			cli := cliOf(t, uas, recipient)
			if a := c.verify(id, cli[len(cli)-4:]); a.status != 200 {
				t.Fatalf("verify: %d %s", a.status, a.raw)
			}
		})
	}
}

// A 183 with SDP counts as ringing; the RTP the callee sends from the address in that SDP is counted on the
// engine's one media socket, per call, and dropped.
func TestEarlyMedia(t *testing.T) {
	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	port := media.LocalAddr().(*net.UDPAddr).Port
	uas := peers.StartUAS(t, "early_media.xml", 1, "-key", "rtpport", strconv.Itoa(port))
	cfg := testConfig(t, uas.Addr)
	cfg.Dialer.RingTime = 2 * time.Second // time for the early media
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.send(recipient).body["verification_id"].(string)

	// Where the engine wants media: the m= line of its offer.
	var offer []string
	testwait.For(t, 5*time.Second, "an INVITE with an SDP offer", func() bool {
		if invs := uas.Received("INVITE "); len(invs) > 0 {
			offer = regexp.MustCompile(`(?m)^m=audio ([0-9]+) `).FindStringSubmatch(invs[0])
		}
		return offer != nil
	})
	// Media counts from the 183 on: RTP sent before the engine has read it comes from an address no call
	// named yet, and is dropped as a stranger's. The call shows ringing once the 183 is read.
	testwait.For(t, 5*time.Second, "the call ringing", func() bool {
		return c.do("GET", "/otp/status?verification_id="+id, "").body["call"].(map[string]any)["state"] == "ringing"
	})
	engine, _ := net.ResolveUDPAddr("udp", "127.0.0.1:"+offer[1])
	const sent = 25
	for i := 0; i < sent; i++ {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 0x5eed}, Payload: make([]byte, 160)}
		raw, _ := pkt.Marshal()
		if _, err := media.WriteTo(raw, engine); err != nil {
			t.Fatal(err)
		}
	}
	v := c.waitCall(id)
	call := v["call"].(map[string]any)
	if call["state"] != "missed" || call["early_media_packets"] != float64(sent) {
		t.Fatalf("call %v, want missed with %d early media packets", call, sent)
	}
}

// writeTestPKI writes a CA and a certificate for name (a server's and a client's), signed by it, into dir.
func writeTestPKI(t *testing.T, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flashotp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(file, typ string, b []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// outbound_proxy: requests go to the proxy with a loose Route to it, and the Request-URI names the trunk
// (domain, here, as a carrier's SBC would want).
func TestOutboundProxy(t *testing.T) {
	uas := peers.StartUAS(t, "ring_cancel_proxy.xml", 1)
	proxy := peers.StartKamailio(t, "proxy.cfg", uas.Addr)
	cfg := testConfig(t, uas.Addr)
	cfg.Trunks[0].OutboundProxy, cfg.Trunks[0].Domain = proxy.Addr, "trunk.example"
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	v := c.waitCall(c.send(recipient).body["verification_id"].(string))
	if call := v["call"].(map[string]any); call["state"] != "missed" || call["sip_code"] != 487.0 {
		t.Fatalf("call %v\n%s", call, uas.Messages())
	}
	inv := uas.Received("INVITE ")[0]
	if !strings.HasPrefix(inv, "INVITE sip:"+recipient+"@trunk.example SIP/2.0") || strings.Count(inv, "\nVia: ") != 2 {
		t.Fatalf("INVITE did not come through the proxy for trunk.example:\n%s", inv)
	}
}

// A trunk whose UDP port is closed: each call ends trunk_error at once (the ICMP port unreachable), not
// after dial_timeout; after down_after of them /readyz says every trunk is down and sends are refused 503
// unavailable with Retry-After, storing nothing.
func TestDeadTrunk(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.LocalAddr().String()
	dead.Close()
	cfg := testConfig(t, addr)
	cfg.Dialer.DialTimeout = 30 * time.Second
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	if a := c.do("GET", "/readyz", ""); a.status != 200 {
		t.Fatalf("readyz before any call: %d %s", a.status, a.raw)
	}

	recipients := []string{"+14155552671", "+14155552672", "+14155552673"} // down_after: 3
	for _, to := range recipients {
		sent := c.send(to)
		if sent.status != 202 {
			t.Fatalf("send while the trunk is up: %d %s", sent.status, sent.raw)
		}
		v := c.waitCall(sent.body["verification_id"].(string)) // gives up after 10 s, a third of dial_timeout
		if call := v["call"].(map[string]any); call["state"] != "failed" || call["reason"] != "trunk_error" || v["status"] != "failed" {
			t.Fatalf("call to a closed port: %v, status %v; want failed trunk_error", call, v["status"])
		}
	}

	a := c.do("GET", "/readyz", "")
	if a.status != 503 || !strings.HasPrefix(a.body["reason"].(string), "every trunk is down") {
		t.Fatalf("readyz after %d failures: %d %s", len(recipients), a.status, a.raw)
	}
	a = c.send("+14155552674")
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != 503 || errCode(a) != "unavailable" || err != nil || retry < 1 {
		t.Fatalf("send with every trunk down: %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	n := 0
	err = m.db.OTP().View(t.Context(), func(tx otp.Tx) error {
		for range tx.Verifications() {
			n++
		}
		return nil
	})
	if err != nil || n != len(recipients) {
		t.Fatalf("store holds %d verifications (err %v), want the %d placed", n, err, len(recipients))
	}
}
