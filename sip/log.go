package sip

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// sipgoLogRate and sipgoLogBurst bound the lines sipgo may write at info and above: it logs every
	// unparsable datagram at ERROR with the whole datagram, and every request it has no handler for at WARN,
	// so without a bound anyone reaching the SIP port writes to the engine's log faster than they send.
	sipgoLogRate  = 10
	sipgoLogBurst = 10
	// sipgoAttrMax is how many bytes of each of a sipgo line's values are kept; control bytes become '.',
	// so that quoting does not grow them back.
	sipgoAttrMax = 64
	// malformedMsg is the message sipgo v1.7 logs for each message it could not parse (UDP and TCP).
	malformedMsg = "failed to parse"
)

// BoundedLogger returns the logger for sipgo's own lines: written through base's handler, at most 10 a
// second at info and above (the lines left out are counted and the next line written says how many, as
// suppressed=N), each value cut to 64 bytes. malformed, if not nil, is called for each SIP message sipgo
// could not parse, whether its line is written or not.
func BoundedLogger(base *slog.Logger, malformed func()) *slog.Logger {
	if malformed == nil {
		malformed = func() {}
	}
	return slog.New(&boundedHandler{next: base.Handler(), st: &boundedState{
		limit: rate.NewLimiter(sipgoLogRate, sipgoLogBurst), malformed: malformed,
	}})
}

type boundedState struct {
	limit      *rate.Limiter
	suppressed atomic.Int64
	malformed  func()
}

// boundedHandler is BoundedLogger's handler; loggers derived with With share its state.
type boundedHandler struct {
	next slog.Handler
	st   *boundedState
}

// Enabled lets an error through whatever the level, so that every malformed message is counted.
func (h *boundedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *boundedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == malformedMsg {
		h.st.malformed()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	// Debug is an operator's choice to see everything; it is only cut short.
	if r.Level >= slog.LevelInfo && !h.st.limit.Allow() {
		h.st.suppressed.Add(1)
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(cutAttr(a))
		return true
	})
	if r.Level >= slog.LevelInfo {
		if n := h.st.suppressed.Swap(0); n > 0 {
			out.AddAttrs(slog.Int64("suppressed", n))
		}
	}
	return h.next.Handle(ctx, out)
}

func (h *boundedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	cut := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cut[i] = cutAttr(a)
	}
	return &boundedHandler{next: h.next.WithAttrs(cut), st: h.st}
}

func (h *boundedHandler) WithGroup(name string) slog.Handler {
	return &boundedHandler{next: h.next.WithGroup(name), st: h.st}
}

// cutAttr keeps sipgoAttrMax bytes of a's value, printable.
func cutAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		cut := make([]any, len(attrs))
		for i, g := range attrs {
			cut[i] = cutAttr(g)
		}
		return slog.Group(a.Key, cut...)
	case slog.KindString, slog.KindAny:
		// KindAny: errors (whose text may quote the input) and whatever sipgo passes.
		s := v.String()
		if v.Kind() == slog.KindAny {
			if e, ok := v.Any().(error); ok {
				s = e.Error()
			} else if _, ok := v.Any().(time.Duration); ok {
				return a
			}
		}
		return slog.String(a.Key, printable(s, sipgoAttrMax))
	}
	return a
}

// printable returns at most n bytes of s, with every byte outside printable ASCII as '.'.
func printable(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '.'
		}
	}
	if cut {
		return string(b) + "..."
	}
	return string(b)
}
