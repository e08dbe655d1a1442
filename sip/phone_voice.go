package sip

import (
	"net"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"flashotp/voice"
)

// phoneMaxAudio bounds what the phone keeps of one call's audio: more than any prompt with its replays.
const phoneMaxAudio = 3 * time.Minute

// SetVoice makes the phone hear codes in the prompts of lib (the engine's, when voice.prompts_dir names an
// operator's recordings) instead of the built-in ones.
func (p *Phone) SetVoice(lib *voice.Library) { p.lib.Store(lib) }

// expectBye registers the answered call callID, whose BYE onBye then signals on the channel it returns.
func (p *Phone) expectBye(callID string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	p.byes.Store(callID, ch)
	return ch
}

// onBye answers a BYE 200 and ends the answered call it names.
func (p *Phone) onBye(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	if id := req.CallID(); id != nil {
		if ch, ok := p.byes.LoadAndDelete(id.Value()); ok {
			ch.(chan struct{}) <- struct{}{}
		}
	}
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
}

// hear keeps the RTP that reaches media until the call's BYE (or the phone closes, or phoneMaxAudio
// passes), each packet's payload placed by its timestamp, and prints "heard code <digits> from <CLI>" when
// the audio is a prompt of its voice library (SetVoice; the built-in one by default). An answered flash
// call hears nothing and prints nothing more.
func (p *Phone) hear(media net.PacketConn, bye <-chan struct{}, from string) {
	var (
		audio   []byte
		first   uint32
		started bool
		pkt     rtp.Packet
		buf     = make([]byte, 1500)
	)
	deadline := time.Now().Add(phoneMaxAudio)
listen:
	for time.Now().Before(deadline) {
		select {
		case <-bye:
			break listen
		case <-p.ctx.Done():
			return
		default:
		}
		_ = media.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := media.ReadFrom(buf)
		if err != nil || pkt.Unmarshal(buf[:n]) != nil || pkt.Version != 2 || (pkt.PayloadType != 0 && pkt.PayloadType != 8) {
			continue
		}
		if !started {
			first, started = pkt.Timestamp, true
		}
		at := int(pkt.Timestamp - first) // wraps as the timestamps do
		if at < 0 || at+len(pkt.Payload) > int(phoneMaxAudio/time.Second)*voice.SampleRate {
			continue
		}
		payload := pkt.Payload
		if pkt.PayloadType == 8 {
			payload = g711.Alaw2Ulaw(payload)
		}
		for len(audio) < at+len(payload) {
			audio = append(audio, voice.Silence) // a lost packet's time, until it comes late
		}
		copy(audio[at:], payload)
	}
	if !started {
		return
	}
	lib := p.lib.Load()
	if lib == nil {
		lib = voice.Builtin()
	}
	if code, err := lib.Decode(audio); err == nil {
		p.printf("heard code %s from %s", code, from)
	} else {
		p.log.Info("phone: the call's audio held no code", "from", from, "err", err)
	}
}
