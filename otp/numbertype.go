package otp

import (
	"regexp"
	"slices"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// classify returns num's region and type: what phonenumbers.GetRegionCodeForNumber and
// phonenumbers.GetNumberType return, computed once, from the library's own metadata and by the library's
// own steps (getRegionCodeForNumberFromRegionList and getNumberTypeHelper, phonenumbers v1.8.1).
//
// The library builds each pattern's string ("^(?:" + pattern + ")$", some of them kilobytes long) and
// looks it up in its regex cache twice for every description it tries, and for a number of a calling code
// shared by several regions (+1) it runs its type search three times (the region, the type, the region
// again). That was 7% of the engine's CPU per send. Here every pattern is compiled once and the region
// search's type is kept. TestClassifyAsLibrary checks the answers against the library's, number by number.
func classify(num *phonenumbers.PhoneNumber) (string, phonenumbers.PhoneNumberType) {
	m := loadMetadata()
	cc := int(num.GetCountryCode())
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	if len(regions) == 0 {
		return "", phonenumbers.UNKNOWN
	}
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	if len(regions) == 1 {
		md := m.regions[regions[0]]
		if regions[0] == nonGeoRegion {
			md = m.nonGeo[cc]
		}
		return regions[0], m.numberType(nsn, md)
	}
	for _, region := range regions {
		md := m.regions[region]
		if md == nil {
			continue
		}
		if lead := md.GetLeadingDigits(); lead != "" {
			if m.regex(lead, "^(?:", ")").MatchString(nsn) {
				return region, m.numberType(nsn, md)
			}
		} else if t := m.numberType(nsn, md); t != phonenumbers.UNKNOWN {
			return region, t
		}
	}
	return "", phonenumbers.UNKNOWN
}

// nonGeoRegion is the library's region code of non-geographic calling codes (+800, +882, …).
const nonGeoRegion = "001"

// numberMetadata is the library's metadata by region and, for non-geographic calling codes, by calling
// code, with the regular expressions compiled from it so far.
type numberMetadata struct {
	regions map[string]*phonenumbers.PhoneMetadata
	nonGeo  map[int]*phonenumbers.PhoneMetadata
	res     sync.Map // "^(?:" + pattern + suffix → *regexp.Regexp
}

var loadMetadata = sync.OnceValue(func() *numberMetadata {
	m := &numberMetadata{regions: map[string]*phonenumbers.PhoneMetadata{}, nonGeo: map[int]*phonenumbers.PhoneMetadata{}}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		// The library's own embedded data: it fails the same way, and first, in its own init.
		panic("phonenumbers metadata: " + err.Error())
	}
	for _, md := range coll.GetMetadata() {
		if md.GetId() == nonGeoRegion {
			m.nonGeo[int(md.GetCountryCode())] = md
		} else {
			m.regions[md.GetId()] = md
		}
	}
	return m
})

// regex returns pattern compiled between prefix and suffix (as the library does: it is the library's
// pattern), once.
func (m *numberMetadata) regex(pattern, prefix, suffix string) *regexp.Regexp {
	key := prefix + pattern + suffix
	if re, ok := m.res.Load(key); ok {
		return re.(*regexp.Regexp)
	}
	re, _ := m.res.LoadOrStore(key, regexp.MustCompile(key))
	return re.(*regexp.Regexp)
}

// descRegex caches the compiled full-match pattern of each number description by its address: the
// metadata never changes, so its descriptions stay where they are.
var descRegex sync.Map // *phonenumbers.PhoneNumberDesc → *regexp.Regexp

// matches is the library's isNumberMatchingDesc: one of the description's possible lengths (if it lists
// any), and its national number pattern, matched whole.
func (m *numberMetadata) matches(nsn string, d *phonenumbers.PhoneNumberDesc) bool {
	if d == nil {
		return false
	}
	if len(d.PossibleLength) > 0 && !slices.Contains(d.PossibleLength, int32(len(nsn))) {
		return false
	}
	re, ok := descRegex.Load(d)
	if !ok {
		re, _ = descRegex.LoadOrStore(d, m.regex(d.GetNationalNumberPattern(), "^(?:", ")$"))
	}
	return re.(*regexp.Regexp).MatchString(nsn)
}

// numberType is the library's getNumberTypeHelper: the same descriptions, tried in the same order.
func (m *numberMetadata) numberType(nsn string, md *phonenumbers.PhoneMetadata) phonenumbers.PhoneNumberType {
	if md == nil || !m.matches(nsn, md.GetGeneralDesc()) {
		return phonenumbers.UNKNOWN
	}
	for _, d := range []struct {
		desc *phonenumbers.PhoneNumberDesc
		typ  phonenumbers.PhoneNumberType
	}{
		{md.GetPremiumRate(), phonenumbers.PREMIUM_RATE},
		{md.GetTollFree(), phonenumbers.TOLL_FREE},
		{md.GetSharedCost(), phonenumbers.SHARED_COST},
		{md.GetVoip(), phonenumbers.VOIP},
		{md.GetPersonalNumber(), phonenumbers.PERSONAL_NUMBER},
		{md.GetPager(), phonenumbers.PAGER},
		{md.GetUan(), phonenumbers.UAN},
		{md.GetVoicemail(), phonenumbers.VOICEMAIL},
	} {
		if m.matches(nsn, d.desc) {
			return d.typ
		}
	}
	same := md.GetSameMobileAndFixedLinePattern()
	if m.matches(nsn, md.GetFixedLine()) {
		if same || m.matches(nsn, md.GetMobile()) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	}
	if !same && m.matches(nsn, md.GetMobile()) {
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}
