package smpp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/internal/peers"
	"flashotp/message"
	"flashotp/smpp"
)

// receipts collects the receipts a Sender reports.
type receipts struct {
	mu   sync.Mutex
	list []message.Receipt
	ch   chan message.Receipt
}

func newReceipts() *receipts { return &receipts{ch: make(chan message.Receipt, 100)} }

func (r *receipts) add(rc message.Receipt) {
	r.mu.Lock()
	r.list = append(r.list, rc)
	r.mu.Unlock()
	r.ch <- rc
}

func (r *receipts) wait(t *testing.T, ref string) message.Receipt {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case rc := <-r.ch:
			if rc.Ref == ref {
				return rc
			}
		case <-timeout:
			t.Fatalf("no receipt for %s", ref)
		}
	}
}

func settings(name string, smsc *peers.SMSC) smpp.Settings {
	return smpp.Settings{Name: name, Address: smsc.Addr, SystemID: smsc.SystemID, Password: smsc.Password,
		SystemType: "OTP", EnquireLink: time.Second, BindTimeout: 2 * time.Second}
}

func start(t *testing.T, sender string, rc *receipts, smscs ...smpp.Settings) *smpp.Sender {
	t.Helper()
	s, err := smpp.New(smpp.Config{SMSCs: smscs, Sender: sender, Receipts: rc.add,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func send(t *testing.T, s *smpp.Sender, m message.Message, d time.Duration) message.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Send(ctx, m)
}

func TestSendDeliveredAndReceipt(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	s := start(t, "+442079460000", rc, settings("main", smsc))
	text := "Your flashotp code is 123456 {€}"
	res := send(t, s, message.Message{Ref: "v1/0", To: "+447700900123", Text: text, Code: "123456"}, 10*time.Second)
	if res.State != message.Sent || res.Segments != 1 || res.ProviderID == "" {
		t.Fatalf("result %+v, want sent in one segment with an ID", res)
	}
	subs := smsc.WaitEvents("submit", 1, 5*time.Second)
	if len(subs) != 1 {
		t.Fatalf("submits %+v\n%s", subs, smsc.Log())
	}
	sub := subs[0]
	if sub.Text != text || sub.DataCoding != 0 || sub.Registered != 1 || sub.ESMClass != 0 || len(sub.UDH) != 0 {
		t.Errorf("submit %+v: want the text in GSM 7-bit (data_coding 0), registered_delivery 1, no UDH", sub)
	}
	if sub.SourceAddr != "442079460000" || sub.SourceTON != 1 || sub.SourceNPI != 1 ||
		sub.DestAddr != "447700900123" || sub.DestTON != 1 || sub.DestNPI != 1 {
		t.Errorf("addresses %+v: want international numbers without '+'", sub)
	}
	if sub.MessageID != res.ProviderID {
		t.Errorf("provider ID %q, the SMSC's message_id %q", res.ProviderID, sub.MessageID)
	}
	if r := rc.wait(t, "v1/0"); r.State != message.Delivered {
		t.Errorf("receipt %+v, want delivered", r)
	}
	binds := smsc.Events("bound")
	if len(binds) != 1 || binds[0].SystemType != "OTP" || binds[0].InterfaceVersn != 0x34 {
		t.Errorf("binds %+v, want one bind_transceiver of system_type OTP, interface_version 3.4", binds)
	}
}

func TestLongUCS2InParts(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	s := start(t, "Acme", rc, settings("main", smsc))
	text := "Ваш код 654321. " + strings.Repeat("Никому не сообщайте этот код. ", 5) + "😀"
	res := send(t, s, message.Message{Ref: "v2/0", To: "+447700900124", Text: text}, 10*time.Second)
	if res.State != message.Sent || res.Segments != 3 {
		t.Fatalf("result %+v, want sent in 3 segments", res)
	}
	subs := smsc.WaitEvents("submit", 3, 5*time.Second)
	if len(subs) != 3 {
		t.Fatalf("submits %+v", subs)
	}
	var joined strings.Builder
	for i, sub := range subs {
		if sub.DataCoding != 8 || sub.ESMClass&0x40 == 0 || len(sub.UDH) != 1 {
			t.Fatalf("part %d: %+v: want UCS-2 with a UDH", i, sub)
		}
		udh := sub.UDH[0]
		if !strings.HasPrefix(udh, "0003") || udh[6:8] != "03" || udh[8:10] != "0"+string(rune('1'+i)) || udh[4:6] != subs[0].UDH[0][4:6] {
			t.Errorf("part %d: UDH %s, want 0003 <ref> 03 0%d", i, udh, i+1)
		}
		if sub.SourceAddr != "Acme" || sub.SourceTON != 5 || sub.SourceNPI != 0 {
			t.Errorf("part %d: source %q TON %d NPI %d, want alphanumeric (5, 0)", i, sub.SourceAddr, sub.SourceTON, sub.SourceNPI)
		}
		joined.WriteString(sub.Text)
	}
	if joined.String() != text {
		t.Errorf("the parts join into %q, want %q", joined.String(), text)
	}
	if r := rc.wait(t, "v2/0"); r.State != message.Delivered {
		t.Errorf("receipt %+v, want delivered once every part is", r)
	}
}

func TestOutcomes(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	s := start(t, "", rc, settings("main", smsc))
	for _, tc := range []struct {
		name, to, from string
		state          message.State
		reason         string
		receipt        message.State
		receiptReason  string
	}{
		{"short code sender", "+447700900125", "12345", message.Sent, "", message.Delivered, ""},
		{"undelivered", "+447700900000", "", message.Sent, "", message.Failed, message.ReasonUndelivered},
		{"expired", "+447700900001", "", message.Sent, "", message.Failed, message.ReasonExpired},
		{"rejected by receipt", "+447700900002", "", message.Sent, "", message.Failed, message.ReasonRejected},
		{"refused destination", "+447700900003", "", message.Failed, message.ReasonRejected, "", ""},
		{"throttled then taken", "+447700900004", "", message.Sent, "", message.Delivered, ""},
		{"not a number", "447700900005", "", message.Failed, message.ReasonRejected, "", ""},
		{"bad sender", "+447700900006", "Acme Bank Limited", message.Failed, message.ReasonRejected, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := "ref-" + tc.name
			res := send(t, s, message.Message{Ref: ref, To: tc.to, From: tc.from, Text: "code 111222"}, 10*time.Second)
			if res.State != tc.state || res.Reason != tc.reason {
				t.Fatalf("result %+v, want %s %s", res, tc.state, tc.reason)
			}
			if tc.name == "refused destination" && !strings.Contains(res.Detail, "ESME_RINVDSTADR") {
				t.Errorf("detail %q, want the status's name", res.Detail)
			}
			if tc.receipt == "" {
				return
			}
			if r := rc.wait(t, ref); r.State != tc.receipt || r.Reason != tc.receiptReason {
				t.Errorf("receipt %+v, want %s %s", r, tc.receipt, tc.receiptReason)
			}
		})
	}
	for _, sub := range smsc.Events("submit") {
		if sub.DestAddr == "447700900125" && (sub.SourceAddr != "12345" || sub.SourceTON != 3 || sub.SourceNPI != 0) {
			t.Errorf("short code source %+v, want TON 3 NPI 0", sub)
		}
		if sub.DestAddr == "447700900000" && (sub.SourceAddr != "" || sub.SourceTON != 0) {
			t.Errorf("no sender: source %+v, want the SMSC's default", sub)
		}
	}
}

func TestBindRefused(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	cfg := settings("main", smsc)
	cfg.Password = "wrong"
	s := start(t, "", rc, cfg)
	res := send(t, s, message.Message{Ref: "v3/0", To: "+447700900123", Text: "code 1234"}, 2*time.Second)
	if res.State != message.Failed || res.Reason != message.ReasonAuthFailed || !strings.Contains(res.Detail, "ESME_RINVPASWD") {
		t.Fatalf("result %+v, want failed auth_failed naming ESME_RINVPASWD", res)
	}
	if strings.Contains(res.Detail, "wrong") {
		t.Errorf("detail %q shows the password", res.Detail)
	}
	ok, err := s.Bound("main")
	if ok || err == nil || !strings.Contains(err.Error(), "refused the bind") {
		t.Errorf("Bound = %v, %v; want a refused bind", ok, err)
	}
	if len(smsc.Events("submit")) != 0 {
		t.Error("a submit reached the SMSC")
	}
}

// TestSMSCRestarts stops the SMSC under a bound session: a message accepted while it is away is submitted
// once the client has rebound, and none is lost.
func TestSMSCRestarts(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	s := start(t, "", rc, settings("main", smsc))
	if res := send(t, s, message.Message{Ref: "before", To: "+447700900123", Text: "code 100001"}, 10*time.Second); res.State != message.Sent {
		t.Fatalf("before: %+v", res)
	}
	smsc.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := s.Bound("main"); ok; ok, _ = s.Bound("main") {
		if time.Now().After(deadline) {
			t.Fatal("still bound to a stopped SMSC")
		}
		time.Sleep(20 * time.Millisecond)
	}
	results := make(chan message.Result, 3)
	for i := range 3 {
		go func() {
			results <- send(t, s, message.Message{Ref: "during", To: "+447700900123", Text: "code 20000" + string(rune('1'+i))}, 30*time.Second)
		}()
	}
	time.Sleep(300 * time.Millisecond)
	smsc.Start()
	for range 3 {
		if res := <-results; res.State != message.Sent {
			t.Fatalf("during: %+v", res)
		}
	}
	texts := map[string]bool{}
	for _, sub := range smsc.WaitEvents("submit", 3, 5*time.Second) {
		texts[sub.Text] = true
	}
	for _, want := range []string{"code 200001", "code 200002", "code 200003"} {
		if !texts[want] {
			t.Errorf("%q never reached the restarted SMSC: %v", want, texts)
		}
	}
}

func TestFailoverAndUnbind(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	down := smpp.Settings{Name: "down", Address: "127.0.0.1:1", SystemID: "x", BindTimeout: time.Second, EnquireLink: time.Second}
	before := runtime.NumGoroutine()
	rc := newReceipts()
	s, err := smpp.New(smpp.Config{SMSCs: []smpp.Settings{down, settings("up", smsc)}, Receipts: rc.add})
	if err != nil {
		t.Fatal(err)
	}
	res := send(t, s, message.Message{Ref: "f", To: "+447700900123", Text: "code 7777"}, 10*time.Second)
	if res.State != message.Sent {
		t.Fatalf("result %+v, want sent on the SMSC that is up", res)
	}
	rc.wait(t, "f")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(smsc.WaitEvents("unbind", 1, 3*time.Second)) != 1 {
		t.Errorf("Close sent no unbind:\n%s", smsc.Log())
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestEnquireLink checks both directions: the client answers the SMSC's enquire_link, and drops a session
// whose SMSC stops answering its own, then binds again once the SMSC answers.
func TestEnquireLink(t *testing.T) {
	smsc := peers.StartSMSC(t, "flashotp", "secret1")
	rc := newReceipts()
	s := start(t, "", rc, settings("main", smsc))
	if len(smsc.WaitEvents("enquire_link_resp", 2, 5*time.Second)) < 2 {
		t.Fatalf("the client did not answer the SMSC's enquire_link:\n%s", smsc.Log())
	}
	if ok, err := s.Bound("main"); !ok {
		t.Fatalf("not bound: %v", err)
	}
	smsc.Pause()
	deadline := time.Now().Add(6 * time.Second)
	for ok, _ := s.Bound("main"); ok; ok, _ = s.Bound("main") {
		if time.Now().After(deadline) {
			smsc.Resume()
			t.Fatal("still bound to an SMSC that answers nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	smsc.Resume()
	if res := send(t, s, message.Message{Ref: "after", To: "+447700900123", Text: "code 300003"}, 15*time.Second); res.State != message.Sent {
		t.Fatalf("after the SMSC answered again: %+v", res)
	}
	// The SMSC writes its events as it goes: the second bind's may trail the send's answer.
	if n := len(smsc.WaitEvents("bound", 2, 5*time.Second)); n < 2 {
		t.Errorf("%d binds, want a second one after the silent SMSC", n)
	}
}

// TestCloseEndsWaitingSend: a Send waiting for a bind fails unavailable at Close, not at its deadline.
func TestCloseEndsWaitingSend(t *testing.T) {
	s, err := smpp.New(smpp.Config{SMSCs: []smpp.Settings{{Name: "down", Address: "127.0.0.1:1", SystemID: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan message.Result)
	go func() {
		done <- send(t, s, message.Message{Ref: "r", To: "+447700900123", Text: "code 1"}, time.Minute)
	}()
	time.Sleep(100 * time.Millisecond)
	_ = s.Close()
	select {
	case res := <-done:
		if res.State != message.Failed || res.Reason != message.ReasonUnavailable {
			t.Errorf("result %+v, want failed unavailable", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still waits after Close")
	}
}

// selfSigned writes a key and a self-signed certificate for 127.0.0.1 into dir and returns their paths.
func selfSigned(t *testing.T, dir string) (keyFile, certFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SMSC"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, certFile
}

// TestTLS binds over TLS to an SMSC whose certificate tls_ca vouches for, and refuses one it does not.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	keyFile, certFile := selfSigned(t, dir)
	smsc := peers.StartSMSCTLS(t, "flashotp", "secret1", keyFile, certFile)
	rc := newReceipts()
	cfg := settings("tls", smsc)
	cfg.TLS, cfg.TLSCA = true, certFile
	s := start(t, "", rc, cfg)
	if res := send(t, s, message.Message{Ref: "tls", To: "+447700900123", Text: "code 424242"}, 10*time.Second); res.State != message.Sent {
		t.Fatalf("over TLS: %+v", res)
	}
	if r := rc.wait(t, "tls"); r.State != message.Delivered {
		t.Errorf("receipt %+v", r)
	}

	untrusted := settings("untrusted", smsc)
	untrusted.TLS = true // the system's CAs: the self-signed certificate is refused
	s2 := start(t, "", rc, untrusted)
	res := send(t, s2, message.Message{Ref: "untrusted", To: "+447700900123", Text: "code 1"}, 2*time.Second)
	if res.State != message.Failed || res.Reason != message.ReasonUnavailable || !strings.Contains(res.Detail, "certificate") {
		t.Errorf("an untrusted certificate: %+v, want failed unavailable naming the certificate", res)
	}
}
