package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/dialer"
	"flashotp/internal/peers"
	"flashotp/internal/stirtest"
	"flashotp/internal/testwait"
	"flashotp/numberpool"

	sipgosip "github.com/emiago/sipgo/sip"
)

// inboundEngine starts an engine whose app demo may send channel inbound, its numbers from pool dids, and
// whose one trunk (carrier, on 127.0.0.1: the Kamailio the test starts there; any port matches) has
// inbound on; tune, if not nil, changes that config first.
func inboundEngine(t *testing.T, tune func(cfg *configs.Config)) (*Main, client) {
	t.Helper()
	cfg := testConfig(t, "127.0.0.1:9")
	cfg.Trunks = []dialer.Trunk{{Name: "carrier", Address: "127.0.0.1:5060", Transport: "udp", Inbound: true}}
	cfg.Pool = append(cfg.Pool, numberpool.FilePool{Name: "dids", Numbers: []string{"+4420794611XX"}})
	cfg.Apps[0].Channels = []string{apps.ChannelFlashCall, apps.ChannelInbound}
	cfg.Apps[0].InboundPool = "dids"
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	return m, client{t, "http://" + m.HTTPAddr}
}

// The user's phone (SIPp, a scenario of the test's) calls the number the API returned, through Kamailio
// (a stateful proxy forwarding the DID to the engine, as a carrier's SBC does): the call is rejected 603,
// never answered, and the verification approves only for the call from the recipient's number. A call
// from another number, or with the caller ID withheld, leaves it pending; an INVITE from an address that is
// no trunk's, straight to the engine, gets no answer at all.
func TestInboundThroughKamailio(t *testing.T) {
	m, c := inboundEngine(t, nil)
	proxy := peers.StartKamailio(t, "proxy.cfg", m.SIPAddr)
	sent := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+recipient+`","channel":"inbound"}`)
	if sent.status != 202 || !strings.HasPrefix(fmt.Sprint(sent.body["dial_number"]), "+4420794611") {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id, dial := sent.body["verification_id"].(string), sent.body["dial_number"].(string)
	phone := func(caller string) *peers.UAS {
		t.Helper()
		uac := peers.StartUAC(t, "udp", "inbound_call.xml", proxy.Addr, "-key", "caller", caller, "-key", "called", dial)
		if code := uac.Wait(t, 15*time.Second); code != 0 {
			t.Fatalf("the call from %s was not rejected 603 (sipp exit %d):\n%s\n%s", caller, code, uac.Messages(), uac.Output())
		}
		if got := uac.Received("SIP/2.0 200"); len(got) > 0 {
			t.Fatalf("the call from %s was answered:\n%s", caller, got[0])
		}
		return uac
	}
	status := func() string { return fmt.Sprint(c.do("GET", "/otp/status?verification_id="+id, "").body["status"]) }

	phone("+14155550000")
	phone("anonymous")
	if s := status(); s != "pending" {
		t.Fatalf("after calls from another number and a withheld one: %s, want pending", s)
	}

	stranger := listenPeer(t, "127.0.0.2")
	inv := request(sipgosip.INVITE, stranger.addr(), m.SIPAddr, "inbound-stranger")
	inv.Recipient.User = dial
	stranger.send(m.SIPAddr, inv)
	if got := stranger.recv(time.Second); got != nil {
		t.Errorf("an INVITE from no trunk's address was answered: %s", got.String())
	}

	phone(recipient)
	if s := status(); s != "approved" {
		t.Fatalf("after the recipient's call: %s, want approved", s)
	}
	logs := c.do("GET", "/otp/logs?verification_id="+id, "")
	if !strings.Contains(logs.raw, `"inbound_call_matched"`) {
		t.Errorf("events: %s", logs.raw)
	}
	for result, want := range map[string]float64{"matched": 1, "no_match": 1, "withheld": 1} {
		if got := c.metric(`flashotp_inbound_calls_total{result="` + result + `",trunk="carrier"}`); got != want {
			t.Errorf("flashotp_inbound_calls_total %s = %v, want %v", result, got, want)
		}
	}
}

