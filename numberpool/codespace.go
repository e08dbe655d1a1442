package numberpool

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"flashotp/fault"
)

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
		return fault.Errorf(fault.InvalidRequest, "%w: app %q has no numbers for %d-digit codes", ErrCodeSpace, app, codeLength)
	}
	for country, s := range sp {
		if s.Codes < r.cfg.MinCodeSpace {
			dest := country + " destinations"
			if country == "*" {
				dest = "destinations without a local entry"
			}
			return fault.Errorf(fault.InvalidRequest, "%w: app %q has %d distinct codes (%.1f bits) for %s, need at least %d",
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
