package numberpool

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// flushEvery is how often recent-call histories are written to the store.
const flushEvery = 50 * time.Millisecond

// flusher writes the histories Pick left pending, under ctx, until Close.
func (r *Registry) flusher(ctx context.Context) {
	defer close(r.flushed)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			r.flush(ctx)
			return
		case <-tick.C:
			r.flush(ctx)
		}
	}
}

func (r *Registry) flush(ctx context.Context) {
	r.pendingMu.Lock()
	batch := r.pending
	r.pending = map[string][]byte{}
	r.pendingMu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.store.PutRecentCalls(ctx, batch); err != nil {
		r.cfg.Log.Error("store recent calls", "recipients", len(batch), "err", err)
	}
}

// recentCalls is what a recipient got lately, as MACs: never a CLI or a code in clear.
type recentCalls struct {
	Items []recentItem `json:"items"`
}

type recentItem struct {
	Until time.Time `json:"until"` // end of the cooldown of the pool the CLI came from
	CLI   string    `json:"cli"`
	Code  string    `json:"code"`
}

// prune drops the items whose cooldown is over.
func (h *recentCalls) prune(now time.Time) {
	h.Items = slices.DeleteFunc(h.Items, func(it recentItem) bool { return !it.Until.After(now) })
}

func (h *recentCalls) has(mac string) bool {
	for _, it := range h.Items {
		if it.CLI == mac || it.Code == mac {
			return true
		}
	}
	return false
}

// maxRecent bounds a recipient's history: a recipient that got this many calls within the cooldown gets
// no more until the oldest ends (fail closed: the cooldown is never silently shortened).
const maxRecent = 256

func (h *recentCalls) add(until time.Time, cli, code string) {
	h.Items = append(h.Items, recentItem{Until: until, CLI: cli, Code: code})
}

func (r *Registry) recentFor(ctx context.Context, recipient string) (*recentCalls, error) {
	if h, ok := r.recent[recipient]; ok {
		return h, nil
	}
	h := &recentCalls{}
	data, err := r.store.RecentCalls(ctx, recipient)
	switch {
	case err != nil:
		return nil, fmt.Errorf("recent calls: %w", err) // never a send without its cooldown
	case data != nil:
		if err := json.Unmarshal(data, h); err != nil {
			return nil, fmt.Errorf("recent calls: %w", err)
		}
	}
	r.recent[recipient] = h
	return h, nil
}
