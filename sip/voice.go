package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// RFC 4733: the payload type a voice call's offer gives telephone-event, and the event (the key 1) that
// replays the prompt.
const (
	dtmfPT       = 101
	dtmfReplayed = 1
)

// A voice call's RTP: 20 ms of 8 kHz G.711 in each packet.
const (
	packetSamples = 160
	packetTime    = 20 * time.Millisecond
)

// G.711: the payload types (RFC 3551), their names in call.Result.Codec, and their silence.
const (
	ptPCMU      = 0
	ptPCMA      = 8
	codecPCMU   = "PCMU"
	codecPCMA   = "PCMA"
	pcmuSilence = 0xFF
	pcmaSilence = 0xD5
)

// errNoAudio is a voice call's answer whose SDP names no address or G.711 payload to send the prompt to.
var errNoAudio = errors.New("answer names no audio address with PCMU or PCMA")

// play plays the prompt of an answered voice call to the media address its answer named, replays it for
// each DTMF 1 (up to Repeat times), and ends the call with BYE, waiting (a bounded while) for its answer.
// The callee's BYE ends it at once (not played); so does ctx (interrupted: BYE at once).
func (d *dial) play(ctx context.Context) {
	bye := d.newBye(d.answer)
	addr, pt, events, err := sdpAnswer(d.answer.Body())
	switch {
	case err != nil:
		d.ua.log.Warn("voice call answered without audio to play to", "call_id", d.res.CallID, "err", err)
	case len(d.call.Prompt) == 0:
		d.ua.log.Error("voice call without a prompt", "call_id", d.res.CallID)
	default:
		d.res.Codec = codecPCMU
		if pt == ptPCMA {
			d.res.Codec = codecPCMA
		}
		dtmf, stop := d.ua.media.WatchEvents(addr.String(), events)
		var hungUp bool
		d.res.Played, d.facts.Interrupted, hungUp = d.stream(ctx, addr, pt, dtmf)
		stop()
		if hungUp {
			return // the callee's BYE ended the dialog; onBye answered it
		}
	}
	d.bye(bye)
}

// stream sends the prompt as RTP to addr, paced against its start (a late tick sends every packet then
// due, so the stream never drifts), and reports how it ended: played to its end, interrupted by ctx, or
// hung up by the callee.
func (d *dial) stream(ctx context.Context, addr *net.UDPAddr, pt uint8, dtmf <-chan uint8) (played, interrupted, hungUp bool) {
	prompt, silence := d.call.Prompt, byte(pcmuSilence)
	if pt == ptPCMA {
		prompt, silence = g711.Ulaw2Alaw(prompt), pcmaSilence
	}
	if rest := len(prompt) % packetSamples; rest != 0 {
		// Every packet 20 ms: the last one filled up with silence.
		padded := make([]byte, len(prompt)+packetSamples-rest)
		copy(padded, prompt)
		for i := len(prompt); i < len(padded); i++ {
			padded[i] = silence
		}
		prompt = padded
	}
	// RFC 3550 5.1: a random SSRC, and random first sequence number and timestamp.
	var ids [10]byte
	_, _ = rand.Read(ids[:]) // crypto/rand.Read never fails (Go 1.24)
	pkt := rtp.Packet{Header: rtp.Header{
		Version: 2, Marker: true, PayloadType: pt,
		SSRC:           binary.BigEndian.Uint32(ids[0:]),
		Timestamp:      binary.BigEndian.Uint32(ids[4:]),
		SequenceNumber: binary.BigEndian.Uint16(ids[8:]),
	}}
	buf := make([]byte, 12+packetSamples)
	pos, sent, replays := 0, 0, 0
	tick := time.NewTicker(packetTime)
	defer tick.Stop()
	start := time.Now()
	for {
		for due := int(time.Since(start)/packetTime) + 1; sent < due; sent++ {
			if pos == len(prompt) {
				return true, false, false
			}
			pkt.Payload = prompt[pos : pos+packetSamples]
			n, err := pkt.MarshalTo(buf)
			if err == nil {
				err = d.ua.media.send(buf[:n], addr)
			}
			if err != nil {
				d.ua.log.Warn("rtp not sent", "call_id", d.res.CallID, "err", err)
			}
			pkt.Marker = false
			pkt.SequenceNumber++
			pkt.Timestamp += packetSamples
			pos += packetSamples
		}
		select {
		case <-tick.C:
		case e := <-dtmf:
			if e == dtmfReplayed && d.call.Repeat > replays {
				replays++
				pos = 0 // from the start, at once; the stream goes on without a gap
			}
		case <-d.hungUp:
			return false, false, true
		case <-ctx.Done():
			return false, true, false
		}
	}
}

// sdpAnswer reads a voice call's SDP answer: the address media goes to, the G.711 payload type the callee
// chose (the first of PCMU and PCMA its m= line lists) and the payload type it gives telephone-event (the
// offer's when it names none).
func sdpAnswer(body []byte) (addr *net.UDPAddr, pt, events uint8, err error) {
	hostPort, ok := sdpMediaAddr(body)
	if !ok {
		return nil, 0, 0, errNoAudio
	}
	if addr, err = net.ResolveUDPAddr("udp", hostPort); err != nil {
		return nil, 0, 0, err
	}
	found := false
	events = dtmfPT
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if f := strings.Fields(line); strings.HasPrefix(line, "m=audio ") && !found && len(f) > 3 {
			for _, p := range f[3:] {
				if p == "0" || p == "8" {
					pt, found = uint8(p[0]-'0'), true
					break
				}
			}
		}
		if rest, ok := strings.CutPrefix(line, "a=rtpmap:"); ok {
			num, enc, _ := strings.Cut(rest, " ")
			if n, err := strconv.Atoi(num); err == nil && n >= 96 && n <= 127 && strings.HasPrefix(strings.ToLower(enc), "telephone-event/8000") {
				events = uint8(n)
			}
		}
	}
	if !found {
		return nil, 0, 0, errNoAudio
	}
	return addr, pt, events, nil
}
