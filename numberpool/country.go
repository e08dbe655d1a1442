package numberpool

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// countryHints names the right code for codes people write that ISO 3166-1 has not assigned to the
// country they mean (UK and EL are only "exceptionally reserved"; a recipient's country is never one).
var countryHints = map[string]string{"UK": "GB", "EL": "GR"}

// CheckCountry returns an error, saying what to write instead, unless c is an ISO 3166-1 alpha-2 region
// code that github.com/nyaruka/phonenumbers knows: the codes a recipient's country is derived as, so the
// only ones that can ever match one. Pool entries' countries and apps' allowed_countries both use it, so
// a code one accepts the other accepts too.
func CheckCountry(c string) error {
	if phonenumbers.GetSupportedRegions()[c] {
		return nil
	}
	hint := ""
	if right, ok := countryHints[strings.ToUpper(c)]; ok {
		hint = fmt.Sprintf(" (%s is not the code of any country's numbers; did you mean %s?)", c, right)
	} else if up := strings.ToUpper(c); up != c && phonenumbers.GetSupportedRegions()[up] {
		hint = fmt.Sprintf(" (write it in capitals: %s)", up)
	}
	return fmt.Errorf("want an ISO 3166-1 alpha-2 country code such as GB or US, got %q%s", c, hint)
}

// cliPattern returns an anchored regular expression matching every CLI of cands, with any code, as the call
// log of a phone in country (the recipient's) may show it: E.164 with "+", "00" or nothing before it and,
// for the CLIs of country's own calling code, the national form: its national prefix (GB's 0, Russia's 8;
// optional, since some phones leave it out) and the national number. Verify takes all of these forms.
func cliPattern(cands []candidate, codeLength int, country string) string {
	cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(country)) // "0" for no known country
	var e164, national []string
	for _, c := range cands {
		re := c.s().regexp(codeLength)
		e164 = append(e164, re)
		// re starts with its numbers' fixed digits: with cc among them, every number is of that calling
		// code (calling codes are prefix-free), and what follows is the national number.
		if rest, ok := strings.CutPrefix(re, cc); ok && cc != "0" {
			national = append(national, rest)
		}
	}
	alternatives := func(parts []string) string {
		sort.Strings(parts)
		return "(?:" + strings.Join(slices.Compact(parts), "|") + ")"
	}
	p := `(?:\+|00)?` + alternatives(e164)
	if len(national) > 0 {
		p += "|"
		if ndd := phonenumbers.GetNddPrefixForRegion(country, true); ndd != "" {
			p += "(?:" + regexp.QuoteMeta(ndd) + ")?"
		}
		p += alternatives(national)
	}
	return "^(?:" + p + ")$"
}
