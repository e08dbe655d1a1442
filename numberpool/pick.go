package numberpool

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"flashotp/fault"
)

// candidate is one entry a pick may draw from.
type candidate struct {
	pool  *livePool
	entry int
}

func (c candidate) e() Entry    { return c.pool.Entries[c.entry] }
func (c candidate) s() set      { return c.pool.sets[c.entry] }
func (c candidate) key() string { return c.pool.Name + "/" + c.e().ID }

// candidates returns the entries that may serve a recipient of country for app (in pool only, if given):
// those whose countries include it if there are any, else those with no country list. With live false,
// disabled and quarantined entries are kept (for code space accounting).
func (r *Registry) candidates(pools map[string]*livePool, app, pool, country string, codeLength int, live bool) ([]candidate, error) {
	names := r.cfg.Apps[app]
	if pool != "" {
		if !slices.Contains(names, pool) {
			return nil, fault.Errorf(fault.InvalidRequest, "from: %w: app %s has no pool %q", ErrNoPool, app, pool)
		}
		names = []string{pool}
	}
	var local, general []candidate
	for _, name := range names {
		lp := pools[name]
		if lp == nil {
			continue
		}
		for i, e := range lp.Entries {
			c := candidate{lp, i}
			if lp.sets[i].minLen() <= codeLength {
				continue
			}
			if live && (!e.Enabled || r.quarantined("entry:"+c.key())) {
				continue
			}
			switch {
			case slices.Contains(e.Countries, country):
				local = append(local, c)
			case len(e.Countries) == 0:
				general = append(general, c)
			}
		}
	}
	if len(local) > 0 {
		return local, nil
	}
	return general, nil
}

// PickRequest asks for a CLI for one verification.
type PickRequest struct {
	App        string
	Pool       string // optional: only this pool of the app's (the send's "from": an unknown one is fault.InvalidRequest)
	Recipient  string // E.164 with '+'
	Country    string // the recipient's ISO 3166 code
	CodeLength int
}

// Picked is a drawn CLI.
type Picked struct {
	CLI    string   // E.164 with '+'
	Prefix string   // the CLI without its code digits
	Code   string   // its last CodeLength digits
	Trunks []string // trunks the call may use; empty: any
	// Pattern is a regular expression that matches every CLI this recipient's verification may come from,
	// with the code digits always free, in the forms a call log shows (see cliPattern).
	Pattern string
	Pool    string
	Entry   string
}

