package numberpool

import (
	"fmt"
	"time"

	"flashotp/setting"
)

// ValidName reports whether s is well-formed as the name of a pool, of an entry (its id) or of a trunk an
// entry names: letters, digits, _ . - and at most 64 of them, the first a letter or digit.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// FilePool is a pool as the config file's pool[] writes it: the short form numbers beside entries, durations
// as Go durations. Pool turns it into the Pool the registry keeps.
type FilePool struct {
	Name string `mapstructure:"name"`
	// Numbers is the short form: each an entry of its own (X pattern, +FIRST-+LAST range, or one number),
	// for any destination and trunk.
	Numbers []string    `mapstructure:"numbers"`
	Entries []FileEntry `mapstructure:"entries"`

	Cooldown        time.Duration `mapstructure:"cooldown"`         // default 24h
	QuarantineFor   time.Duration `mapstructure:"quarantine_for"`   // default 24h
	QuarantineCodes []int         `mapstructure:"quarantine_codes"` // default [403, 484, 488]
	QuarantineAfter int           `mapstructure:"quarantine_after"` // default 10
}

// FileEntry is one entry of a FilePool: one X pattern, one range, or a list of numbers, and what it serves.
type FileEntry struct {
	ID        string   `mapstructure:"id"` // default e1, e2, … by position
	Numbers   []string `mapstructure:"numbers"`
	Countries []string `mapstructure:"countries"` // ISO 3166 codes of the destinations it serves; empty: any
	Trunks    []string `mapstructure:"trunks"`    // trunks it may go out on; empty: any
	Weight    int      `mapstructure:"weight"`    // default 1
	Enabled   *bool    `mapstructure:"enabled"`   // default true
}

// Pool returns p as the registry takes it, defaults filled.
func (p FilePool) Pool() Pool {
	np := Pool{
		Name: p.Name, Cooldown: Duration(p.Cooldown), QuarantineFor: Duration(p.QuarantineFor),
		QuarantineCodes: p.QuarantineCodes, QuarantineAfter: p.QuarantineAfter,
	}
	for _, n := range p.Numbers {
		np.Entries = append(np.Entries, Entry{Numbers: []string{n}, Enabled: true})
	}
	for _, e := range p.Entries {
		np.Entries = append(np.Entries, Entry{
			ID: e.ID, Numbers: e.Numbers, Countries: e.Countries, Trunks: e.Trunks, Weight: e.Weight,
			Enabled: e.Enabled == nil || *e.Enabled,
		})
	}
	return np.WithDefaults()
}

// Validate reports every bad key of p but its name (the config checks names beside the other pools'), each
// a *setting.Error with the key under the pool ("numbers[1]", "entries[0].countries[2]").
// trunkExists says whether a trunk an entry names is configured. Once these hold, Pool().Validate covers
// the rest (entry ids, weights, quarantine codes).
func (p FilePool) Validate(trunkExists func(name string) bool) error {
	var errs setting.Errors
	bad := errs.Add
	if len(p.Numbers) == 0 && len(p.Entries) == 0 {
		bad("numbers", "at least one number pattern (or an entry) is needed")
	}
	for j, n := range p.Numbers {
		if err := ValidateNumbers([]string{n}); err != nil {
			bad(fmt.Sprintf("numbers[%d]", j), "want an E.164 pattern with X for free digits (+44207946XXXX), a range (+442079460000-+442079469999) or a number: %v", err)
		}
	}
	for j, e := range p.Entries {
		key := fmt.Sprintf("entries[%d]", j)
		if err := ValidateNumbers(e.Numbers); err != nil {
			bad(key+".numbers", "%v", err)
		}
		for k, cc := range e.Countries {
			if err := CheckCountry(cc); err != nil {
				bad(fmt.Sprintf("%s.countries[%d]", key, k), "%v", err)
			}
		}
		for _, tn := range e.Trunks {
			if !trunkExists(tn) {
				bad(key+".trunks", "no trunk named %q", tn)
			}
		}
	}
	if p.Cooldown < 0 || p.Cooldown > 30*24*time.Hour {
		bad("cooldown", "want 0..720h, got %s", p.Cooldown)
	}
	if p.QuarantineFor < 0 {
		bad("quarantine_for", "must not be negative")
	}
	return errs.Err()
}
