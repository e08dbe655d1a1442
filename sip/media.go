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
// as RTP, counted and dropped; nothing is ever sent from it.
type MediaSink struct {
	conn    net.PacketConn
	watched sync.Map // source host:port → *atomic.Uint64, for the calls that expect media from there
	wg      sync.WaitGroup
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
			if c, ok := m.watched.Load(from.String()); ok {
				c.(*atomic.Uint64).Add(1)
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
