package smpp

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"flashotp/message"
	"flashotp/setting"
)

func TestPDURoundTrip(t *testing.T) {
	sub := submit{Source: address{5, 0, "Acme"}, Dest: address{1, 1, "447700900123"}, ESMClass: 0x40,
		DataCoding: 8, Registered: 1, UD: []byte{5, 0, 3, 9, 2, 1, 0, 'a'}}
	p := pdu{ID: cmdSubmitSM, Seq: 7, Body: sub.body()}
	got, err := readPDU(bytes.NewReader(p.marshal()))
	if err != nil || got.ID != cmdSubmitSM || got.Seq != 7 || !bytes.Equal(got.Body, p.Body) {
		t.Fatalf("readPDU = %+v, %v", got, err)
	}
	// A submit_sm reads as a deliver_sm: the bodies share their layout (SMPP 3.4 4.4.1, 4.6.1).
	d, err := parseDeliver(got.Body)
	if err != nil || d.Source != sub.Source || d.Dest != sub.Dest || d.ESMClass != 0x40 || d.DataCoding != 8 || !bytes.Equal(d.Message, sub.UD) {
		t.Fatalf("parseDeliver = %+v, %v", d, err)
	}
}

func TestReadPDUBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"length below the header", []byte{0, 0, 0, 15, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 1}, errPDULength},
		{"length above the bound", []byte{0, 1, 0, 1, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 1}, errPDULength},
		{"body cut", []byte{0, 0, 0, 20, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 1, 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readPDU(bytes.NewReader(tc.b))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReceipt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		d        deliver
		id, stat string
		state    message.State
		reason   string
	}{
		{"text delivered", deliver{Message: []byte("id:0A1B sub:001 dlvrd:001 submit date:2612052230 done date:2612052231 stat:DELIVRD err:000 text:")},
			"0A1B", "DELIVRD", message.Delivered, ""},
		{"text undelivered", deliver{Message: []byte("id:77 stat:UNDELIV err:001")}, "77", "UNDELIV", message.Failed, message.ReasonUndelivered},
		{"TLVs win", deliver{Message: []byte("id:1 stat:DELIVRD"), TLVs: map[uint16][]byte{
			tagReceiptedMessageID: []byte("abc\x00"), tagMessageState: {3}}}, "abc", "EXPIRED", message.Failed, message.ReasonExpired},
		{"rejected", deliver{TLVs: map[uint16][]byte{tagReceiptedMessageID: []byte("9"), tagMessageState: {8}}},
			"9", "REJECTD", message.Failed, message.ReasonRejected},
		{"on the way", deliver{Message: []byte("id:5 stat:ENROUTE")}, "5", "ENROUTE", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, stat := parseReceipt(tc.d)
			state, reason, _ := receiptState(stat)
			if id != tc.id || stat != tc.stat || state != tc.state || reason != tc.reason {
				t.Errorf("= %q %q %s %s; want %q %q %s %s", id, stat, state, reason, tc.id, tc.stat, tc.state, tc.reason)
			}
		})
	}
}

