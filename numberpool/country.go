package numberpool

import (
	"fmt"
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
