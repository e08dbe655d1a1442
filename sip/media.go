package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// MediaSink is the one UDP socket the SDP offers of all calls name. Early media that lands there is parsed
// as RTP, counted and dropped; a voice call sends its prompt from it, and hears the callee's RFC 4733
// DTMF events there.
type MediaSink struct {
	conn    net.PacketConn
	watched sync.Map // source host:port → *atomic.Uint64, for the calls that expect media from there
	events  sync.Map // source host:port → *eventWatch, for the voice calls that listen for DTMF
	wg      sync.WaitGroup
}

// eventWatch passes on the RFC 4733 events of one source: each event once, at its first packet with the end
// bit (the sender repeats that packet, with the same timestamp, up to three times).
type eventWatch struct {
	pt      uint8
	out     chan uint8
	lastEnd uint32 // the timestamp of the last event passed on; only the reader touches it
	ended   bool
}

// WatchEvents passes on, until stop is called, the RFC 4733 events (0-9 for the digits, 10 *, 11 #) that
// come from addr with payload type pt. Events that come faster than they are read are dropped.
func (m *MediaSink) WatchEvents(addr string, pt uint8) (events <-chan uint8, stop func()) {
	w := &eventWatch{pt: pt, out: make(chan uint8, 8)}
	m.events.Store(addr, w)
	return w.out, func() { m.events.CompareAndDelete(addr, w) }
}

// send writes one packet from the media socket to addr.
func (m *MediaSink) send(b []byte, addr net.Addr) error {
	_, err := m.conn.WriteTo(b, addr)
	return err
}

// Watch counts, until stop is called, the RTP packets that come from addr (host:port, as the callee's SDP
// gave it).
func (m *MediaSink) Watch(addr string) (count *atomic.Uint64, stop func()) {
	count = new(atomic.Uint64)
	m.watched.Store(addr, count)
	return count, func() { m.watched.CompareAndDelete(addr, count) }
}

// ListenMedia binds the media socket at addr and starts draining it.
func ListenMedia(addr string, log *slog.Logger) (*MediaSink, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("media listen %s: %w", addr, err)
	}
	m := &MediaSink{conn: conn}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		buf := make([]byte, 2048)
		var pkt rtp.Packet
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					log.Warn("media socket read", "err", err)
				}
				return
			}
			// pion/rtp parses any 12 bytes as a header, whatever its version: garbage is told apart by it.
			if pkt.Unmarshal(buf[:n]) != nil || pkt.Version != 2 {
				continue // not RTP: dropped uncounted
			}
			src := from.String()
			if c, ok := m.watched.Load(src); ok {
				c.(*atomic.Uint64).Add(1)
			}
			if w, ok := m.events.Load(src); ok {
				w.(*eventWatch).take(&pkt)
			}
		}
	}()
	return m, nil
}

// Port returns the media socket's port, as the SDP offer names it.
func (m *MediaSink) Port() int { return m.conn.LocalAddr().(*net.UDPAddr).Port }

// Close closes the socket and waits for its reader.
func (m *MediaSink) Close() error {
	err := m.conn.Close()
	m.wg.Wait()
	return err
}

// take passes on the event pkt ends, if it is one of w's (RFC 4733 2.3: event, E|R|volume, duration).
func (w *eventWatch) take(pkt *rtp.Packet) {
	if pkt.PayloadType != w.pt || len(pkt.Payload) < 4 || pkt.Payload[1]&0x80 == 0 {
		return
	}
	if w.ended && pkt.Timestamp == w.lastEnd {
		return // a repeat of the end packet
	}
	w.ended, w.lastEnd = true, pkt.Timestamp
	select {
	case w.out <- pkt.Payload[0]:
	default:
	}
}
