package sip_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"flashotp/call"
	"flashotp/internal/fakes"
	"flashotp/internal/peers"
	"flashotp/internal/testwait"
	"flashotp/sip"
	"flashotp/voice"
)

// rtpSink is the callee's media socket in a test: it keeps every RTP packet it receives, with when.
type rtpSink struct {
	conn net.PacketConn
	mu   sync.Mutex
	pkts []rtp.Packet
	at   []time.Time
	from net.Addr
	done chan struct{}
}

func listenRTP(t *testing.T) *rtpSink {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rtpSink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(append([]byte(nil), buf[:n]...)) != nil {
				continue
			}
			s.mu.Lock()
			s.pkts, s.at, s.from = append(s.pkts, p), append(s.at, time.Now()), from
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *rtpSink) port() string { return strconv.Itoa(s.conn.LocalAddr().(*net.UDPAddr).Port) }

func (s *rtpSink) packets() ([]rtp.Packet, []time.Time, net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rtp.Packet(nil), s.pkts...), append([]time.Time(nil), s.at...), s.from
}

// sendDTMF sends RFC 4733 event digit from the sink's socket to addr: a start packet and the end packet three
// times, as a phone does.
func (s *rtpSink) sendDTMF(t *testing.T, addr net.Addr, digit uint8, ts uint32) {
	t.Helper()
	for i, end := range []bool{false, true, true, true} {
		flags := byte(10) // volume -10 dBm0
		if end {
			flags |= 0x80
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(ts/160) + uint16(i), Timestamp: ts, SSRC: 0x1234, Marker: i == 0},
			Payload: []byte{digit, flags, 0x03, 0x20}}
		b, _ := p.Marshal()
		if _, err := s.conn.WriteTo(b, addr); err != nil {
			t.Fatal(err)
		}
	}
}

// checkStream checks the RTP a voice call sent: 20 ms packets of payload type pt, one SSRC, sequence
// numbers and timestamps that run on without a gap, the marker on the first only, paced in real time. It
// returns the audio as mu-law.
func checkStream(t *testing.T, pkts []rtp.Packet, at []time.Time, pt uint8) []byte {
	t.Helper()
	if len(pkts) < 50 {
		t.Fatalf("%d RTP packets, want a prompt's", len(pkts))
	}
	var audio []byte
	for i, p := range pkts {
		if p.PayloadType != pt || len(p.Payload) != 160 || p.SSRC != pkts[0].SSRC || p.Version != 2 {
			t.Fatalf("packet %d: pt %d, %d bytes, ssrc %x: want pt %d, 160 bytes, ssrc %x", i, p.PayloadType, len(p.Payload), p.SSRC, pt, pkts[0].SSRC)
		}
		if p.Marker != (i == 0) {
			t.Errorf("packet %d: marker %t", i, p.Marker)
		}
		if i > 0 && (p.SequenceNumber != pkts[i-1].SequenceNumber+1 || p.Timestamp != pkts[i-1].Timestamp+160) {
			t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, p.SequenceNumber, p.Timestamp, pkts[i-1].SequenceNumber, pkts[i-1].Timestamp)
		}
		payload := p.Payload
		if pt == 8 {
			payload = g711.Alaw2Ulaw(payload)
		}
		audio = append(audio, payload...)
	}
	want := time.Duration(len(pkts)-1) * 20 * time.Millisecond
	if took := at[len(at)-1].Sub(at[0]); took < want*95/100 || took > want+time.Second {
		t.Errorf("%d packets came over %s, want about %s (20 ms each)", len(pkts), took, want)
	}
	return audio
}

func voiceRequest(target string, prompt []byte) call.Request {
	return call.Request{Kind: call.KindVoice, Target: target, To: "+447700900123", CLI: "+442079461234",
		DialTimeout: 5 * time.Second, CancelGuard: 2 * time.Second, AnswerTimeout: 5 * time.Second, Repeat: 1, Prompt: prompt}
}