// A carrier that delivers calls only to a registered contact (Kamailio as a registrar, challenging with
// digest): the engine registers, refreshes its binding before it runs out (the console's trunk page says
// until when), and takes the user's call at its registered contact: rejected 603, the verification approved.
func TestInboundRegisteredWithKamailio(t *testing.T) {
	carrier := peers.StartKamailio(t, "registrar.cfg", "127.0.0.1:9")
	_, c := inboundEngine(t, func(cfg *configs.Config) {
		cfg.Trunks = []dialer.Trunk{{Name: "carrier", Address: carrier.Addr, Transport: "udp", Inbound: true,
			Username: "flashotp", Password: "s3cret", Register: true, RegisterExpires: 3 * time.Second}}
		cfg.HTTP.AdminToken = "t0k-registrar"
	})
	registered := func() bool { return c.metric(`flashotp_trunk_registered{trunk="carrier"}`) == 1 }
	testwait.For(t, 10*time.Second, "the engine registered", registered)
	// Refreshed at four fifths of the 3 s granted: a second REGISTER within about 2.4 s.
	testwait.For(t, 10*time.Second, "the registration refreshed", func() bool {
		return strings.Count(carrier.Log(), "flashotp-test: REGISTER expires=3") >= 2
	})
	signIn := c.do("POST", "/console/api/session", `{"token":"t0k-registrar"}`)
	if trunks := c.do("GET", "/console/api/trunks", "", "Cookie", signIn.header.Get("Set-Cookie")); !strings.Contains(trunks.raw, `"registration":{"registered":true,"until":"`) {
		t.Errorf("the console's trunks: %d %s", trunks.status, trunks.raw)
	}

	sent := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+recipient+`","channel":"inbound"}`)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id, dial := sent.body["verification_id"].(string), sent.body["dial_number"].(string)
	uac := peers.StartUAC(t, "udp", "inbound_call.xml", carrier.Addr, "-key", "caller", recipient, "-key", "called", dial)
	if code := uac.Wait(t, 15*time.Second); code != 0 {
		t.Fatalf("the call was not rejected 603 (sipp exit %d):\n%s\n%s", code, uac.Messages(), carrier.Log())
	}
	if s := c.do("GET", "/otp/status?verification_id="+id, ""); s.body["status"] != "approved" {
		t.Errorf("after the call to the registered contact: %s", s.raw)
	}
}

// A trunk that opens a TLS connection to the engine (sip.tls_listen), as a carrier's SBC does: Kamailio takes
// the user's call (SIPp over UDP: Debian's SIPp has no TLS) and relays it to the engine over TLS; the 603 goes
// back on Kamailio's own connection, and the verification approves. With sip.tls_client_ca, Kamailio's client
// certificate must be of that CA: one of another CA is refused at the handshake, and the call never reaches
// the engine.
func TestInboundOverTLS(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := writeTestPKI(t, dir, "engine.test")
	carrierCA, carrierCert, carrierKey := writeTestPKI(t, t.TempDir(), "carrier.test")
	otherCA, _, _ := writeTestPKI(t, t.TempDir(), "other.test")
	for _, tc := range []struct {
		name, clientCA string
		approves       bool
	}{
		{"any client", "", true},
		{"client certificate checked", carrierCA, true},
		{"client certificate of another CA", otherCA, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, c := inboundEngine(t, func(cfg *configs.Config) {
				cfg.SIP.TLSListen, cfg.SIP.TLSCert, cfg.SIP.TLSKey, cfg.SIP.TLSClientCA = "127.0.0.1:0", certFile, keyFile, tc.clientCA
			})
			// Kamailio's certificate, for its TLS listener and as its client certificate; it does not check
			// the engine's.
			tlsConf := filepath.Join(t.TempDir(), "kamailio-tls.cfg")
			if err := os.WriteFile(tlsConf, []byte("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"+
				"private_key = "+carrierKey+"\ncertificate = "+carrierCert+"\n\n[client:default]\nverify_certificate = no\nrequire_certificate = no\n"+
				"private_key = "+carrierKey+"\ncertificate = "+carrierCert+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			carrier := peers.StartKamailioOn(t, "tls", "tls.cfg", m.SIPTLSAddr+";transport=tls", map[string]string{"TLSCONF": tlsConf})

			sent := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+recipient+`","channel":"inbound"}`)
			if sent.status != 202 {
				t.Fatalf("send: %d %s", sent.status, sent.raw)
			}
			id, dial := sent.body["verification_id"].(string), sent.body["dial_number"].(string)
			args := []string{"-key", "caller", recipient, "-key", "called", dial}
			if !tc.approves {
				args = append(args, "-timeout", "3s") // no answer is coming: give up sooner
			}
			uac := peers.StartUAC(t, "udp", "inbound_call.xml", carrier.Addr, args...)
			code := uac.Wait(t, 15*time.Second)
			if tc.approves && code != 0 {
				t.Fatalf("the call relayed over TLS was not rejected 603 (sipp exit %d):\n%s\n%s", code, uac.Messages(), carrier.Log())
			}
			if !tc.approves && len(uac.Received("SIP/2.0 603")) > 0 {
				t.Fatalf("the call reached the engine over a connection with another CA's client certificate")
			}
			want := map[bool]string{true: "approved", false: "pending"}[tc.approves]
			if s := c.do("GET", "/otp/status?verification_id="+id, ""); s.body["status"] != want {
				t.Errorf("after the call over TLS: %s, want %s", s.raw, want)
			}
		})
	}
}

