package numberpool

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"flashotp/store"
)

// Entry is one set of numbers of a pool (an X pattern, a range, or a list) and what it may be used for.
type Entry struct {
	ID        string   `json:"id"`
	Numbers   []string `json:"numbers"`
	Countries []string `json:"countries,omitempty"` // ISO 3166-1 alpha-2 codes (CheckCountry) of the destinations it serves; empty: any
	Trunks    []string `json:"trunks,omitempty"`    // trunks its calls may leave on; empty: any
	Weight    int      `json:"weight"`              // share among the candidates, times its size; default 1
	Enabled   bool     `json:"enabled"`
	// FromConfig marks an entry of the config file: the admin API cannot remove it. Entries added through
	// the admin API to a config pool are kept across restarts beside the file's.
	FromConfig bool `json:"from_config,omitempty"`
}

// UnmarshalJSON reads an entry; enabled defaults to true, and unknown fields are refused.
func (e *Entry) UnmarshalJSON(b []byte) error {
	type plain Entry
	var in struct {
		plain
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*e = Entry(in.plain)
	e.Enabled = in.Enabled == nil || *in.Enabled
	return nil
}

// Pool is a named group of entries and its rules for reuse and rejection.
type Pool struct {
	Name    string  `json:"name"`
	Entries []Entry `json:"entries"`
	// Cooldown: a recipient never gets the same CLI, nor the same code, twice within it.
	Cooldown Duration `json:"cooldown"`
	// QuarantineFor: how long a rejected CLI (or entry) is left out.
	QuarantineFor Duration `json:"quarantine_for"`
	// QuarantineCodes: the final SIP codes by which a trunk rejects a caller ID.
	QuarantineCodes []int `json:"quarantine_codes"`
	// QuarantineAfter: rejections of an entry's numbers within QuarantineFor that quarantine the whole entry.
	QuarantineAfter int  `json:"quarantine_after"`
	FromConfig      bool `json:"from_config"`
}

// Pool defaults.
const (
	DefaultCooldown        = 24 * time.Hour
	DefaultQuarantineFor   = 24 * time.Hour
	DefaultQuarantineAfter = 10
)

// DefaultQuarantineCodes are the rejections that usually mean "not this caller ID".
var DefaultQuarantineCodes = []int{403, 484, 488}

// WithDefaults fills what p left empty.
func (p Pool) WithDefaults() Pool {
	if p.Cooldown == 0 {
		p.Cooldown = Duration(DefaultCooldown)
	}
	if p.QuarantineFor == 0 {
		p.QuarantineFor = Duration(DefaultQuarantineFor)
	}
	if p.QuarantineCodes == nil {
		p.QuarantineCodes = DefaultQuarantineCodes
	}
	if p.QuarantineAfter == 0 {
		p.QuarantineAfter = DefaultQuarantineAfter
	}
	used := map[string]bool{}
	for _, e := range p.Entries {
		used[e.ID] = true
	}
	p.Entries = slices.Clone(p.Entries)
	next := 1
	for i := range p.Entries {
		if p.Entries[i].Weight == 0 {
			p.Entries[i].Weight = 1
		}
		for p.Entries[i].ID == "" {
			if id := "e" + strconv.Itoa(next); !used[id] {
				p.Entries[i].ID, used[id] = id, true
			}
			next++
		}
	}
	return p
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// storedCountryRe is the form-only check pools were stored under before CheckCountry. A stored pool is
	// held to it alone, so a "UK" stored then does not stop the engine from starting: NewRegistry warns of it.
	storedCountryRe = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Validate reports what is wrong with p, naming the field.
func (p Pool) Validate() error { return p.validate(CheckCountry) }

// validStored is Validate for a pool read from the store: its countries need only the form.
func validStored(p Pool) error {
	return p.validate(func(c string) error {
		if !storedCountryRe.MatchString(c) {
			return CheckCountry(c)
		}
		return nil
	})
}

func (p Pool) validate(checkCountry func(string) error) error {
	var errs []error
	if !nameRe.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("name: want letters, digits, _ . -, got %q", p.Name))
	}
	if len(p.Entries) == 0 {
		errs = append(errs, errors.New("entries: at least one is needed"))
	}
	ids := map[string]bool{}
	for i, e := range p.Entries {
		key := fmt.Sprintf("entries[%d]", i)
		if !nameRe.MatchString(e.ID) || ids[e.ID] {
			errs = append(errs, fmt.Errorf("%s.id: missing, malformed or repeated: %q", key, e.ID))
		}
		ids[e.ID] = true
		if err := ValidateNumbers(e.Numbers); err != nil {
			errs = append(errs, fmt.Errorf("%s.numbers: %w", key, err))
		}
		for j, c := range e.Countries {
			if err := checkCountry(c); err != nil {
				errs = append(errs, fmt.Errorf("%s.countries[%d]: %w", key, j, err))
			}
		}
		for _, t := range e.Trunks {
			if !nameRe.MatchString(t) {
				errs = append(errs, fmt.Errorf("%s.trunks: bad trunk name %q", key, t))
			}
		}
		if e.Weight < 1 || e.Weight > 1000 {
			errs = append(errs, fmt.Errorf("%s.weight: want 1..1000, got %d", key, e.Weight))
		}
	}
	if p.Cooldown < 0 || p.QuarantineFor < 0 || p.QuarantineAfter < 1 {
		errs = append(errs, errors.New("cooldown, quarantine_for: not negative; quarantine_after: positive"))
	}
	for _, c := range p.QuarantineCodes {
		if c < 400 || c > 699 {
			errs = append(errs, fmt.Errorf("quarantine_codes: want 400..699, got %d", c))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// Duration is a time.Duration written as "24h" in JSON (the apps' settings use it too).
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string; anything else is a *json.UnmarshalTypeError whose Value is
// what it got.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as for any JSON value: null leaves the default
	}
	// A *json.UnmarshalTypeError, so that encoding/json adds the field's name and callers can say which.
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Duration]()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: strconv.Quote(s), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// jsonKind names the kind of a JSON value as encoding/json's errors do.
func jsonKind(b []byte) string {
	switch b = bytes.TrimSpace(b); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	}
	return "number"
}