// A voice call against a SIPp callee that answers PCMU or PCMA: the prompt arrives as RTP at the address its
// SDP named, in that codec, and decodes back to the code; then the callee gets the BYE. A DTMF 1 from the
// callee plays it again from the start, once (Repeat 1): a second 1 is ignored.
func TestVoiceCall(t *testing.T) {
	const code = "4821"
	prompt, err := voice.Builtin().Prompt("en", code)
	if err != nil {
		t.Fatal(err)
	}
	whole := (len(prompt) + 159) / 160
	for _, tc := range []struct {
		name, codec string
		pt          uint8
		dtmf        bool
	}{{"pcmu", "PCMU", 0, false}, {"pcma", "PCMA", 8, false}, {"dtmf_replay", "PCMU", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := listenRTP(t)
			uas := peers.StartUAS(t, "voice_answer.xml", 1, "-set", "rtpport", sink.port(), "-set", "pt", strconv.Itoa(int(tc.pt)), "-set", "codec", tc.codec)
			ua := listenUA(t)
			if tc.dtmf {
				go func() {
					// Once the prompt flows, 1 (replayed), and a second later 1 again (past Repeat: ignored).
					for i := 0; ; i++ {
						if pkts, _, from := sink.packets(); len(pkts) >= 50 {
							sink.sendDTMF(t, from, 1, 8000)
							time.Sleep(time.Second)
							sink.sendDTMF(t, from, 1, 16000)
							return
						}
						if i == 500 {
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			var seen []call.State
			res := ua.Dial(context.Background(), voiceRequest(uas.Addr, prompt), func(s call.State, _ time.Time) { seen = append(seen, s) })
			if res.State != call.StateAnswered || res.SIPCode != 200 || !res.Played || res.Codec != tc.codec || res.AnsweredAt.IsZero() || !res.Rang {
				t.Fatalf("result %s played=%t codec=%q answered_at=%s, want answered 200, played, %s\n%s", res, res.Played, res.Codec, res.AnsweredAt, tc.codec, uas.Messages())
			}
			if got := strings.Join(states(seen), ","); got != "dialing,ringing" {
				t.Errorf("progress %s", got)
			}
			if exit := uas.Wait(t, 10*time.Second); exit != 0 {
				t.Fatalf("sipp exit %d: no BYE?\n%s", exit, uas.Messages())
			}
			if len(uas.Received("BYE ")) != 1 {
				t.Errorf("the callee got %d BYEs", len(uas.Received("BYE ")))
			}
			if inv := uas.Received("INVITE ")[0]; !strings.Contains(inv, "telephone-event/8000") || !strings.Contains(inv, "PCMA/8000") {
				t.Errorf("offer lacks telephone-event or PCMA:\n%s", inv)
			}
			time.Sleep(50 * time.Millisecond) // the last packets in flight on loopback
			pkts, at, _ := sink.packets()
			audio := checkStream(t, pkts, at, tc.pt)
			switch {
			case !tc.dtmf && len(pkts) != whole:
				t.Errorf("%d packets, want the prompt's %d", len(pkts), whole)
			case tc.dtmf && (len(pkts) < whole+40 || len(pkts) > whole+85):
				t.Errorf("%d packets, want the prompt's %d once and its first second or so again (the second 1 ignored)", len(pkts), whole)
			}
			if got, err := voice.Builtin().Decode(audio); got != code {
				t.Errorf("decoded %q (%v), want %s", got, err, code)
			}
		})
	}
}

// Busy, and ringing beyond AnswerTimeout (CANCEL: no_answer), fail with their reasons; no RTP is sent.
func TestVoiceCallNotAnswered(t *testing.T) {
	prompt, _ := voice.Builtin().Prompt("en", "1234")
	for _, tc := range []struct {
		scenario string
		code     int
		reason   call.Reason
	}{{"busy.xml", 486, call.ReasonBusy}, {"ring_cancel.xml", 487, call.ReasonNoAnswer}} {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			uas := peers.StartUAS(t, tc.scenario, 1)
			ua := listenUA(t)
			req := voiceRequest(uas.Addr, prompt)
			req.AnswerTimeout = 500 * time.Millisecond
			start := time.Now()
			res := ua.Dial(context.Background(), req, nil)
			if res.State != call.StateFailed || res.SIPCode != tc.code || res.Reason != tc.reason || res.Played || !res.AnsweredAt.IsZero() {
				t.Fatalf("result %s played=%t, want failed %d %s", res, res.Played, tc.code, tc.reason)
			}
			if took := time.Since(start); tc.reason == call.ReasonNoAnswer && (took < 500*time.Millisecond || took > 3*time.Second) {
				t.Errorf("no answer took %s, want the answer timeout (500ms) and the CANCEL", took)
			}
			if exit := uas.Wait(t, 10*time.Second); exit != 0 {
				t.Fatalf("sipp exit %d\n%s", exit, uas.Messages())
			}
		})
	}
}

// Shutdown while the prompt plays: BYE at once, failed interrupted.
func TestVoiceCallInterrupted(t *testing.T) {
	prompt, _ := voice.Builtin().Prompt("en", "1234")
	sink := listenRTP(t)
	uas := peers.StartUAS(t, "voice_answer.xml", 1, "-set", "rtpport", sink.port(), "-set", "pt", "0", "-set", "codec", "PCMU")
	ua := listenUA(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for i := 0; i < 500; i++ {
			if pkts, _, _ := sink.packets(); len(pkts) >= 25 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	res := ua.Dial(ctx, voiceRequest(uas.Addr, prompt), nil)
	if res.State != call.StateFailed || res.Reason != call.ReasonInterrupted || res.Played || res.AnsweredAt.IsZero() {
		t.Fatalf("result %s played=%t, want failed interrupted after the answer", res, res.Played)
	}
	if exit := uas.Wait(t, 10*time.Second); exit != 0 {
		t.Fatalf("sipp exit %d: no BYE?\n%s", exit, uas.Messages())
	}
	if pkts, _, _ := sink.packets(); len(pkts) > 60 {
		t.Errorf("%d packets sent after the cancel", len(pkts))
	}
}

// The demo phone in answer mode hears a voice call's prompt and prints the code; an answered flash call
// prints no code.
func TestPhoneHearsCode(t *testing.T) {
	var out fakes.Buffer
	phone, err := sip.ListenPhone("127.0.0.1:0", sip.PhoneAnswer, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ua := listenUA(t)
	prompt, _ := voice.Builtin().Prompt("fr", "7305")
	req := voiceRequest(phone.Addr(), prompt)
	if res := ua.Dial(context.Background(), req, nil); res.State != call.StateAnswered || !res.Played || res.Codec != "PCMU" {
		t.Fatalf("result %s played=%t codec=%q", res, res.Played, res.Codec)
	}
	want := "answered call from +442079461234 to +447700900123\nheard code 7305 from +442079461234\n"
	if !testwait.Until(5*time.Second, func() bool { return out.String() == want }) {
		t.Fatalf("phone printed %q, want %q", out.String(), want)
	}
	// With an operator's prompts (here the German ones as de-CH, the French code's clips unknown to it),
	// it hears codes in those.
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "de-CH"), os.DirFS("../voice/prompts/de")); err != nil {
		t.Fatal(err)
	}
	lib, err := voice.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	phone.SetVoice(lib)
	own, _ := lib.Prompt("de", "9182")
	if res := ua.Dial(context.Background(), voiceRequest(phone.Addr(), own), nil); res.State != call.StateAnswered {
		t.Fatalf("result %s", res)
	}
	want += "answered call from +442079461234 to +447700900123\nheard code 9182 from +442079461234\n"
	if !testwait.Until(5*time.Second, func() bool { return out.String() == want }) {
		t.Fatalf("phone printed %q, want %q", out.String(), want)
	}
	if res := ua.Dial(context.Background(), req, nil); res.State != call.StateAnswered {
		t.Fatalf("result %s", res)
	}
	want += "answered call from +442079461234 to +447700900123\n" // the French prompt: no code it knows
	if !testwait.Until(5*time.Second, func() bool { return out.String() == want }) {
		t.Fatalf("phone printed %q, want %q", out.String(), want)
	}
	// A flash call: it CANCELs at the first 180, which may reach the phone before or after its 200
	// (answered or missed, both outcomes of SPEC section 2); either way no code is heard.
	req.Kind = call.KindFlash
	if res := ua.Dial(context.Background(), req, nil); res.State != call.StateAnswered && res.State != call.StateMissed {
		t.Fatalf("flash call: %s", res)
	}
	time.Sleep(500 * time.Millisecond) // a code line would come at the BYE
	if rest := strings.TrimPrefix(out.String(), want); strings.Contains(rest, "heard code") || strings.Count(rest, "\n") > 1 {
		t.Fatalf("after the flash call the phone printed %q, want at most its answered or missed line", rest)
	}
}

// BenchmarkVoiceCall measures whole voice calls (INVITE, 180, 200, ACK, a 6-digit English prompt of about
// 12 s as RTP, BYE) from the UA to a SIPp callee (without tracing) whose SDP sends the media to one socket
// the benchmark drains, b.N of them with FLASHOTP_BENCH_VOICE_INFLIGHT (default 256) in flight at once. The
// prompt's length bounds calls/s at in-flight / 12 s; late_packets counts the RTP packets that left more
// than 20 ms behind their time, which is what says the trunk's media still keeps up.
//
//	FLASHOTP_BENCH_VOICE_INFLIGHT=512 go test -run '^$' -bench BenchmarkVoiceCall -benchtime 1024x ./sip/
func BenchmarkVoiceCall(b *testing.B) {
	peers.Require(b, "sipp", "sip-tester")
	inflight := 256
	if v, err := strconv.Atoi(os.Getenv("FLASHOTP_BENCH_VOICE_INFLIGHT")); err == nil && v > 0 {
		inflight = v
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer media.Close()
	_ = media.(*net.UDPConn).SetReadBuffer(8 << 20)
	var pkts, late atomic.Uint64
	go func() {
		// Per SSRC, where its stream started: a packet that comes more than 20 ms after its timestamp's time
		// is late.
		type stream struct {
			t0 time.Time
			ts uint32
		}
		streams := map[uint32]stream{}
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, _, err := media.ReadFrom(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			now := time.Now()
			pkts.Add(1)
			s, ok := streams[p.SSRC]
			if !ok {
				s = stream{now, p.Timestamp}
				streams[p.SSRC] = s
			}
			if now.Sub(s.t0)-time.Duration(p.Timestamp-s.ts)*time.Second/8000 > 20*time.Millisecond {
				late.Add(1)
			}
		}
	}()
	port := strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port)
	uas, err := peers.ListenSIPp(b.TempDir(), "udp", "-sf", peers.Scenario(b, "voice_answer.xml"), "-m", "100000000",
		"-set", "rtpport", port, "-set", "pt", "0", "-set", "codec", "PCMU")
	if err != nil {
		b.Fatal(err)
	}
	defer uas.Stop()
	ua, err := sip.Listen(sip.Config{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:0"}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	prompt, _ := voice.Builtin().Prompt("en", "482913")
	req := voiceRequest(uas.Addr, prompt)
	req.AnswerTimeout = 30 * time.Second
	b.SetParallelism((inflight + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := ua.Dial(context.Background(), req, nil); res.State != call.StateAnswered || !res.Played {
				b.Errorf("call %s played=%t", res, res.Played)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(pkts.Load())/b.Elapsed().Seconds(), "rtp_pkts/s")
	b.ReportMetric(float64(late.Load()), "late_packets")
}

// The callee hangs up in the middle of the prompt: the UA answers its BYE 200, stops sending and sends no
// BYE of its own: answered, not played.
func TestVoiceCallCalleeHangsUp(t *testing.T) {
	prompt, _ := voice.Builtin().Prompt("en", "1234")
	sink := listenRTP(t)
	uas := peers.StartUAS(t, "voice_hangup.xml", 1, "-set", "rtpport", sink.port())
	ua := listenUA(t)
	start := time.Now()
	res := ua.Dial(context.Background(), voiceRequest(uas.Addr, prompt), nil)
	if res.State != call.StateAnswered || res.Played || res.AnsweredAt.IsZero() {
		t.Fatalf("result %s played=%t, want answered, not played\n%s", res, res.Played, uas.Messages())
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the call went on %s after the callee's BYE at 1.5 s", took)
	}
	if exit := uas.Wait(t, 10*time.Second); exit != 0 {
		t.Fatalf("sipp exit %d: BYE not answered 200?\n%s", exit, uas.Messages())
	}
	if n := len(uas.Received("BYE ")); n != 0 {
		t.Errorf("the callee got %d BYEs after its own", n)
	}
	time.Sleep(100 * time.Millisecond)
	if pkts, _, _ := sink.packets(); len(pkts) < 50 || len(pkts) > 130 {
		t.Errorf("%d packets, want about 1.5 s of them (75)", len(pkts))
	}
}
