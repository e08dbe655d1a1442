package numberpool

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"flashotp/fault"
)

// Report is a pool as the admin API shows it: its definition, use and quarantine.
type Report struct {
	Pool
	Uses       map[string]uint64     `json:"entry_uses"` // entry ID → picks since start (engines sharing a store: each since it started, summed)
	Quarantine map[string]Quarantine `json:"quarantine"` // "entry:ID" or "cli:+44…" → until when and why
}

// AppSpace is an app's code space per destination.
type AppSpace struct {
	App        string           `json:"app"`
	CodeLength int              `json:"code_length"`
	Spaces     map[string]Space `json:"spaces"` // country ("*": any other) → codes and bits
	Pools      []string         `json:"pools"`
}

// Pools returns every pool with its use and quarantine, and every app's code space.
func (r *Registry) Pools() ([]Report, []AppSpace) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.cfg.Now()
	reports := []Report{}
	for _, name := range slices.Sorted(maps.Keys(r.pools)) {
		lp := r.pools[name]
		rep := Report{Pool: lp.Pool, Uses: map[string]uint64{}, Quarantine: map[string]Quarantine{}}
		rep.Entries = slices.Clone(lp.Entries) // the caller's to keep; the registry's stay its own
		for _, e := range lp.Entries {
			rep.Uses[e.ID] = r.entryUses[name+"/"+e.ID] + r.otherUses[name+"/"+e.ID]
		}
		for key, q := range r.quarantine {
			if q.Pool != name || !q.Until.After(now) {
				continue
			}
			if strings.HasPrefix(key, "entry:") {
				rep.Quarantine["entry:"+q.Entry] = q
			} else {
				rep.Quarantine["cli:"+q.CLI] = q // masked: a CLI is a code
			}
		}
		reports = append(reports, rep)
	}
	spaces := []AppSpace{}
	for _, app := range slices.Sorted(maps.Keys(r.cfg.Apps)) {
		codeLength := r.appCodeLength(app)
		spaces = append(spaces, AppSpace{App: app, CodeLength: codeLength, Spaces: r.spaces(r.pools, app, codeLength), Pools: r.cfg.Apps[app]})
	}
	return reports, spaces
}

// Pool returns the pool called name, entries copied.
func (r *Registry) Pool(name string) (Pool, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	lp, ok := r.pools[name]
	if !ok {
		return Pool{}, false
	}
	p := lp.Pool
	p.Entries = slices.Clone(p.Entries)
	return p, true
}

// change applies fn to a copy of the pool set, checks every app's code space on the result, stores the
// changed pool (or deletes it), and swaps the result in: a change takes effect at once or not at all.
func (r *Registry) change(ctx context.Context, name string, fn func(p *Pool, exists bool) (keep bool, err error)) (Pool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, exists := r.pools[name]
	var p Pool
	if exists {
		p = cur.Pool
		p.Entries = slices.Clone(p.Entries)
	}
	keep, err := fn(&p, exists)
	if err != nil {
		return Pool{}, err
	}
	// The config file owns its pools' settings and entries; the admin API may only add entries beside them
	// (and remove those).
	if exists && cur.FromConfig {
		configured := func(es []Entry) []Entry {
			return slices.DeleteFunc(slices.Clone(es), func(e Entry) bool { return !e.FromConfig })
		}
		same := keep && p.Name == cur.Name && p.FromConfig &&
			slices.EqualFunc(configured(p.Entries), configured(cur.Entries), func(a, b Entry) bool {
				return a.ID == b.ID && slices.Equal(a.Numbers, b.Numbers) && a.Enabled == b.Enabled && a.Weight == b.Weight
			}) &&
			p.Cooldown == cur.Cooldown && p.QuarantineFor == cur.QuarantineFor && p.QuarantineAfter == cur.QuarantineAfter &&
			slices.Equal(p.QuarantineCodes, cur.QuarantineCodes)
		if !same {
			return Pool{}, fault.Errorf(fault.Conflict, "%w: pool %q and its file entries come from the config file; change them there (entries may be added beside them)", ErrInUse, name)
		}
	}
	next := maps.Clone(r.pools)
	if keep {
		lp, err := compile(p)
		if err != nil {
			return Pool{}, err
		}
		next[name] = lp
		p = lp.Pool
	} else {
		delete(next, name)
	}
	if err := r.checkSpaces(next); err != nil {
		return Pool{}, fault.Errorf(fault.Conflict, "%w: %w", ErrInUse, err)
	}
	if keep {
		err = r.save(ctx, p)
	} else {
		err = r.store.DeletePool(ctx, name)
	}
	if err != nil {
		return Pool{}, err
	}
	// Entries removed, or whose numbers changed, take their quarantine, rejections and use counts with
	// them: a new entry that gets the same ID starts clean.
	if exists {
		for _, old := range cur.Entries {
			i := slices.IndexFunc(p.Entries, func(e Entry) bool { return e.ID == old.ID })
			if keep && i >= 0 && slices.Equal(p.Entries[i].Numbers, old.Numbers) {
				continue
			}
			key := name + "/" + old.ID
			delete(r.rejections, key)
			delete(r.entryUses, key)
			if _, ok := r.quarantine["entry:"+key]; ok {
				delete(r.quarantine, "entry:"+key)
				// The pool is stored changed: its old entry's quarantine goes too, whoever waits.
				if err := r.store.DeleteQuarantine(context.WithoutCancel(ctx), "entry:"+key); err != nil {
					r.cfg.Log.Error("drop quarantine", "err", err)
				}
			}
		}
	}
	r.pools = next
	clear(r.spaceCache)
	return p, nil
}