// Store keeps one kind of record; *store.Bucket is one.
type Store interface {
	Put(id string, v []byte) error
	PutMany(records map[string][]byte) error
	Get(id string) ([]byte, error)
	Delete(id string) error
	ForEach(fn func(id string, v []byte) error) error
}

// Buckets are the stores a Registry keeps its state in.
type Buckets struct {
	Pools      Store // pool name → Pool
	Quarantine Store // "cli:<MAC of the CLI>" or "entry:pool/id" → Quarantine
	Recent     Store // recipient → its recent CLIs and codes, as MACs
}

// Config configures a Registry.
type Config struct {
	Apps         map[string][]string // app → the names of its pools
	CodeLength   int                 // the default code length
	MinCodeSpace int
	Key          []byte // server key: recent CLIs and codes are kept only as MACs under it
	Now          func() time.Time
	Log          *slog.Logger
}

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

// Registry is the live set of pools: picks, rejections, quarantine and changes. It is safe for concurrent
// use.
type Registry struct {
	cfg Config
	b   Buckets

	mu          sync.RWMutex
	pools       map[string]*livePool
	quarantine  map[string]Quarantine           // "cli:+44…" / "entry:pool/id" → until
	rejections  map[string]map[string]time.Time // "pool/id" → its CLIs rejected lately (by key) → when
	uses        map[string]uint64               // CLI → times picked since start
	entryUses   map[string]uint64               // "pool/id" → times picked since start
	recent      map[string]*recentCalls         // recipient → recent CLI/code MACs (cache of Buckets.Recent)
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
func NewRegistry(cfg Config, b Buckets, configPools []Pool) (*Registry, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Registry{cfg: cfg, b: b, pools: map[string]*livePool{}, quarantine: map[string]Quarantine{},
		rejections: map[string]map[string]time.Time{}, uses: map[string]uint64{}, entryUses: map[string]uint64{}, recent: map[string]*recentCalls{},
		spaceCache: map[string]Space{}, codeLengths: map[string]int{}, pending: map[string][]byte{},
		stop: make(chan struct{}), flushed: make(chan struct{})}
	inConfig := map[string]bool{}
	for _, p := range configPools {
		inConfig[p.Name] = true
	}
	var dropped []string
	added := map[string][]Entry{} // config pool → entries added through the admin API
	err := b.Pools.ForEach(func(name string, v []byte) error {
		var p Pool
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("stored pool %s: %w", name, err)
		}
		if p.FromConfig && !inConfig[name] {
			dropped = append(dropped, name) // deleted after the read: no write inside a bbolt read
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
		if err := b.Pools.Delete(name); err != nil {
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
		if err := r.save(lp.Pool); err != nil {
			return nil, err
		}
		r.pools[p.Name] = lp
	}
	if err := r.checkSpaces(r.pools); err != nil {
		return nil, err
	}
	now := cfg.Now()
	var expired []string
	err = b.Quarantine.ForEach(func(key string, v []byte) error {
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
		if err := b.Quarantine.Delete(key); err != nil {
			return nil, err
		}
	}
	go r.flusher()
	return r, nil
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

func (r *Registry) save(p Pool) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.b.Pools.Put(p.Name, data)
}

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
			return nil, fmt.Errorf("%w: app %s has no pool %q", ErrNotFound, app, pool)
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

func (r *Registry) quarantined(key string) bool {
	q, ok := r.quarantine[key]
	return ok && q.Until.After(r.cfg.Now())
}

// PickRequest asks for a CLI for one verification.
type PickRequest struct {
	App        string
	Pool       string // optional: only this pool of the app's
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
// The in-memory history is the truth for the cooldown; the store gets it within flushEvery, from the
// flusher, so that no send waits for that write (a crash forgets at most that much of the cooldown).
func (r *Registry) Pick(req PickRequest) (Picked, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all, err := r.candidates(r.pools, req.App, req.Pool, req.Country, req.CodeLength, false)
	if err != nil {
		return Picked{}, err
	}
	if len(all) == 0 {
		if any, _ := r.candidates(r.pools, req.App, req.Pool, req.Country, 0, false); len(any) > 0 {
			return Picked{}, fmt.Errorf("%w: app %s's numbers for %s destinations are too short for %d-digit codes", ErrCodeSpace, req.App, req.Country, req.CodeLength)
		}
		return Picked{}, fmt.Errorf("%w: app %s has no caller ID for %s destinations", ErrNoNumbers, req.App, req.Country)
	}
	if sp := r.cachedSpace(all, req.CodeLength); sp.Codes < r.cfg.MinCodeSpace {
		return Picked{}, fmt.Errorf("%w: %d-digit codes from these numbers give only %d distinct codes, need %d", ErrCodeSpace, req.CodeLength, sp.Codes, r.cfg.MinCodeSpace)
	}
	cands, err := r.candidates(r.pools, req.App, req.Pool, req.Country, req.CodeLength, true)
	if err != nil {
		return Picked{}, err
	}
	if len(cands) == 0 {
		return Picked{}, fmt.Errorf("%w: every entry for %s destinations is disabled or quarantined", ErrExhausted, req.Country)
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
		return Picked{}, fmt.Errorf("%w: with entries or caller IDs disabled or quarantined, %s destinations have only %d distinct codes", ErrExhausted, req.Country, sp.Codes-out)
	}
	now := r.cfg.Now()
	weights := make([]float64, len(cands))
	total := 0.0
	for i, c := range cands {
		weights[i] = float64(c.e().Weight) * float64(c.s().size())
		total += weights[i]
	}
	hist, err := r.recentFor(req.Recipient)
	if err != nil {
		return Picked{}, err
	}
	hist.prune(now)
	if len(hist.Items) >= maxRecent {
		return Picked{}, fmt.Errorf("%w: the recipient got %d calls within the cooldown", ErrExhausted, len(hist.Items))
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
			return Picked{}, err
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
			return Picked{}, err
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
		return Picked{}, err
	}
	// Queued under the registry's lock, so that histories reach the store in the order they were made.
	r.pendingMu.Lock()
	r.pending[req.Recipient] = data
	r.pendingMu.Unlock()
	if r.picks++; r.picks%1024 == 0 {
		r.sweep(now)
	}
	return picked, nil
}

// flushEvery is how often recent-call histories are written to the store.
const flushEvery = 50 * time.Millisecond

// flusher writes the histories Pick left pending, until Close.
func (r *Registry) flusher() {
	defer close(r.flushed)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			r.flush()
			return
		case <-tick.C:
			r.flush()
		}
	}
}

func (r *Registry) flush() {
	r.pendingMu.Lock()
	batch := r.pending
	r.pending = map[string][]byte{}
	r.pendingMu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.b.Recent.PutMany(batch); err != nil {
		r.cfg.Log.Error("store recent calls", "recipients", len(batch), "err", err)
	}
}

// Close writes what is pending and stops the flusher. The Registry must not be used after.
func (r *Registry) Close() error {
	close(r.stop)
	<-r.flushed
	return nil
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
		return candidate{}, "", fmt.Errorf("%w: no acceptable caller ID in 200 draws", ErrExhausted)
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
		return candidate{}, "", fmt.Errorf("%w: every caller ID for this recipient is quarantined or in its cooldown", ErrExhausted)
	}
	i, err := randN(uint64(len(frees)))
	if err != nil {
		return candidate{}, "", err
	}
	return frees[i].c, frees[i].digits, nil
}

// cachedSpace is spaceOf, cached by candidate set until the next pool change. r.mu must be held.
func (r *Registry) cachedSpace(cands []candidate, codeLength int) Space {
	keys := make([]string, 0, len(cands)+1)
	keys = append(keys, strconv.Itoa(codeLength))
	for _, c := range cands {
		keys = append(keys, c.key())
	}
	key := strings.Join(keys, ",")
	sp, ok := r.spaceCache[key]
	if !ok {
		sp = spaceOf(cands, codeLength)
		r.spaceCache[key] = sp
	}
	return sp
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

func (r *Registry) recentFor(recipient string) (*recentCalls, error) {
	if h, ok := r.recent[recipient]; ok {
		return h, nil
	}
	h := &recentCalls{}
	data, err := r.b.Recent.Get(recipient)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("recent calls: %w", err) // never a send without its cooldown
	default:
		if err := json.Unmarshal(data, h); err != nil {
			return nil, fmt.Errorf("recent calls: %w", err)
		}
	}
	r.recent[recipient] = h
	return h, nil
}

// callerRe: a rejection whose text is about the caller ID.
var callerRe = regexp.MustCompile(`(?i)caller|calling|\bcli\b|\bani\b|identity|presentation|anonymous|screen`)

// Reject records a trunk's final answer to a call from cli. A code of the pool's QuarantineCodes whose
// reason is about the caller ID, or a bare 403 before the phone rang (the usual refusal of a caller ID),
// quarantines the CLI for QuarantineFor; QuarantineAfter distinct CLIs of one entry quarantined within that
// time quarantine the whole entry. Anything else (a 484 for the dialled number, a 488 for codecs) is not
// the CLI's fault and changes nothing.
func (r *Registry) Reject(cli string, sipCode int, reason string, rang bool) {
	if !callerRe.MatchString(reason) && (sipCode != 403 || rang) {
		return
	}
	writes := r.reject(cli, sipCode, reason)
	for key, q := range writes { // after the lock: a burst of rejections must not stall the sends
		data, _ := json.Marshal(q)
		if err := r.b.Quarantine.Put(key, data); err != nil {
			r.cfg.Log.Error("store quarantine", "err", err)
		}
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
		r.quarantine[key], writes[key] = q, q
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
			r.quarantine["entry:"+entryKey], writes["entry:"+entryKey] = eq, eq
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

func (r *Registry) setQuarantine(key string, q Quarantine) {
	r.quarantine[key] = q
	data, _ := json.Marshal(q)
	if err := r.b.Quarantine.Put(key, data); err != nil {
		r.cfg.Log.Error("store quarantine", "err", err)
	}
}

// Space is a code space: distinct codes and their entropy in bits.
type Space struct {
	Codes int     `json:"codes"`
	Bits  float64 `json:"bits"`
}

// spaceOf counts the distinct codes the candidates can produce (overlaps once) and their bits.
func spaceOf(cands []candidate, codeLength int) Space {
	full := int(math.Pow10(codeLength))
	seen := make([]uint64, full/64+1)
	count := 0
	for _, c := range cands {
		if all := c.s().markCodes(codeLength, func(n int) {
			if seen[n/64]&(1<<(n%64)) == 0 {
				seen[n/64] |= 1 << (n % 64)
				count++
			}
		}); all {
			count = full
			break
		}
	}
	bits := 0.0
	if count > 0 {
		bits = math.Round(math.Log2(float64(count))*10) / 10
	}
	return Space{Codes: count, Bits: bits}
}

// spaces returns, per destination country the app's entries name and "*" for every other country, the
// code space a recipient there draws from.
func (r *Registry) spaces(pools map[string]*livePool, app string, codeLength int) map[string]Space {
	countries := map[string]bool{"*": true}
	for _, name := range r.cfg.Apps[app] {
		if lp := pools[name]; lp != nil {
			for _, e := range lp.Entries {
				for _, c := range e.Countries {
					countries[c] = true
				}
			}
		}
	}
	out := map[string]Space{}
	for c := range countries {
		cands, _ := r.candidates(pools, app, "", c, codeLength, false)
		if len(cands) > 0 {
			out[c] = spaceOf(cands, codeLength)
		}
	}
	return out
}

// checkSpaces refuses pools that leave an app, for some destination, below the minimum code space.
func (r *Registry) checkSpaces(pools map[string]*livePool) error {
	apps := make([]string, 0, len(r.cfg.Apps))
	for app := range r.cfg.Apps {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		if err := r.checkApp(pools, app, r.appCodeLength(app)); err != nil {
			return err
		}
	}
	return nil
}

// appCodeLength is app's default code length.
func (r *Registry) appCodeLength(app string) int {
	if n := r.codeLengths[app]; n > 0 {
		return n
	}
	return r.cfg.CodeLength
}

// checkApp refuses pools that leave app, for some destination, below the minimum code space.
func (r *Registry) checkApp(pools map[string]*livePool, app string, codeLength int) error {
	sp := r.spaces(pools, app, codeLength)
	if len(sp) == 0 {
		return fmt.Errorf("%w: app %q has no numbers for %d-digit codes", ErrCodeSpace, app, codeLength)
	}
	for country, s := range sp {
		if s.Codes < r.cfg.MinCodeSpace {
			dest := country + " destinations"
			if country == "*" {
				dest = "destinations without a local entry"
			}
			return fmt.Errorf("%w: app %q has %d distinct codes (%.1f bits) for %s, need at least %d",
				ErrCodeSpace, app, s.Codes, s.Bits, dest, r.cfg.MinCodeSpace)
		}
	}
	return nil
}

// SetApp gives app the pools it draws from, for codes of codeLength digits by default, refusing pools that
// leave it below the minimum code space. Nil pools remove the app.
func (r *Registry) SetApp(app string, pools []string, codeLength int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(r.cfg.Apps)
	if next == nil {
		next = map[string][]string{}
	}
	if pools == nil {
		delete(next, app)
		delete(r.codeLengths, app)
		r.cfg.Apps = next
		return nil
	}
	next[app] = slices.Clone(pools)
	old := r.cfg.Apps
	r.cfg.Apps = next
	if err := r.checkApp(r.pools, app, codeLength); err != nil {
		r.cfg.Apps = old
		return err
	}
	r.codeLengths[app] = codeLength
	clear(r.spaceCache)
	return nil
}

// CodeSpace returns the code space of app for codes of codeLength digits, per destination ("*": any
// country without a local entry).
func (r *Registry) CodeSpace(app string, codeLength int) map[string]Space {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.spaces(r.pools, app, codeLength)
}
