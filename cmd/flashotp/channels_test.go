package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/email"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/smsgw"
	"flashotp/voice"
)

// channelConfig is testConfig with app demo allowed every channel of this build, workflow wf (may be nil),
// and an Android hash.
func channelConfig(t *testing.T, trunk string, wf ...apps.Step) configs.Config {
	t.Helper()
	cfg := testConfig(t, trunk)
	cfg.Apps[0].Channels = []string{apps.ChannelFlashCall, apps.ChannelVoice, apps.ChannelSMS}
	cfg.Apps[0].Workflow = wf
	cfg.Apps[0].AndroidAppHash = "FA+9qCX9VSu"
	cfg.Apps[0].CodeLengths = map[string]int{apps.ChannelVoice: 4} // a shorter prompt: a shorter test
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (c client) sendOn(channel, extra string) answer {
	c.t.Helper()
	a := c.do("POST", "/otp/send", fmt.Sprintf(`{"appid":"demo","recipient":%q,"channel":%q%s}`, recipient, channel, extra))
	if a.status != 202 {
		c.t.Fatalf("send %s: %d %s", channel, a.status, a.raw)
	}
	return a
}

// steps polls the status until want(steps) holds, and returns the verification.
func (c client) steps(id string, what string, want func(steps []map[string]any) bool) map[string]any {
	c.t.Helper()
	var a answer
	ok := testwait.Until(30*time.Second, func() bool {
		a = c.do("GET", "/otp/status?verification_id="+id, "")
		var steps []map[string]any
		for _, s := range a.body["steps"].([]any) {
			steps = append(steps, s.(map[string]any))
		}
		return want(steps)
	})
	if !ok {
		c.t.Fatalf("steps never %s: %s", what, a.raw)
	}
	return a.body
}

func stepStates(steps []map[string]any) string {
	var s []string
	for _, st := range steps {
		s = append(s, fmt.Sprint(st["channel"], ":", st["state"]))
	}
	return strings.Join(s, ",")
}

// rtpSink holds a UDP port a SIPp callee's SDP names, and keeps the RTP it receives.
type rtpSink struct {
	conn    net.PacketConn
	mu      sync.Mutex
	packets []rtp.Packet
}

func newRTPSink(t *testing.T) *rtpSink {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rtpSink{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				p.Payload = append([]byte(nil), p.Payload...)
				s.mu.Lock()
				s.packets = append(s.packets, p)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *rtpSink) port() string { return strconv.Itoa(s.conn.LocalAddr().(*net.UDPAddr).Port) }

// heard checks the stream (20 ms packets of one SSRC, in sequence, marker on the first, PCMU) and decodes
// the digits it speaks.
func (s *rtpSink) heard(t *testing.T) string {
	t.Helper()
	// The BYE may come before the sink has read the last packets from its socket (a loaded machine): read
	// on until none has come for half a second.
	for n, quiet := -1, time.Now(); time.Since(quiet) < 500*time.Millisecond; time.Sleep(50 * time.Millisecond) {
		s.mu.Lock()
		if len(s.packets) != n {
			n, quiet = len(s.packets), time.Now()
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.packets) < 50 {
		t.Fatalf("%d RTP packets: want a prompt of seconds", len(s.packets))
	}
	var audio []byte
	first := s.packets[0]
	if !first.Marker {
		t.Errorf("first packet without the marker bit")
	}
	for i, p := range s.packets {
		if p.PayloadType != 0 || p.SSRC != first.SSRC || len(p.Payload) != 160 {
			t.Fatalf("packet %d: pt %d ssrc %x %d bytes; want PCMU, one SSRC, 20 ms", i, p.PayloadType, p.SSRC, len(p.Payload))
		}
		if i > 0 && (p.SequenceNumber != s.packets[i-1].SequenceNumber+1 || p.Timestamp != s.packets[i-1].Timestamp+160) {
			t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, p.SequenceNumber, p.Timestamp, s.packets[i-1].SequenceNumber, s.packets[i-1].Timestamp)
		}
		audio = append(audio, p.Payload...)
	}
	code, err := voice.Builtin().Decode(audio)
	if err != nil {
		t.Fatalf("decode the prompt (%d packets): %v", len(s.packets), err)
	}
	return code
}

// A voice send against a SIPp callee that answers and sends the media to the test: the INVITE, the answer,
// RTP that decodes to the code's digits, the BYE; the step delivered; the code verifies, a wrong one is 422.
func TestVoiceAgainstSIPp(t *testing.T) {
	sink := newRTPSink(t)
	uas := peers.StartUAS(t, "voice_answer.xml", 1, "-set", "rtpport", sink.port(), "-set", "pt", "0", "-set", "codec", "PCMU")
	m := startMain(t, channelConfig(t, uas.Addr))
	c := client{t, "http://" + m.HTTPAddr}
	id := c.sendOn("voice", `,"locale":"en-GB"`).body["verification_id"].(string)
	v := c.steps(id, "delivered", func(s []map[string]any) bool { return stepStates(s) == "voice:delivered" })
	if call := v["call"].(map[string]any); call["state"] != "answered" || call["sip_code"] != 200.0 {
		t.Errorf("call %v, want answered 200", call)
	}
	if uas.Wait(t, 10*time.Second) != 0 {
		t.Fatalf("SIPp's scenario (INVITE, ACK, BYE) failed:\n%s", uas.Messages())
	}
	code := sink.heard(t)
	if len(code) != 4 {
		t.Fatalf("heard %q, want the 4 digits code_lengths asks", code)
	}
	wrong := fmt.Sprintf("%04d", (mustAtoi(t, code)+1)%10000)
	if a := c.verify(id, wrong); a.status != 422 || errCode(a) != "invalid_code" {
		t.Fatalf("wrong code: %d %s", a.status, a.raw)
	}
	if a := c.verify(id, code); a.status != 200 {
		t.Fatalf("verify the code heard: %d %s", a.status, a.raw)
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var smsCode = regexp.MustCompile(`(?m)^([0-9]{6}) is your demo verification code`)

// messageCode returns the code of the MESSAGE SIPp received, checking its body's form.
func messageCode(t *testing.T, uas *peers.UAS) string {
	t.Helper()
	msgs := uas.Received("MESSAGE sip:" + recipient + "@")
	if len(msgs) == 0 {
		t.Fatalf("no MESSAGE reached SIPp:\n%s", uas.Messages())
	}
	last := msgs[len(msgs)-1]
	if !strings.Contains(last, "Content-Type: text/plain;charset=UTF-8") || !strings.HasSuffix(strings.TrimRight(last, "\r\n"), "\nFA+9qCX9VSu") {
		t.Fatalf("MESSAGE without the text type or the Android hash on its last line:\n%s", last)
	}
	m := smsCode.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no code in the MESSAGE:\n%s", last)
	}
	return m[1]
}

// An sms send delivers one MESSAGE holding the code and the Android hash, to SIPp and through Kamailio's
// digest auth; the code verifies.
func TestSMSAgainstSIPp(t *testing.T) {
	for _, through := range []string{"sipp", "kamailio"} {
		t.Run(through, func(t *testing.T) {
			uas := peers.StartUAS(t, "message_uas.xml", 1)
			cfg := channelConfig(t, uas.Addr)
			var k *peers.Kamailio
			if through == "kamailio" {
				k = peers.StartKamailio(t, "auth.cfg", uas.Addr)
				cfg.Trunks[0].Address = k.Addr
				cfg.Trunks[0].Username, cfg.Trunks[0].Password, cfg.Trunks[0].Realm = "flashotp", "s3cret", "flashotp.test"
			}
			m := startMain(t, cfg)
			c := client{t, "http://" + m.HTTPAddr}
			id := c.sendOn("sms", "").body["verification_id"].(string)
			v := c.steps(id, "sent", func(s []map[string]any) bool { return stepStates(s) == "sms:sent" })
			st := v["steps"].([]any)[0].(map[string]any)
			if st["encoding"] != "gsm7" || st["segments"] != 1.0 || st["via"] != "trunk" || st["sip_code"] != 200.0 {
				t.Errorf("step %v: want gsm7, 1 segment, via trunk, 200", st)
			}
			if _, ok := v["call"]; ok {
				t.Errorf("an sms-only verification shows a call: %v", v["call"])
			}
			if uas.Wait(t, 10*time.Second) != 0 {
				t.Fatalf("SIPp's scenario failed:\n%s", uas.Messages())
			}
			if k != nil {
				if n := strings.Count(k.Log(), "flashotp-test: MESSAGE"); n != 2 {
					t.Errorf("%d MESSAGEs reached Kamailio, want 2 (challenged, then authenticated)\n%s", n, k.Log())
				}
			}
			if got := len(uas.Received("MESSAGE ")); got != 1 {
				t.Errorf("%d MESSAGEs reached the phone, want 1", got)
			}
			if a := c.verify(id, messageCode(t, uas)); a.status != 200 {
				t.Fatalf("verify the SMS code: %d %s", a.status, a.raw)
			}
		})
	}
}

// channel auto, flashcall → sms → voice, against a callee that never rings but takes messages: the flash
// call fails, the SMS arrives, its code approves, and no voice call is made. Against a trunk that refuses
// messages with 488 and a phone that answers, sms → voice: the voice call comes at once and its code
// approves.
func TestWorkflowAgainstSIPp(t *testing.T) {
	t.Run("no ring, then sms", func(t *testing.T) {
		uas := peers.StartUAS(t, "workflow_no_ring_sms.xml", 3)
		m := startMain(t, channelConfig(t, uas.Addr,
			apps.Step{Channel: apps.ChannelFlashCall, Timeout: apps.Duration(20 * time.Second)},
			apps.Step{Channel: apps.ChannelSMS, Timeout: apps.Duration(60 * time.Second)},
			apps.Step{Channel: apps.ChannelVoice}))
		c := client{t, "http://" + m.HTTPAddr}
		id := c.sendOn("auto", "").body["verification_id"].(string)
		v := c.steps(id, "flashcall failed, sms sent", func(s []map[string]any) bool { return stepStates(s) == "flashcall:failed,sms:sent" })
		if r := v["steps"].([]any)[0].(map[string]any)["reason"]; r != "unavailable" {
			t.Errorf("flash step's reason %v, want unavailable (480)", r)
		}
		if a := c.verify(id, messageCode(t, uas)); a.status != 200 {
			t.Fatalf("verify the SMS code: %d %s", a.status, a.raw)
		}
		time.Sleep(500 * time.Millisecond) // room for a wrong voice call to show
		if n := len(uas.Received("INVITE ")); n != 1 {
			t.Errorf("%d INVITEs, want only the flash call's", n)
		}
		c.steps(id, "approved with two steps", func(s []map[string]any) bool { return stepStates(s) == "flashcall:failed,sms:sent" })
	})
	t.Run("488, then voice", func(t *testing.T) {
		sink := newRTPSink(t)
		uas := peers.StartUAS(t, "workflow_488_voice.xml", 2, "-set", "rtpport", sink.port())
		m := startMain(t, channelConfig(t, uas.Addr,
			apps.Step{Channel: apps.ChannelSMS, Timeout: apps.Duration(60 * time.Second)},
			apps.Step{Channel: apps.ChannelVoice}))
		c := client{t, "http://" + m.HTTPAddr}
		id := c.sendOn("auto", "").body["verification_id"].(string)
		v := c.steps(id, "sms failed, voice delivered", func(s []map[string]any) bool { return stepStates(s) == "sms:failed,voice:delivered" })
		if st := v["steps"].([]any)[0].(map[string]any); st["sip_code"] != 488.0 || st["reason"] != "client_error" {
			t.Errorf("sms step %v, want 488 client_error", st)
		}
		if a := c.verify(id, sink.heard(t)); a.status != 200 {
			t.Fatalf("verify the voice code: %d %s", a.status, a.raw)
		}
	})
}

// The workflow sms → email → voice across real servers: the SMS gateway (Twilio-shaped) refuses the
// message, the email goes at once to aiosmtpd, which refuses the mailbox (550), and the voice call goes at
// once to SIPp, whose media reach the test: the code heard approves.
func TestWorkflowAcrossServers(t *testing.T) {
	gw := startTwilio(t, func(int) (int, string) {
		return 400, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`
	})
	srv := peers.StartSMTPD(t, peers.SMTPDOptions{TLS: "starttls", User: "flashotp", Password: "s3cret-pw"})
	sink := newRTPSink(t)
	uas := peers.StartUAS(t, "voice_answer.xml", 1, "-set", "rtpport", sink.port(), "-set", "pt", "0", "-set", "codec", "PCMU")

	cfg := channelConfig(t, uas.Addr)
	cfg.Apps[0].Channels = append(cfg.Apps[0].Channels, apps.ChannelEmail)
	cfg.Apps[0].Workflow = []apps.Step{
		{Channel: apps.ChannelSMS, Timeout: apps.Duration(time.Minute)},
		{Channel: apps.ChannelEmail, Timeout: apps.Duration(time.Minute)},
		{Channel: apps.ChannelVoice},
	}
	cfg.SMS.Via, cfg.SMS.Sender = "http", "+15557654321"
	cfg.HTTPSMS = smsgw.DefaultSettings
	cfg.HTTPSMS.Preset, cfg.HTTPSMS.URL, cfg.HTTPSMS.AccountSID, cfg.HTTPSMS.AuthToken = "twilio", gw.URL, gwSID, gwToken
	cfg.Email = email.DefaultSettings
	cfg.Email.Host, cfg.Email.Port, cfg.Email.CAFile = srv.Host, srv.Port, srv.CAFile
	cfg.Email.Username, cfg.Email.Password, cfg.Email.From = "flashotp", "s3cret-pw", "Demo <otp@demo.example>"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	c := client{t, "http://" + m.HTTPAddr}
	id := c.sendOn("auto", `,"email":"reject@example.com"`).body["verification_id"].(string)
	v := c.steps(id, "sms and email failed, voice delivered", func(s []map[string]any) bool {
		return stepStates(s) == "sms:failed,email:failed,voice:delivered"
	})
	steps := v["steps"].([]any)
	if sms, mail := steps[0].(map[string]any), steps[1].(map[string]any); sms["reason"] != "rejected" || sms["via"] != "http" || mail["reason"] != "rejected" {
		t.Errorf("sms step %v, email step %v: want both rejected", sms, mail)
	}
	if gw.count() != 1 || !smsCode.MatchString(gw.form(0).Get("Body")) {
		t.Errorf("%d requests at the gateway, want the one SMS holding a code", gw.count())
	}
	if a := c.verify(id, sink.heard(t)); a.status != 200 {
		t.Fatalf("verify the voice code: %d %s", a.status, a.raw)
	}
}