// STIR/SHAKEN: the user's call carries a PASSporT made by the test's own signing carrier (its root in
// stir.trust_anchors, its certificate served over HTTPS). The app asks for attestation A: a PASSporT with a
// bad signature, a stale iat, another orig, or attestation C approves nothing; a fresh one of A from the
// recipient's number does, and the step records it.
func TestInboundIdentity(t *testing.T) {
	shaken := stirtest.New(t)
	anchors := filepath.Join(t.TempDir(), "anchors.pem")
	if err := os.WriteFile(anchors, shaken.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	m, c := inboundEngine(t, func(cfg *configs.Config) {
		cfg.STIR.TrustAnchors = anchors
		cfg.Apps[0].InboundAttestation = "A"
	})
	proxy := peers.StartKamailio(t, "proxy.cfg", m.SIPAddr)
	sent := c.do("POST", "/otp/send", `{"appid":"demo","recipient":"`+recipient+`","channel":"inbound"}`)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id, dial := sent.body["verification_id"].(string), sent.body["dial_number"].(string)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	call := func(name, identity string) string {
		t.Helper()
		uac := peers.StartUAC(t, "udp", "inbound_call_identity.xml", proxy.Addr, "-key", "caller", recipient, "-key", "called", dial, "-key", "identity", identity)
		if code := uac.Wait(t, 15*time.Second); code != 0 {
			t.Fatalf("%s: the call was not rejected 603 (sipp exit %d):\n%s", name, code, uac.Messages())
		}
		return fmt.Sprint(c.do("GET", "/otp/status?verification_id="+id, "").body["status"])
	}
	for _, tc := range []struct{ name, identity string }{
		{"bad signature", shaken.Passport(t, other, shaken.X5U, "A", recipient, dial, now)},
		{"stale iat", shaken.Passport(t, shaken.Key, shaken.X5U, "A", recipient, dial, now.Add(-5*time.Minute))},
		{"another orig", shaken.Passport(t, shaken.Key, shaken.X5U, "A", "+14155550000", dial, now)},
		{"attestation C", shaken.Passport(t, shaken.Key, shaken.X5U, "C", recipient, dial, now)},
	} {
		if s := call(tc.name, tc.identity); s != "pending" {
			t.Fatalf("%s: %s, want pending", tc.name, s)
		}
	}
	if got := c.metric(`flashotp_inbound_calls_total{result="identity_refused",trunk="carrier"}`); got != 4 {
		t.Errorf("identity_refused counted %v, want 4", got)
	}
	if s := call("attestation A", shaken.Passport(t, shaken.Key, shaken.X5U, "A", recipient, dial, time.Now())); s != "approved" {
		t.Fatalf("a PASSporT of attestation A: %s, want approved", s)
	}
	st := c.do("GET", "/otp/status?verification_id="+id, "")
	if steps := st.body["steps"].([]any); steps[0].(map[string]any)["attestation"] != "A" {
		t.Errorf("the step does not record attestation A: %s", st.raw)
	}
}
