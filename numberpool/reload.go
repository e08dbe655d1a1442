package numberpool

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ReloadPools reads the pools again from the store, as another engine sharing it left them. Entries gone
// or renumbered take their rejections and use counts with them, as in a change made here.
//
// It reads under the registry's lock, as every pool change here writes under it: a change made here is
// never overwritten by an older read.
func (r *Registry) ReloadPools(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]*livePool{}
	err := r.store.LoadPools(ctx, func(name string, v []byte) error {
		var p Pool
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("stored pool %s: %w", name, err)
		}
		lp, err := compileWith(p, validStored)
		if err != nil {
			return fmt.Errorf("stored pool %s: %w", name, err)
		}
		next[name] = lp
		return nil
	})
	if err != nil {
		return err
	}
	for name, lp := range r.pools {
		for _, old := range lp.Entries {
			if n := next[name]; n != nil && slices.ContainsFunc(n.Entries, func(e Entry) bool {
				return e.ID == old.ID && slices.Equal(e.Numbers, old.Numbers)
			}) {
				continue
			}
			delete(r.rejections, name+"/"+old.ID)
			delete(r.entryUses, name+"/"+old.ID)
		}
	}
	r.pools = next
	clear(r.spaceCache)
	return nil
}

// ReloadQuarantines reads the quarantines again from the store, as other engines sharing it left them. A
// CLI quarantined by another engine's rejection counts here too toward its entry's QuarantineAfter, so that
// the entry is quarantined after that many rejected CLIs across the engines; an entry released elsewhere
// forgets its rejections, as a release here does. Quarantines this engine made and has not stored yet stay.
func (r *Registry) ReloadQuarantines(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	next := map[string]Quarantine{}
	err := r.store.LoadQuarantines(ctx, func(key string, v []byte) error {
		var q Quarantine
		if json.Unmarshal(v, &q) == nil && q.Until.After(now) {
			next[key] = q
		}
		return nil
	})
	if err != nil {
		return err
	}
	for key, q := range r.unstored {
		if !q.Until.After(now) {
			delete(r.unstored, key) // over: nothing left to keep
			continue
		}
		next[key] = q
	}
	for key, q := range r.quarantine {
		entry, isEntry := strings.CutPrefix(key, "entry:")
		if _, kept := next[key]; isEntry && !kept && q.Until.After(now) {
			delete(r.rejections, entry) // released
		}
	}
	for key, q := range next {
		old, known := r.quarantine[key]
		if q.CLI == "" || q.Manual || known && old.Since.Equal(q.Since) {
			continue
		}
		entry := q.Pool + "/" + q.Entry
		if r.rejections[entry] == nil {
			r.rejections[entry] = map[string]time.Time{}
		}
		r.rejections[entry][key] = q.Since
	}
	r.quarantine = next
	return nil
}
