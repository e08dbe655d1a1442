package otp

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// activity counts what the per-call log lines (at debug) would have said, for one summary line at info
// every summaryEvery: at thousands of sends a second a line per send and per outcome cost more than the
// send's own bookkeeping, and no operator reads them; the summary says how the engine is doing, and
// log.level debug brings every line back.
type activity struct {
	sends, resends, steps, verifies, approved atomic.Int64
	missed, answered, failed, sent            atomic.Int64 // outcomes of calls and messages
}

// summaryEvery is how often the activity summary is logged (only when something happened).
const summaryEvery = 10 * time.Second

func (a *activity) outcome(state string) {
	switch state {
	case "missed":
		a.missed.Add(1)
	case "answered":
		a.answered.Add(1)
	case "sent":
		a.sent.Add(1)
	default:
		a.failed.Add(1)
	}
}

// log logs what happened since the last call, if anything, and starts counting again.
func (a *activity) log(log *slog.Logger, over time.Duration) {
	n := [...]int64{a.sends.Swap(0), a.resends.Swap(0), a.steps.Swap(0), a.verifies.Swap(0), a.approved.Swap(0),
		a.missed.Swap(0), a.answered.Swap(0), a.failed.Swap(0), a.sent.Swap(0)}
	if n == [len(n)]int64{} {
		return
	}
	log.Info("activity", "over", over, "sends", n[0], "resends", n[1], "steps_started", n[2], "verifies", n[3], "approved", n[4],
		"calls_missed", n[5], "calls_answered", n[6], "failed", n[7], "messages_sent", n[8])
}