// PutPool creates or replaces a pool.
func (r *Registry) PutPool(ctx context.Context, p Pool) (Pool, error) {
	p = adminMade(p)
	return r.change(ctx, p.Name, func(cur *Pool, _ bool) (bool, error) {
		*cur = p
		return true, nil
	})
}

// adminMade marks p and its entries as made through the admin API, whatever the body said: only the config
// file makes a pool or an entry from_config (which the admin API may not remove).
func adminMade(p Pool) Pool {
	p.FromConfig = false
	p.Entries = slices.Clone(p.Entries)
	for i := range p.Entries {
		p.Entries[i].FromConfig = false
	}
	return p
}

// CreatePool creates a pool; it fails with fault.Conflict if the name is taken.
func (r *Registry) CreatePool(ctx context.Context, p Pool) (Pool, error) {
	p = adminMade(p)
	return r.change(ctx, p.Name, func(cur *Pool, exists bool) (bool, error) {
		if exists {
			return false, fault.Errorf(fault.Conflict, "exists: pool %q; PUT replaces it", p.Name)
		}
		*cur = p
		return true, nil
	})
}

// DeletePool removes a pool.
func (r *Registry) DeletePool(ctx context.Context, name string) error {
	_, err := r.change(ctx, name, func(_ *Pool, exists bool) (bool, error) {
		if !exists {
			return false, fault.Errorf(fault.NotFound, "not found: pool %q", name)
		}
		return false, nil
	})
	return err
}

// AddEntry adds an entry to a pool, giving it an ID if it has none.
func (r *Registry) AddEntry(ctx context.Context, pool string, e Entry) (Entry, error) {
	p, err := r.change(ctx, pool, func(p *Pool, exists bool) (bool, error) {
		if !exists {
			return false, fault.Errorf(fault.NotFound, "not found: pool %q", pool)
		}
		e.FromConfig = false
		p.Entries = append(p.Entries, e)
		return true, nil
	})
	if err != nil {
		return Entry{}, err
	}
	return p.Entries[len(p.Entries)-1], nil // with its ID and defaults
}

// RemoveEntry removes an entry from a pool.
func (r *Registry) RemoveEntry(ctx context.Context, pool, id string) error {
	_, err := r.change(ctx, pool, func(p *Pool, exists bool) (bool, error) {
		i := slices.IndexFunc(p.Entries, func(x Entry) bool { return x.ID == id })
		if !exists || i < 0 {
			return false, fault.Errorf(fault.NotFound, "not found: entry %q of pool %q", id, pool)
		}
		p.Entries = slices.Delete(p.Entries, i, i+1)
		return true, nil
	})
	return err
}

// Target names what a manual quarantine or release is about: one CLI, or one entry of a pool. It is the
// body of POST /admin/pools/{pool}/quarantine and /release, the pool named by the path; For and Reason are
// a quarantine's (For zero: the pool's quarantine_for; Reason empty: "by hand").
type Target struct {
	Pool   string   `json:"-"`
	CLI    string   `json:"cli,omitempty"`
	Entry  string   `json:"entry,omitempty"`
	For    Duration `json:"for,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

func (r *Registry) targetKey(t Target) (string, error) {
	lp := r.pools[t.Pool]
	if lp == nil {
		return "", fault.Errorf(fault.NotFound, "not found: pool %q", t.Pool)
	}
	switch {
	case t.CLI != "" && t.Entry == "":
		d, err := e164Digits(t.CLI)
		if err != nil {
			return "", err
		}
		if !slices.ContainsFunc(lp.sets, func(s set) bool { return s.covers(d) }) {
			return "", fault.Errorf(fault.NotFound, "not found: %s is not a number of pool %q", t.CLI, t.Pool)
		}
		return r.cliKey("+" + d), nil
	case t.Entry != "" && t.CLI == "":
		if !slices.ContainsFunc(lp.Entries, func(e Entry) bool { return e.ID == t.Entry }) {
			return "", fault.Errorf(fault.NotFound, "not found: entry %q of pool %q", t.Entry, t.Pool)
		}
		return "entry:" + t.Pool + "/" + t.Entry, nil
	}
	return "", fault.Errorf(fault.InvalidRequest, "%w: name either cli or entry", ErrBadPattern)
}

// QuarantineNow leaves t out of picks for t.For.
func (r *Registry) QuarantineNow(ctx context.Context, t Target) (Quarantine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key, err := r.targetKey(t)
	if err != nil {
		return Quarantine{}, err
	}
	d := time.Duration(t.For)
	if d <= 0 {
		d = time.Duration(r.pools[t.Pool].QuarantineFor)
	}
	reason := t.Reason
	if reason == "" {
		reason = "by hand"
	}
	now := r.cfg.Now()
	q := Quarantine{Until: now.Add(d), Since: now, Reason: reason, Manual: true, Pool: t.Pool, Entry: t.Entry}
	if t.CLI != "" {
		d, _ := e164Digits(t.CLI)
		q.CLI = r.mask("+" + d)
		q.Entry = r.pools[t.Pool].Entries[slices.IndexFunc(r.pools[t.Pool].sets, func(s set) bool { return s.covers(d) })].ID
	}
	r.setQuarantine(ctx, key, q)
	return q, nil
}

// Release lifts the quarantine of t.
func (r *Registry) Release(ctx context.Context, t Target) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	key, err := r.targetKey(t)
	if err != nil {
		return err
	}
	if _, ok := r.quarantine[key]; !ok {
		return fault.Errorf(fault.NotFound, "not found: that %s is not quarantined", strings.SplitN(key, ":", 2)[0])
	}
	delete(r.quarantine, key)
	if e, ok := strings.CutPrefix(key, "entry:"); ok {
		delete(r.rejections, e)
	}
	return r.store.DeleteQuarantine(ctx, key)
}
