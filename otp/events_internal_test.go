package otp

import (
	"testing"
	"time"
)

// Events are stored as CBOR without their ID (the key holds it); an event an earlier engine stored as JSON,
// its ID inside, still reads the same.
func TestDecodeEventBothForms(t *testing.T) {
	rec := &record{Verification: Verification{ID: "otp_1", AppID: "demo", Recipient: "+14155552671"}}
	e := Event{Type: EventCallRinging, At: time.Date(2026, 12, 6, 5, 40, 0, 123, time.UTC), Trunk: "phone"}
	v, err := encodeEvent(rec, e)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "evt_1", Type: e.Type, At: e.At, AppID: "demo", VerificationID: "otp_1", Recipient: "+14155552671", Trunk: "phone"}
	if got, err := decodeEvent("evt_1", v); err != nil || got != want {
		t.Errorf("CBOR: %+v, %v; want %+v", got, err, want)
	}
	old := `{"id":"evt_1","type":"call_ringing","at":"2026-12-06T05:40:00.000000123Z","appid":"demo","verification_id":"otp_1","recipient":"+14155552671","trunk":"phone"}`
	if got, err := decodeEvent("evt_1", []byte(old)); err != nil || got != want {
		t.Errorf("JSON: %+v, %v; want %+v", got, err, want)
	}
	if _, err := decodeEvent("evt_1", []byte{0xff}); err == nil {
		t.Error("a broken event decoded")
	}
}
