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

// sharedUsesEvery is how often, with Config.Shared, an engine stores its use counts and reads the others'.
const sharedUsesEvery = time.Second

// flusher writes the histories Pick left pending, under ctx, until Close; with Config.Shared, it shares
// the use counts every sharedUsesEvery too.
func (r *Registry) flusher(ctx context.Context) {
	defer close(r.flushed)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var lastShared time.Time
	for {
		select {
		case <-r.stop:
			r.flush(ctx)
			if r.cfg.Shared {
				r.shareUses(ctx)
			}
			return
		case now := <-tick.C:
			r.flush(ctx)
			if r.cfg.Shared && now.Sub(lastShared) >= sharedUsesEvery {
				r.shareUses(ctx)
				lastShared = now
			}
		}
	}
}

// shareUses stores this engine's use counts under its node and reads the other engines', for the pools'
// reports.
func (r *Registry) shareUses(ctx context.Context) {
	r.mu.RLock()
	data, err := json.Marshal(r.entryUses)
	r.mu.RUnlock()
	if err == nil {
		err = r.store.PutUses(ctx, r.cfg.Node, data)
	}
	others := map[string]uint64{}
	if err == nil {
		err = r.store.LoadUses(ctx, func(node string, v []byte) error {
			var uses map[string]uint64
			if node == r.cfg.Node || json.Unmarshal(v, &uses) != nil {
				return nil // a record of an older or broken engine counts nothing
			}
			for k, n := range uses {
				others[k] += n
			}
			return nil
		})
	}
	if err != nil {
		r.cfg.Log.Error("share use counts", "err", err)
		return
	}
	r.mu.Lock()
	r.otherUses = others
	r.mu.Unlock()
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