// Pick draws a CLI for req: from a local entry if the recipient's country has one, uniformly over the
// candidates' numbers weighted by entry, never a quarantined CLI or entry, never a CLI or code the recipient
// got within the cooldown; of two such draws, the less used number, which spreads use across the pool.
//
// For an engine of its own, the in-memory history is the truth for the cooldown; the store gets it within
// flushEvery, from the flusher, so that no send waits for that write (a crash forgets at most that much of
// the cooldown). For engines sharing the store (Config.Shared), the stored history is (pickShared).
//
// Its errors are answers to the send as they are: an unknown pool or too small a code space is
// fault.InvalidRequest naming the send's field (from, code_length), no number for the destination
// fault.DestinationBlocked, every number held back fault.Unavailable.
func (r *Registry) Pick(ctx context.Context, req PickRequest) (Picked, error) {
	if r.cfg.Shared {
		return r.pickShared(ctx, req)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	picked, data, err := r.pick(req, func() (*recentCalls, error) { return r.recentFor(ctx, req.Recipient) })
	if err != nil {
		return Picked{}, err
	}
	// Queued under the registry's lock, so that histories reach the store in the order they were made.
	r.pendingMu.Lock()
	r.pending[req.Recipient] = data
	r.pendingMu.Unlock()
	return picked, nil
}

// maxSwaps bounds how often a shared pick starts again because another pick for the same recipient
// changed its history first.
const maxSwaps = 8

// pickShared is Pick for engines sharing the store: the stored history is the truth. It is read before
// the pick and written back only if no other pick (of this engine or another) changed it meanwhile;
// else the pick starts again from the new history. No store round trip happens under the lock.
func (r *Registry) pickShared(ctx context.Context, req PickRequest) (Picked, error) {
	for range maxSwaps {
		old, err := r.store.RecentCalls(ctx, req.Recipient)
		if err != nil {
			return Picked{}, fmt.Errorf("recent calls: %w", err) // never a send without its cooldown
		}
		hist := &recentCalls{}
		if old != nil {
			if err := json.Unmarshal(old, hist); err != nil {
				return Picked{}, fmt.Errorf("recent calls: %w", err)
			}
		}
		r.mu.Lock()
		picked, data, err := r.pick(req, func() (*recentCalls, error) { return hist, nil })
		r.mu.Unlock()
		if err != nil {
			return Picked{}, err
		}
		swapped, err := r.store.SwapRecentCalls(ctx, req.Recipient, old, data)
		if swapped && err == nil {
			return picked, nil
		}
		r.mu.Lock()
		unuse(r.uses, picked.CLI)
		unuse(r.entryUses, picked.Pool+"/"+picked.Entry)
		r.mu.Unlock()
		if err != nil {
			return Picked{}, fmt.Errorf("recent calls: %w", err)
		}
	}
	return Picked{}, fault.Errorf(fault.Unavailable, "%w: the recipient's recent calls kept changing under %d picks", ErrExhausted, maxSwaps)
}

// pick draws a CLI for req, under r.mu, against the recipient's history that history returns (asked for
// only once the request is known to be good), and returns it with the history that has it, encoded.
func (r *Registry) pick(req PickRequest, history func() (*recentCalls, error)) (Picked, []byte, error) {
	all, err := r.candidates(r.pools, req.App, req.Pool, req.Country, req.CodeLength, false)
	if err != nil {
		return Picked{}, nil, err
	}
	if len(all) == 0 {
		if any, _ := r.candidates(r.pools, req.App, req.Pool, req.Country, 0, false); len(any) > 0 {
			return Picked{}, nil, fault.Errorf(fault.InvalidRequest, "code_length: %w: app %s's numbers for %s destinations are too short for %d-digit codes", ErrCodeSpace, req.App, req.Country, req.CodeLength)
		}
		return Picked{}, nil, fault.Errorf(fault.DestinationBlocked, "%w: app %s has no caller ID for %s destinations", ErrNoNumbers, req.App, req.Country)
	}
	if sp := r.cachedSpace(all, req.CodeLength); sp.Codes < r.cfg.MinCodeSpace {
		return Picked{}, nil, fault.Errorf(fault.InvalidRequest, "code_length: %w: %d-digit codes from these numbers give only %d distinct codes, need %d", ErrCodeSpace, req.CodeLength, sp.Codes, r.cfg.MinCodeSpace)
	}
	cands, err := r.candidates(r.pools, req.App, req.Pool, req.Country, req.CodeLength, true)
	if err != nil {
		return Picked{}, nil, err
	}
	if len(cands) == 0 {
		return Picked{}, nil, fault.Errorf(fault.Unavailable, "%w: every entry for %s destinations is disabled or quarantined", ErrExhausted, req.Country)
	}
	// Entries or CLIs left out (disabled, quarantined) must not leave a space too small to draw codes
	// from: each quarantined CLI of a candidate entry may take a code away.
	out := 0
	for _, q := range r.quarantine {
		if q.CLI != "" && q.Until.After(r.cfg.Now()) && slices.ContainsFunc(cands, func(c candidate) bool { return c.pool.Name == q.Pool && c.e().ID == q.Entry }) {
			out++
		}
	}
	if sp := r.cachedSpace(cands, req.CodeLength); sp.Codes-out < r.cfg.MinCodeSpace-r.cfg.MinCodeSpace/quarantineSlack {
		return Picked{}, nil, fault.Errorf(fault.Unavailable, "%w: with entries or caller IDs disabled or quarantined, %s destinations have only %d distinct codes", ErrExhausted, req.Country, sp.Codes-out)
	}
	now := r.cfg.Now()
	weights := make([]float64, len(cands))
	total := 0.0
	for i, c := range cands {
		weights[i] = float64(c.e().Weight) * float64(c.s().size())
		total += weights[i]
	}
	hist, err := history()
	if err != nil {
		return Picked{}, nil, err
	}
	hist.prune(now)
	if len(hist.Items) >= maxRecent {
		return Picked{}, nil, fault.Errorf(fault.Unavailable, "%w: the recipient got %d calls within the cooldown", ErrExhausted, len(hist.Items))
	}
	acceptable := func(digits string) bool {
		cli := "+" + digits
		return !r.quarantined(r.cliKey(cli)) && !hist.has(r.mac("cli", req.Recipient, cli)) && !hist.has(r.mac("code", req.Recipient, digits[len(digits)-req.CodeLength:]))
	}

	// Of two acceptable draws, the one whose number is less used for its entry's weight: use spreads
	// over the pool without undoing the weights.
	var best string
	var bestC candidate
	score := func(c candidate, digits string) float64 { return float64(r.uses["+"+digits]) / float64(c.e().Weight) }
	found := 0
	for attempt := 0; attempt < 200 && found < 2; attempt++ {
		c, digits, err := drawOne(cands, weights, total)
		if err != nil {
			return Picked{}, nil, err
		}
		if !acceptable(digits) {
			continue
		}
		found++
		if best == "" || score(c, digits) < score(bestC, best) {
			best, bestC = digits, c
		}
	}
	if best == "" {
		// Random draws keep missing: few numbers are left. Drop the entries with nothing acceptable left
		// (every code of theirs had by this recipient, or every number out), then look at all numbers.
		free := slices.DeleteFunc(slices.Clone(cands), func(c candidate) bool {
			return !anyAcceptable(c.s(), req.CodeLength, acceptable, func(code string) bool {
				return hist.has(r.mac("code", req.Recipient, code))
			})
		})
		c, digits, err := drawFromFree(free, acceptable)
		if err != nil {
			return Picked{}, nil, err
		}
		best, bestC = digits, c
	}
	cli := "+" + best
	picked := Picked{CLI: cli, Prefix: cli[:len(cli)-req.CodeLength], Code: best[len(best)-req.CodeLength:], Trunks: slices.Clone(bestC.e().Trunks), Pool: bestC.pool.Name, Entry: bestC.e().ID}
	picked.Pattern = cliPattern(cands, req.CodeLength, req.Country)

	r.uses[picked.CLI]++
	r.entryUses[bestC.key()]++
	hist.add(now.Add(time.Duration(bestC.pool.Cooldown)), r.mac("cli", req.Recipient, picked.CLI), r.mac("code", req.Recipient, picked.Code))
	data, err := json.Marshal(hist)
	if err != nil {
		return Picked{}, nil, err
	}
	if r.picks++; r.picks%1024 == 0 {
		r.sweep(now)
	}
	return picked, data, nil
}

// maxUses bounds the use counts kept for spreading; past it they start again from zero.
const maxUses = 1 << 20

// sweep forgets, in memory, recipients whose cooldowns are all over (their stored history is read again
// only if they come back, and pruned then) and quarantines that have ended; and restarts the use counts
// when they grow past maxUses (they only break ties).
func (r *Registry) sweep(now time.Time) {
	for recipient, h := range r.recent {
		if h.prune(now); len(h.Items) == 0 {
			delete(r.recent, recipient)
		}
	}
	for key, q := range r.quarantine {
		if !q.Until.After(now) {
			delete(r.quarantine, key)
		}
	}
	if len(r.uses) > maxUses {
		clear(r.uses)
	}
}

// drawOne picks an entry with probability proportional to weight and a number uniformly in it. A number
// that k candidate entries cover is kept with probability 1/k, so overlaps do not favour it.
func drawOne(cands []candidate, weights []float64, total float64) (candidate, string, error) {
	for {
		x, err := randN(1 << 53)
		if err != nil {
			return candidate{}, "", err
		}
		target := float64(x) / (1 << 53) * total
		i := 0
		for ; i < len(cands)-1 && target >= weights[i]; i++ {
			target -= weights[i]
		}
		digits, err := cands[i].s().sample()
		if err != nil {
			return candidate{}, "", err
		}
		k := 0
		for _, c := range cands {
			if c.s().covers(digits) {
				k++
			}
		}
		if k > 1 {
			if n, err := randN(uint64(k)); err != nil || n != 0 {
				continue
			}
		}
		return cands[i], digits, nil
	}
}

// anyAcceptable reports whether the set may still hold an acceptable number: false only when it is small
// enough to list and none is acceptable, or when every code it can produce is one codeHad.
func anyAcceptable(s set, codeLength int, acceptable func(string) bool, codeHad func(string) bool) bool {
	if s.size() <= maxEnumerate {
		found := false
		s.each(func(d string) { found = found || acceptable(d) })
		return found
	}
	var codes []string
	all := s.markCodes(codeLength, func(n int) {
		if len(codes) <= maxEnumerate {
			codes = append(codes, fmt.Sprintf("%0*d", codeLength, n))
		}
	})
	if all || len(codes) > maxEnumerate {
		return true
	}
	return slices.ContainsFunc(codes, func(code string) bool { return !codeHad(code) })
}

// quarantineSlack: quarantined single CLIs may take up to 1/quarantineSlack of the minimum code space
// before sends stop: one rejected number must not stop a pool sized at the minimum, a hundred must.
const quarantineSlack = 10

// maxEnumerate bounds the fallback that lists every number of the candidates.
const maxEnumerate = 100_000

// drawFromFree lists the candidates' acceptable numbers (when there are at most maxEnumerate numbers in
// all) and draws one of them uniformly.
func drawFromFree(cands []candidate, acceptable func(string) bool) (candidate, string, error) {
	var total uint64
	for _, c := range cands {
		total += c.s().size()
	}
	if total > maxEnumerate {
		return candidate{}, "", fault.Errorf(fault.Unavailable, "%w: no acceptable caller ID in 200 draws", ErrExhausted)
	}
	type free struct {
		c      candidate
		digits string
	}
	var frees []free
	seen := map[string]bool{}
	for _, c := range cands {
		c.s().each(func(digits string) {
			if !seen[digits] && acceptable(digits) {
				seen[digits] = true
				frees = append(frees, free{c, digits})
			}
		})
	}
	if len(frees) == 0 {
		return candidate{}, "", fault.Errorf(fault.Unavailable, "%w: every caller ID for this recipient is quarantined or in its cooldown", ErrExhausted)
	}
	i, err := randN(uint64(len(frees)))
	if err != nil {
		return candidate{}, "", err
	}
	return frees[i].c, frees[i].digits, nil
}

// DialNumber draws a number of pool for a user in country to call (channel inbound): uniformly over the
// numbers of the pool's enabled entries that serve country, or, when none does, of those that serve any
// country. It has no cooldown: one number serves many users at once, told apart by their caller IDs.
func (r *Registry) DialNumber(pool, country string) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	lp := r.pools[pool]
	if lp == nil {
		return "", fault.Errorf(fault.Unavailable, "%w: the app's inbound_pool %q is no pool of this engine", ErrNoPool, pool)
	}
	var local, general []candidate
	for i, e := range lp.Entries {
		switch {
		case !e.Enabled:
		case slices.Contains(e.Countries, country):
			local = append(local, candidate{lp, i})
		case len(e.Countries) == 0:
			general = append(general, candidate{lp, i})
		}
	}
	cands := local
	if len(cands) == 0 {
		cands = general
	}
	if len(cands) == 0 {
		return "", fault.Errorf(fault.DestinationBlocked, "%w: inbound pool %s has no number for %s callers", ErrNoNumbers, pool, country)
	}
	weights := make([]float64, len(cands))
	total := 0.0
	for i, c := range cands {
		weights[i] = float64(c.s().size())
		total += weights[i]
	}
	_, digits, err := drawOne(cands, weights, total)
	if err != nil {
		return "", err
	}
	return "+" + digits, nil
}

// HasNumber reports whether number (E.164 with '+') is a number of an enabled entry of pool.
func (r *Registry) HasNumber(pool, number string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	lp := r.pools[pool]
	if lp == nil {
		return false
	}
	digits := strings.TrimPrefix(number, "+")
	for i, e := range lp.Entries {
		if e.Enabled && lp.sets[i].covers(digits) {
			return true
		}
	}
	return false
}

// unuse takes back a use counted in m (a sweep or a reload may have dropped it meanwhile: never below 0).
func unuse(m map[string]uint64, key string) {
	if m[key] > 0 {
		m[key]--
	}
}
