package numberpool

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Config configures a Registry.
type Config struct {
	Apps         map[string][]string // app → the names of its pools
	CodeLength   int                 // the default code length
	MinCodeSpace int
	Key          []byte // server key: recent CLIs and codes are kept only as MACs under it
	Now          func() time.Time
	Log          *slog.Logger
	// Shared: engines share the store (PostgreSQL). A pick then reads the recipient's history from the
	// store and writes it back at once, only if no other pick changed it meanwhile, so that a cooldown holds
	// across the engines; and what another engine changed is read again by ReloadPools and
	// ReloadQuarantines.
	Shared bool
	// Node names this engine among those sharing the store: its use counts are stored under it, and the
	// pools' reports add the other engines' (Shared only).
	Node string
}

// Registry is the live set of pools: picks, rejections, quarantine and changes. It is safe for concurrent
// use.
type Registry struct {
	cfg   Config
	store Store

	mu          sync.RWMutex
	pools       map[string]*livePool
	quarantine  map[string]Quarantine           // "cli:+44…" / "entry:pool/id" → until
	unstored    map[string]Quarantine           // the quarantines Reject made that the store has not got yet
	rejections  map[string]map[string]time.Time // "pool/id" → its CLIs rejected lately (by key) → when
	uses        map[string]uint64               // CLI → times picked since start
	entryUses   map[string]uint64               // "pool/id" → times picked since start
	otherUses   map[string]uint64               // "pool/id" → the other engines' picks, as last read (Shared)
	recent      map[string]*recentCalls         // recipient → recent CLI/code MACs (cache of the stored histories)
	spaceCache  map[string]Space                // code length and candidate entries → their space; reset on change
	codeLengths map[string]int                  // app → its default code length, when set by SetApp
	picks       uint64                          // picks since start, to sweep recent now and then

	macs sync.Pool // keyed HMAC-SHA256 hashes

	pendingMu sync.Mutex
	pending   map[string][]byte // recipient → history not yet written
	stop      chan struct{}     // closed by Close
	flushed   chan struct{}     // closed when the flusher has written the last of pending
}

type livePool struct {
	Pool
	sets []set // Entries[i]'s numbers
}

// NewRegistry loads the stored pools, puts configPools over them (a config pool always wins and is marked
// from config; a stored config pool no longer in the config is dropped), and checks every app's code space.
//
// The flusher it starts, writing the recent-call histories, runs until Close under ctx without its
// cancellation.
func NewRegistry(ctx context.Context, cfg Config, s Store, configPools []Pool) (*Registry, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Registry{cfg: cfg, store: s, pools: map[string]*livePool{}, quarantine: map[string]Quarantine{}, unstored: map[string]Quarantine{},
		rejections: map[string]map[string]time.Time{}, uses: map[string]uint64{}, entryUses: map[string]uint64{}, otherUses: map[string]uint64{}, recent: map[string]*recentCalls{},
		spaceCache: map[string]Space{}, codeLengths: map[string]int{}, pending: map[string][]byte{},
		stop: make(chan struct{}), flushed: make(chan struct{})}
	inConfig := map[string]bool{}
	for _, p := range configPools {
		inConfig[p.Name] = true
	}
	var dropped []string
	added := map[string][]Entry{} // config pool → entries added through the admin API
	err := s.LoadPools(ctx, func(name string, v []byte) error {
		var p Pool
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("stored pool %s: %w", name, err)
		}
		if p.FromConfig && !inConfig[name] {
			dropped = append(dropped, name) // deleted after the read: no write inside it (see Store)
			return nil
		}
		if inConfig[name] {
			for _, e := range p.Entries {
				if !e.FromConfig {
					added[name] = append(added[name], e)
				}
			}
		} else {
			lp, err := compileWith(p, validStored)
			if err != nil {
				return fmt.Errorf("stored pool %s: %w", name, err)
			}
			r.warnCountries(lp.Pool)
			r.pools[name] = lp
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range dropped {
		if err := s.DeletePool(ctx, name); err != nil {
			return nil, err
		}
	}
	for _, p := range configPools {
		p.FromConfig = true
		p.Entries = slices.Clone(p.Entries)
		for i := range p.Entries {
			p.Entries[i].FromConfig = true
		}
		p = p.WithDefaults() // the file's entries get their IDs before the added ones are put beside them
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("pool %s: %w", p.Name, err)
		}
		for _, e := range added[p.Name] {
			if !slices.ContainsFunc(p.Entries, func(x Entry) bool { return x.ID == e.ID }) {
				p.Entries = append(p.Entries, e)
			}
		}
		// The file's entries are checked above; the added ones come from the store.
		lp, err := compileWith(p, validStored)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", p.Name, err)
		}
		r.warnCountries(lp.Pool)
		if err := r.save(ctx, lp.Pool); err != nil {
			return nil, err
		}
		r.pools[p.Name] = lp
	}
	if err := r.checkSpaces(r.pools); err != nil {
		return nil, err
	}
	now := cfg.Now()
	var expired []string
	err = s.LoadQuarantines(ctx, func(key string, v []byte) error {
		var q Quarantine
		if json.Unmarshal(v, &q) == nil && q.Until.After(now) {
			r.quarantine[key] = q
		} else {
			expired = append(expired, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, key := range expired {
		if err := s.DeleteQuarantine(ctx, key); err != nil {
			return nil, err
		}
	}
	// Close ends the flusher, not ctx: histories picked after ctx ended are still written, the last at Close.
	go r.flusher(context.WithoutCancel(ctx))
	return r, nil
}

// Close writes what is pending and stops the flusher. The Registry must not be used after.
func (r *Registry) Close() error {
	close(r.stop)
	<-r.flushed
	return nil
}

// warnCountries logs each country of p's entries that CheckCountry refuses: stored before it was checked, the
// entry serves no recipient of it until the pool is changed through the admin API.
func (r *Registry) warnCountries(p Pool) {
	for _, e := range p.Entries {
		for _, c := range e.Countries {
			if err := CheckCountry(c); err != nil {
				r.cfg.Log.Warn("pool entry names a country no recipient has; change it through the admin API",
					"pool", p.Name, "entry", e.ID, "country", c, "err", err)
			}
		}
	}
}

func compile(p Pool) (*livePool, error) { return compileWith(p, Pool.Validate) }

// compileWith is compile with validate for the check.
func compileWith(p Pool, validate func(Pool) error) (*livePool, error) {
	p = p.WithDefaults()
	if err := validate(p); err != nil {
		return nil, err
	}
	lp := &livePool{Pool: p}
	for _, e := range p.Entries {
		s, _ := parseSet(e.Numbers)
		lp.sets = append(lp.sets, s)
	}
	return lp, nil
}

func (r *Registry) mac(kind, recipient, value string) string {
	m, _ := r.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, r.cfg.Key) // keyed once, then Reset: picks make several MACs each
	}
	m.Reset()
	m.Write([]byte(kind + "\x00" + recipient + "\x00" + value))
	var sum [sha256.Size]byte
	out := base64.RawStdEncoding.EncodeToString(m.Sum(sum[:0])[:16])
	r.macs.Put(m)
	return out
}
