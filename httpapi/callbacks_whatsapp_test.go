package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"flashotp/httpapi"
	"flashotp/message"
	"flashotp/whatsapp"
)

const (
	waAppSecret   = "app-secret-0123456789"
	waVerifyToken = "verify-me-please"
)

// waSettings are a WhatsApp channel's, for a server whose sender never sends.
var waSettings = whatsapp.Settings{
	BaseURL: "http://127.0.0.1:9", APIVersion: "v21.0", PhoneNumberID: "106540352242922",
	AccessToken: "EAAJB-test-token-0123456789", AppSecret: waAppSecret, VerifyToken: waVerifyToken,
	Template: "verification_code", Timeout: time.Second,
}

// waSigned signs a webhook body as Meta does: X-Hub-Signature-256 = sha256=hex(HMAC-SHA256(app secret, body)).
func waSigned(secret, body string) func(r *http.Request) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", sig) }
}

// waReceipts keeps the receipts a sender reports.
type waReceipts struct {
	mu  sync.Mutex
	got []message.Receipt
}

func (w *waReceipts) add(r message.Receipt) { w.mu.Lock(); w.got = append(w.got, r); w.mu.Unlock() }
func (w *waReceipts) all() []message.Receipt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]message.Receipt(nil), w.got...)
}

const waDelivered = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NDE1QjQ2NzQwRkFBMzA5MUIA","status":"delivered","timestamp":"1750263773","recipient_id":"14155552671","biz_opaque_callback_data":"otp_x.0"}]}}]}]}`

// callWhatsApp drives the WhatsApp webhook's routes through v on a server of e with the channel: the
// handshake, a signed status, a bad signature and a body that is no webhook's.
func callWhatsApp(t *testing.T, v *validator, e *env, cfg httpapi.Config, log *slog.Logger) {
	t.Helper()
	var got waReceipts
	sender, err := whatsapp.New(waSettings, got.add, log)
	if err != nil {
		t.Fatal(err)
	}
	wa := *e
	cfg.WhatsApp = sender
	wa.srv = httpapi.New(cfg, e.svc, log)
	hs := func(mode, token string) string {
		return "/callbacks/whatsapp?" + url.Values{"hub.mode": {mode}, "hub.verify_token": {token}, "hub.challenge": {"1158201444"}}.Encode()
	}
	if res := v.callOn(&wa, "GET", hs("subscribe", waVerifyToken), "", nil, 200); string(res.body) != "1158201444" {
		t.Errorf("handshake: %q, want the challenge", res.body)
	}
	v.callOn(&wa, "GET", hs("subscribe", "not-the-token"), "", nil, 403)
	v.callOn(&wa, "GET", hs("unsubscribe", waVerifyToken), "", nil, 403)
	v.callOn(&wa, "POST", "/callbacks/whatsapp", waDelivered, nil, 403)
	v.callOn(&wa, "POST", "/callbacks/whatsapp", waDelivered, waSigned("another-secret-0123", waDelivered), 403)
	if n := len(got.all()); n != 0 {
		t.Fatalf("unsigned webhooks reported %d receipts", n)
	}
	v.callOn(&wa, "POST", "/callbacks/whatsapp", waDelivered, waSigned(waAppSecret, waDelivered), 200)
	v.callOn(&wa, "POST", "/callbacks/whatsapp", `[1,2]`, waSigned(waAppSecret, `[1,2]`), 400)
	if r := got.all(); len(r) != 1 || r[0].Ref != "otp_x.0" || r[0].State != message.Delivered || !r[0].At.Equal(time.Unix(1750263773, 0)) {
		t.Errorf("receipts %+v, want one delivered of otp_x.0", r)
	}
	// Without the channel, both routes answer 404.
	v.call("GET", hs("subscribe", waVerifyToken), "", nil, 404)
	v.call("POST", "/callbacks/whatsapp", waDelivered, waSigned(waAppSecret, waDelivered), 404)
}
