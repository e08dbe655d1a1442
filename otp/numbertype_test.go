package otp

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"flashotp/apps"
)

// TestClassifyAsLibrary checks classify against the library, number by number: every example number of
// every type of every region and non-geographic calling code, variants of each with other last digits,
// and random numbers of every length under every calling code.
func TestClassifyAsLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var numbers []string
	add := func(n *phonenumbers.PhoneNumber) {
		if n == nil {
			return
		}
		e164 := phonenumbers.Format(n, phonenumbers.E164)
		numbers = append(numbers, e164)
		for range 20 { // other last digits: mostly valid numbers of the same plan
			b := []byte(e164)
			for i := len(b) - 1 - rng.IntN(4); i < len(b) && i > 2; i++ {
				b[i] = byte('0' + rng.IntN(10))
			}
			numbers = append(numbers, string(b))
		}
	}
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			add(phonenumbers.GetExampleNumberForType(region, typ))
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for length := 4; length <= 14; length++ {
			for range 10 {
				digits := strconv.Itoa(1 + rng.IntN(9))
				for len(digits) < length {
					digits += strconv.Itoa(rng.IntN(10))
				}
				numbers = append(numbers, fmt.Sprintf("+%d%s", cc, digits))
			}
		}
	}

	byType := map[phonenumbers.PhoneNumberType]int{}
	multiRegion := 0
	for _, s := range numbers {
		num, err := phonenumbers.Parse(s, "")
		if err != nil {
			continue
		}
		wantRegion, wantType := phonenumbers.GetRegionCodeForNumber(num), phonenumbers.GetNumberType(num)
		region, typ := classify(num)
		if region != wantRegion || typ != wantType {
			t.Errorf("%s: classify gives %q, %v; the library %q, %v", s, region, typ, wantRegion, wantType)
		}
		byType[typ]++
		if len(phonenumbers.GetRegionCodesForCountryCode(int(num.GetCountryCode()))) > 1 && typ != phonenumbers.UNKNOWN {
			multiRegion++
		}
	}
	// The comparison means something only if it saw valid numbers of every kind, also of shared calling codes.
	for _, typ := range append(types, phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.UNKNOWN) {
		if byType[typ] == 0 {
			t.Errorf("no number of type %v among %d", typ, len(numbers))
		}
	}
	if multiRegion < 1000 {
		t.Errorf("only %d valid numbers of calling codes shared by several regions", multiRegion)
	}
	t.Logf("%d numbers; by type %v; %d valid of shared calling codes", len(numbers), byType, multiRegion)
}

// BenchmarkCheckRecipient measures the check of a US number (a calling code of 25 regions) and of a UK one.
func BenchmarkCheckRecipient(b *testing.B) {
	for _, n := range []string{"+14155552671", "+447911123456"} {
		b.Run(n[:3], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := checkRecipient(n, apps.App{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
