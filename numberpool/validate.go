package numberpool

import (
	"errors"
	"fmt"
	"regexp"

	"flashotp/fault"
)

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
		return fault.Errorf(fault.InvalidRequest, "%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}