// TestReceiptsMap checks the matching of receipts: a decimal receipt ID finds a hexadecimal message_id,
// a multi-part message is delivered once, when its last part is, and entries expire.
func TestReceiptsMap(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []message.Receipt
	s := &Sender{cfg: Config{Now: func() time.Time { return now }, Receipts: func(r message.Receipt) { got = append(got, r) }},
		ids: map[string]idEntry{}}
	s.log = slog.Default()
	two := &tracked{ref: "two", remaining: 2}
	s.remember("1F", two)
	s.remember("20", two)
	rcpt := func(id, stat string) {
		s.receipt(deliver{ESMClass: 0x04, Message: []byte("id:" + id + " stat:" + stat)})
	}
	rcpt("31", "DELIVRD") // 0x1F in decimal
	if len(got) != 0 {
		t.Fatalf("receipts %+v after one part of two", got)
	}
	rcpt("20", "DELIVRD")
	if len(got) != 1 || got[0].Ref != "two" || got[0].State != message.Delivered {
		t.Fatalf("receipts %+v, want two delivered", got)
	}
	rcpt("20", "DELIVRD")
	if len(got) != 1 {
		t.Fatalf("a repeated receipt was reported again: %+v", got)
	}
	s.remember("old", &tracked{ref: "old", remaining: 1})
	now = now.Add(receiptTTL + time.Minute)
	s.remember("new", &tracked{ref: "new", remaining: 1})
	rcpt("old", "UNDELIV")
	if len(got) != 1 {
		t.Errorf("an expired entry matched: %+v", got)
	}
	s.receipt(deliver{ESMClass: 0, Message: []byte("id:new stat:DELIVRD")}) // a mobile-originated message
	if len(got) != 1 {
		t.Errorf("a deliver_sm that is no receipt was taken for one: %+v", got)
	}
}

func TestSourceAddress(t *testing.T) {
	for from, want := range map[string]address{
		"+442079460000":   {1, 1, "442079460000"},
		"12345":           {3, 0, "12345"},
		"123456789":       {0, 1, "123456789"},
		"Acme Inc":        {5, 0, "Acme Inc"},
		"+44 20":          {},
		"AcmeBankLimited": {},
	} {
		if got := sourceAddress(from); got != want {
			t.Errorf("sourceAddress(%q) = %+v, want %+v", from, got, want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	good := Settings{Name: "main", Address: "smsc.example.net:2775", SystemID: "flashotp", Password: "secret"}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	if good.Window != 10 || good.Rate != 50 || good.EnquireLink != 30*time.Second || good.BindTimeout != 10*time.Second {
		t.Errorf("defaults %+v", good)
	}
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		key    string
	}{
		{"no name", func(s *Settings) { s.Name = "" }, "name"},
		{"no port", func(s *Settings) { s.Address = "smsc.example.net" }, "address"},
		{"no system_id", func(s *Settings) { s.SystemID = "" }, "system_id"},
		{"long system_id", func(s *Settings) { s.SystemID = strings.Repeat("x", 16) }, "system_id"},
		{"long password", func(s *Settings) { s.Password = "0123456789" }, "password"},
		{"long system_type", func(s *Settings) { s.SystemType = strings.Repeat("x", 13) }, "system_type"},
		{"window 0", func(s *Settings) { s.Window = -1 }, "window"},
		{"rate", func(s *Settings) { s.Rate = -1 }, "rate"},
		{"enquire_link", func(s *Settings) { s.EnquireLink = time.Millisecond }, "enquire_link"},
		{"bind_timeout", func(s *Settings) { s.BindTimeout = time.Millisecond }, "bind_timeout"},
		{"tls_ca without tls", func(s *Settings) { s.TLSCA = "ca.pem" }, "tls_ca"},
		{"tls_ca unreadable", func(s *Settings) { s.TLS, s.TLSCA = true, "/nonexistent/ca.pem" }, "tls_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			errs := setting.Split(s.Validate())
			var se *setting.Error
			if len(errs) != 1 || !errors.As(errs[0], &se) || se.Key != tc.key {
				t.Fatalf("errors %v, want one of %s", errs, tc.key)
			}
			if strings.Contains(se.Msg, s.Password) && s.Password != "" {
				t.Errorf("%q shows the password", se.Msg)
			}
		})
	}
}

// FuzzParseDeliver feeds the deliver_sm parser and the receipt reader outside input: they return an error
// or a value, never panic.
func FuzzParseDeliver(f *testing.F) {
	f.Add(submit{Dest: address{1, 1, "1"}, UD: []byte("id:1 stat:DELIVRD")}.body())
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseDeliver(b); err == nil {
			parseReceipt(d)
		}
		_, _ = readPDU(bytes.NewReader(b))
	})
}
