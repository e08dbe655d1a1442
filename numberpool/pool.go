// Package numberpool owns the caller IDs (CLIs) flash calls present. Its pools group entries (X patterns
// like +44207946XXXX, ranges, lists of numbers) with the destinations and trunks they may serve; its
// Registry draws CLIs with crypto/rand (local numbers first, cooldown per recipient, quarantine of rejected
// numbers), derives codes from their last digits, accounts for the code space each app really has, and
// takes live changes, kept in the store.
//
// Invariants: every CLI drawn belongs to an enabled, unquarantined entry that may serve the recipient;
// within the candidate entries every number is equally likely, times its entry's weight; no app is ever
// left with fewer distinct codes than the minimum for a destination it serves.
package numberpool

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"flashotp/fault"
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

// patternDigits checks an X pattern ("+<digits and X>", 6 to 15 long as E.164 allows, first digit 1-9)
// and returns it without its '+'.
func patternDigits(s string) (string, error) {
	body, ok := strings.CutPrefix(s, "+")
	if !ok || len(body) < 6 || len(body) > 15 || body[0] < '1' || body[0] > '9' {
		return "", fault.Errorf(fault.InvalidRequest, "%w %q: want + and 6..15 digits or X, first digit 1-9", ErrBadPattern, s)
	}
	if strings.Trim(body, "0123456789X") != "" {
		return "", fault.Errorf(fault.InvalidRequest, "%w %q: only digits and X", ErrBadPattern, s)
	}
	return body, nil
}
