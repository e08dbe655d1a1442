package numberpool

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Quarantine is a CLI or an entry left out of picks until Until.
type Quarantine struct {
	Until      time.Time `json:"until"`
	Since      time.Time `json:"since"`
	Rejections int       `json:"rejections"` // CLI: its rejections; entry: its distinct CLIs rejected
	Reason     string    `json:"reason"`
	Manual     bool      `json:"manual"`
	Pool       string    `json:"pool"`
	Entry      string    `json:"entry"`
	CLI        string    `json:"cli,omitempty"` // a quarantined CLI with its code digits hidden
}

func (r *Registry) quarantined(key string) bool {
	q, ok := r.quarantine[key]
	return ok && q.Until.After(r.cfg.Now())
}

// callerRe: a rejection whose text is about the caller ID.
var callerRe = regexp.MustCompile(`(?i)caller|calling|\bcli\b|\bani\b|identity|presentation|anonymous|screen`)

// Reject records a trunk's final answer to a call from cli. A code of the pool's QuarantineCodes whose
// reason is about the caller ID, or a bare 403 before the phone rang (the usual refusal of a caller ID),
// quarantines the CLI for QuarantineFor; QuarantineAfter distinct CLIs of one entry quarantined within that
// time quarantine the whole entry. Anything else (a 484 for the dialled number, a 488 for codecs) is not
// the CLI's fault and changes nothing.
func (r *Registry) Reject(ctx context.Context, cli string, sipCode int, reason string, rang bool) {
	if !callerRe.MatchString(reason) && (sipCode != 403 || rang) {
		return
	}
	writes := r.reject(cli, sipCode, reason)
	// The quarantines are in force already: the store must keep them whoever waits for this call.
	ctx = context.WithoutCancel(ctx)
	for key, q := range writes { // after the lock: a burst of rejections must not stall the sends
		data, _ := json.Marshal(q)
		if err := r.store.PutQuarantine(ctx, key, data); err != nil {
			r.cfg.Log.Error("store quarantine", "err", err)
			continue // kept in unstored: in force here, and over any older stored state
		}
		r.mu.Lock()
		if r.unstored[key].Since.Equal(q.Since) {
			delete(r.unstored, key)
		}
		r.mu.Unlock()
	}
}

func (r *Registry) reject(cli string, sipCode int, reason string) map[string]Quarantine {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	digits := strings.TrimPrefix(cli, "+")
	writes := map[string]Quarantine{}
	for _, lp := range r.pools {
		if !slices.Contains(lp.QuarantineCodes, sipCode) {
			continue
		}
		i := slices.IndexFunc(lp.sets, func(s set) bool { return s.covers(digits) })
		if i < 0 {
			continue
		}
		e := lp.Entries[i]
		why := fmt.Sprintf("%d %s", sipCode, reason)
		until := now.Add(time.Duration(lp.QuarantineFor))
		key := r.cliKey("+" + digits)
		q := Quarantine{Until: until, Since: now, Rejections: 1, Reason: why, Pool: lp.Name, Entry: e.ID, CLI: r.mask("+" + digits)}
		if old, ok := r.quarantine[key]; ok && old.Until.After(now) {
			q.Rejections = old.Rejections + 1
		}
		r.quarantine[key], writes[key], r.unstored[key] = q, q, q
		entryKey := lp.Name + "/" + e.ID
		recent := r.rejections[entryKey]
		if recent == nil {
			recent = map[string]time.Time{}
			r.rejections[entryKey] = recent
		}
		maps.DeleteFunc(recent, func(_ string, at time.Time) bool { return at.Before(now.Add(-time.Duration(lp.QuarantineFor))) })
		recent[key] = now
		if n := len(recent); n >= lp.QuarantineAfter && !r.quarantined("entry:"+entryKey) {
			eq := Quarantine{Until: until, Since: now, Rejections: n, Reason: why, Pool: lp.Name, Entry: e.ID}
			r.quarantine["entry:"+entryKey], writes["entry:"+entryKey], r.unstored["entry:"+entryKey] = eq, eq, eq
			r.cfg.Log.Warn("number pool entry quarantined", "pool", lp.Name, "entry", e.ID, "rejected_clis", n)
		}
		r.cfg.Log.Warn("caller ID quarantined", "pool", lp.Name, "entry", e.ID, "cli", q.CLI, "sip_code", sipCode)
	}
	return writes
}

// cliKey is the quarantine key of a CLI: its MAC, since a CLI is a code.
func (r *Registry) cliKey(cli string) string { return "cli:" + r.mac("quarantine", "", cli) }

// mask writes a CLI for people: its code digits hidden.
func (r *Registry) mask(cli string) string {
	n := min(r.cfg.CodeLength, len(cli)-1)
	return cli[:len(cli)-n] + strings.Repeat("*", n)
}

func (r *Registry) setQuarantine(ctx context.Context, key string, q Quarantine) {
	r.quarantine[key] = q
	data, _ := json.Marshal(q)
	if err := r.store.PutQuarantine(ctx, key, data); err != nil {
		r.cfg.Log.Error("store quarantine", "err", err)
	}
}
