package numberpool_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"flashotp/internal/storetest"
	"flashotp/internal/testclock"
	"flashotp/numberpool"
	"flashotp/store"
)

func newClock() *testclock.Clock {
	return testclock.New(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC))
}

// storedPool returns the record of the pool called name in db, or nil.
func storedPool(t testing.TB, db *store.DB, name string) []byte {
	t.Helper()
	var out []byte
	err := db.LoadPools(t.Context(), func(n string, v []byte) error {
		if n == name {
			out = v
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stored pools: %v", err)
	}
	return out
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// entry returns an enabled entry of numbers for any destination.
func entry(numbers ...string) numberpool.Entry {
	return numberpool.Entry{Numbers: numbers, Enabled: true}
}

// local returns an enabled entry of numbers for the given destinations.
func local(countries []string, numbers ...string) numberpool.Entry {
	return numberpool.Entry{Numbers: numbers, Countries: countries, Enabled: true}
}

// pool returns a pool of entries, defaults filled.
func pool(name string, entries ...numberpool.Entry) numberpool.Pool {
	return numberpool.Pool{Name: name, Entries: entries}.WithDefaults()
}

// fixture is a Registry over a real store, and what it takes to open it again.
type fixture struct {
	db      *store.DB
	clock   *testclock.Clock
	cfg     numberpool.Config
	configs []numberpool.Pool
	reg     *numberpool.Registry
	closed  bool // reg is closed
}

// newFixture opens a Registry over a fresh store. cfg's zero fields get: app "demo" with pool "demo",
// 4-digit codes, minimum code space 1, the store's key, the fixture's clock, a quiet log.
func newFixture(t testing.TB, cfg numberpool.Config, configPools ...numberpool.Pool) *fixture {
	t.Helper()
	f := &fixture{db: storetest.Open(t), clock: newClock(), configs: configPools}
	if cfg.Apps == nil {
		cfg.Apps = map[string][]string{"demo": {"demo"}}
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 4
	}
	if cfg.MinCodeSpace == 0 {
		cfg.MinCodeSpace = 1
	}
	if cfg.Key == nil {
		cfg.Key = f.db.Key()
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	if cfg.Log == nil {
		cfg.Log = quietLog()
	}
	f.cfg = cfg
	f.reopen(t)
	// Before the store closes (cleanups run last first).
	t.Cleanup(f.close)
	return f
}

// close closes the registry, which writes what it has not yet stored.
func (f *fixture) close() {
	if f.reg != nil && !f.closed {
		f.reg.Close()
		f.closed = true
	}
}

// reopen closes the Registry and builds a new one over the same store and config pools, as a restart does.
func (f *fixture) reopen(t testing.TB) {
	t.Helper()
	f.close()
	reg, err := numberpool.NewRegistry(t.Context(), f.cfg, f.db, f.configs)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	f.reg, f.closed = reg, false
}

// pick draws a CLI for recipient of country with 4-digit codes from the app "demo".
func (f *fixture) pick(t testing.TB, recipient, country string) numberpool.Picked {
	t.Helper()
	p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: recipient, Country: country, CodeLength: 4})
	if err != nil {
		t.Fatalf("Pick(%s, %s): %v", recipient, country, err)
	}
	return p
}

// recipient returns the i-th of many distinct US recipients.
func recipient(i int) string { return fmt.Sprintf("+1415%07d", i) }

// report returns the pool called name as Pools shows it.
func (f *fixture) report(t testing.TB, name string) numberpool.Report {
	t.Helper()
	reports, _ := f.reg.Pools()
	for _, r := range reports {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("Pools() has no pool %q", name)
	return numberpool.Report{}
}

// matches reports whether cli (with '+') is a number of the entry numbers (a pattern, a range or a list).
func matches(numbers []string, cli string) bool {
	if len(numbers) == 1 && strings.Contains(numbers[0], "X") {
		p := numbers[0]
		if len(p) != len(cli) {
			return false
		}
		for i := 0; i < len(p); i++ {
			switch {
			case p[i] == 'X':
				if cli[i] < '0' || cli[i] > '9' {
					return false
				}
			case p[i] != cli[i]:
				return false
			}
		}
		return true
	}
	if len(numbers) == 1 && strings.Contains(numbers[0], "-") {
		lo, hi, _ := strings.Cut(numbers[0], "-")
		return len(cli) == len(lo) && cli >= lo && cli <= hi
	}
	return slices.Contains(numbers, cli)
}

// One X pattern: what a pattern may and may not be.
func TestValidatePattern(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"+44207946XXXX", true},
		{"+123456", true},
		{"+12345X", true},
		{"+123456789012345", true},   // 15 digits, the E.164 maximum
		{"+1XXXXXXXXXXXXXX", true},   // 15 characters, 14 free
		{"+1234567890123456", false}, // 16 digits
		{"+12345", false},            // 5 digits
		{"", false},
		{"+", false},
		{"44207946XXXX", false},        // no plus
		{"++44207946XXXX", false},      // two pluses
		{"+0207946XXXX", false},        // leading 0
		{"+X4207946XXXX", false},       // leading X
		{"+44207946xxxx", false},       // lower-case x
		{"+44 207946XXXX", false},      // space
		{"+44-207946XXXX", false},      // dash
		{"+44207946XXX\n", false},      // newline
		{"+44207946XXX\x00", false},    // NUL
		{"+4420794６XXXX", false},       // full-width digit
		{"+44207946YYYY", false},       // other letter
		{"+44207946XXXX;tag=1", false}, // header text
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := numberpool.ValidateNumbers([]string{tt.in})
			if !tt.ok {
				if !errors.Is(err, numberpool.ErrBadPattern) {
					t.Fatalf("ValidateNumbers(%q) = %v, want ErrBadPattern", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValidateNumbers(%q): %v", tt.in, err)
			}
		})
	}
}

func TestValidateNumbers(t *testing.T) {
	tests := []struct {
		name    string
		numbers []string
		ok      bool
	}{
		{"pattern", []string{"+44207946XXXX"}, true},
		{"range", []string{"+442079460000-+442079469999"}, true},
		{"range of one", []string{"+442079460000-+442079460000"}, true},
		{"range of 15 digits", []string{"+123456789012340-+123456789012349"}, true},
		{"one number", []string{"+442079460123"}, true},
		{"list", []string{"+12025550100", "+12025550101", "+442079460123"}, true},
		{"list with a repeat", []string{"+12025550100", "+12025550100"}, true},
		{"nothing", nil, false},
		{"empty list", []string{}, false},
		{"empty string", []string{""}, false},
		{"range in the wrong order", []string{"+442079469999-+442079460000"}, false},
		{"range ends of different lengths", []string{"+44207946000-+442079469999"}, false},
		{"range without the second plus", []string{"+442079460000-442079469999"}, false},
		{"range with an X", []string{"+44207946000X-+442079469999"}, false},
		{"range with an open end", []string{"+442079460000-"}, false},
		{"range of three ends", []string{"+442079460000-+442079460005-+442079460009"}, false},
		{"range with spaces", []string{"+442079460000 - +442079469999"}, false},
		{"letters", []string{"+44207946abcd"}, false},
		{"letters in a list", []string{"+12025550100", "+1202555010a"}, false},
		{"leading 0", []string{"+0442079460000"}, false},
		{"leading 0 in a range", []string{"+0442079460000-+0442079469999"}, false},
		{"16 digits", []string{"+1234567890123456"}, false},
		{"16 digits in a range", []string{"+1234567890123450-+1234567890123456"}, false},
		{"5 digits", []string{"+12345"}, false},
		{"no plus", []string{"442079460123"}, false},
		{"pattern in a list", []string{"+44207946XXXX", "+442079460123"}, false},
		{"range in a list", []string{"+442079460000-+442079460009", "+442079460123"}, false},
		{"header text", []string{"+442079460123;tag=1"}, false},
		{"CRLF", []string{"+442079460123\r\nX: y"}, false},
		{"full-width digits", []string{"+４４２０７９４６０１２３"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := numberpool.ValidateNumbers(tt.numbers)
			if tt.ok && err != nil {
				t.Fatalf("ValidateNumbers(%q): %v", tt.numbers, err)
			}
			if !tt.ok && !errors.Is(err, numberpool.ErrBadPattern) {
				t.Fatalf("ValidateNumbers(%q) = %v, want ErrBadPattern", tt.numbers, err)
			}
		})
	}
}

// FuzzValidateNumbers: whatever an admin sends as an entry's numbers (comma-separated here), what is
// accepted is only '+', digits, X and one '-' between two numbers, and makes a pool that validates. Seeds:
// testdata/fuzz/FuzzValidateNumbers.
func FuzzValidateNumbers(f *testing.F) {
	okChars := regexp.MustCompile(`^\+[1-9][0-9X]{5,14}(-\+[1-9][0-9]{5,14})?$`)
	f.Fuzz(func(t *testing.T, s string) {
		numbers := strings.Split(s, ",")
		if err := numberpool.ValidateNumbers(numbers); err != nil {
			if !errors.Is(err, numberpool.ErrBadPattern) {
				t.Fatalf("ValidateNumbers(%q) error %v is not ErrBadPattern", numbers, err)
			}
			return
		}
		for _, n := range numbers {
			if !okChars.MatchString(n) {
				t.Fatalf("ValidateNumbers accepted %q", n)
			}
		}
		if err := pool("fuzz", entry(numbers...)).Validate(); err != nil {
			t.Fatalf("ValidateNumbers accepted %q, Pool.Validate refuses it: %v", numbers, err)
		}
	})
}

func TestCodeSpace(t *testing.T) {
	tests := []struct {
		name       string
		entries    []numberpool.Entry
		codeLength int
		want       map[string]int // destination → distinct codes
	}{
		// X patterns.
		{"4 free, length 4", []numberpool.Entry{entry("+44207946XXXX")}, 4, map[string]int{"*": 10000}},
		{"4 free, length 5: one fixed code digit", []numberpool.Entry{entry("+44207946XXXX")}, 5, map[string]int{"*": 10000}},
		{"4 free, length 8", []numberpool.Entry{entry("+44207946XXXX")}, 8, map[string]int{"*": 10000}},
		{"3 free, length 4", []numberpool.Entry{entry("+442079461XXX")}, 4, map[string]int{"*": 1000}},
		{"free digits before the code", []numberpool.Entry{entry("+4420XXXX6123")}, 4, map[string]int{"*": 1}},
		{"free digits split", []numberpool.Entry{entry("+4420XXXX61X3")}, 4, map[string]int{"*": 10}},
		{"different fixed suffix digits add up", []numberpool.Entry{entry("+44207946XXXX"), entry("+44207947XXXX")}, 6, map[string]int{"*": 20000}},
		{"different fixed code digit add up", []numberpool.Entry{entry("+442079461XXX"), entry("+442079462XXX")}, 4, map[string]int{"*": 2000}},
		{"three disjoint", []numberpool.Entry{entry("+442079461XXX"), entry("+442079462XXX"), entry("+4420794630XX")}, 4, map[string]int{"*": 2100}},
		{"same pattern twice counted once", []numberpool.Entry{entry("+44207946XXXX"), entry("+44207946XXXX")}, 4, map[string]int{"*": 10000}},
		{"same suffix, other prefix counted once", []numberpool.Entry{entry("+44207946XXXX"), entry("+44113446XXXX")}, 6, map[string]int{"*": 10000}},
		{"subset counted once", []numberpool.Entry{entry("+4420794XXXXX"), entry("+44207946XXXX")}, 6, map[string]int{"*": 100000}},
		{"partial overlap", []numberpool.Entry{entry("+44207946XXX0"), entry("+4420794600XX")}, 4, map[string]int{"*": 1000 + 100 - 10}},
		{"full code space wins", []numberpool.Entry{entry("+4420794600XX"), entry("+44207946XXXX")}, 4, map[string]int{"*": 10000}},
		{"length 8, two blocks", []numberpool.Entry{entry("+4420794XXXXX"), entry("+4411349XXXXX")}, 8, map[string]int{"*": 200000}},
		{"numbers no longer than the code give none", []numberpool.Entry{entry("+44207946XXXX"), entry("+683XXXX")}, 7, map[string]int{"*": 10000}},
		// Ranges.
		{"range of 10000, aligned: full space", []numberpool.Entry{entry("+442079460000-+442079469999")}, 4, map[string]int{"*": 10000}},
		{"range of 10000, not aligned: full space", []numberpool.Entry{entry("+442079465000-+442079474999")}, 4, map[string]int{"*": 10000}},
		{"range of 10000, 6-digit codes", []numberpool.Entry{entry("+442079465000-+442079474999")}, 6, map[string]int{"*": 10000}},
		{"range of 100", []numberpool.Entry{entry("+442079460100-+442079460199")}, 4, map[string]int{"*": 100}},
		{"range across the code's wrap", []numberpool.Entry{entry("+442079469995-+442079470004")}, 4, map[string]int{"*": 10}},
		{"range of one", []numberpool.Entry{entry("+442079460100-+442079460100")}, 4, map[string]int{"*": 1}},
		{"ranges 10000 apart share their codes", []numberpool.Entry{entry("+442079460000-+442079460099"), entry("+442079470000-+442079470099")}, 4, map[string]int{"*": 100}},
		{"overlapping ranges counted once", []numberpool.Entry{entry("+442079460000-+442079460599"), entry("+442079460500-+442079460999")}, 4, map[string]int{"*": 1000}},
		{"range inside a pattern", []numberpool.Entry{entry("+44207946XXXX"), entry("+442079460000-+442079460999")}, 4, map[string]int{"*": 10000}},
		// Lists.
		{"list of 3", []numberpool.Entry{entry("+12025550100", "+12025550101", "+442079460123")}, 4, map[string]int{"*": 3}},
		{"list with a repeat", []numberpool.Entry{entry("+12025550100", "+12025550100", "+12025550101")}, 4, map[string]int{"*": 2}},
		{"list numbers sharing a code", []numberpool.Entry{entry("+442079461234", "+442079471234", "+12025551234")}, 4, map[string]int{"*": 1}},
		{"list and range overlapping", []numberpool.Entry{entry("+442079460000-+442079460099"), entry("+442079460050", "+442079460150")}, 4, map[string]int{"*": 101}},
		// Destinations.
		{"local and general", []numberpool.Entry{local([]string{"GB"}, "+442079460001", "+442079460002", "+442079460003"), entry("+12025XXXXXX")}, 4,
			map[string]int{"GB": 3, "*": 10000}},
		{"two countries share a local entry", []numberpool.Entry{local([]string{"US", "CA"}, "+12025550100-+12025550199"), entry("+44207946XXXX")}, 4,
			map[string]int{"US": 100, "CA": 100, "*": 10000}},
		{"local entries add up", []numberpool.Entry{local([]string{"FR"}, "+33198765XXXX"), local([]string{"FR"}, "+33198766XXXX"), entry("+44207946XXXX")}, 6,
			map[string]int{"FR": 20000, "*": 10000}},
		{"only local entries", []numberpool.Entry{local([]string{"FR"}, "+3319876XXXXX")}, 4, map[string]int{"FR": 10000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", tt.entries...))
			got := f.reg.CodeSpace("demo", tt.codeLength)
			if len(got) != len(tt.want) {
				t.Errorf("CodeSpace(demo, %d) = %v, want codes %v", tt.codeLength, got, tt.want)
			}
			for dest, codes := range tt.want {
				sp := got[dest]
				bits := math.Round(math.Log2(float64(codes))*10) / 10
				if sp.Codes != codes || sp.Bits != bits {
					t.Errorf("CodeSpace(demo, %d)[%s] = %+v, want %d codes, %.1f bits", tt.codeLength, dest, sp, codes, bits)
				}
			}
		})
	}
}

// The acceptance point of docs/pools.md: one +44207946XXXX with 4-digit codes is 10,000 codes, 13.3 bits.
func TestCodeSpaceOfOnePattern(t *testing.T) {
	f := newFixture(t, numberpool.Config{MinCodeSpace: 10000}, pool("demo", entry("+44207946XXXX")))
	if got := f.reg.CodeSpace("demo", 4)["*"]; got != (numberpool.Space{Codes: 10000, Bits: 13.3}) {
		t.Errorf(`CodeSpace("demo", 4)["*"] = %+v, want 10000 codes, 13.3 bits`, got)
	}
	_, apps := f.reg.Pools()
	if len(apps) != 1 || apps[0].App != "demo" || apps[0].CodeLength != 4 || apps[0].Spaces["*"].Codes != 10000 ||
		!slices.Equal(apps[0].Pools, []string{"demo"}) {
		t.Errorf("Pools() apps = %+v, want demo with 10000 codes at 4 digits from pool demo", apps)
	}
}

// chiSquare returns the chi-square statistic of counts against a uniform expectation.
func chiSquare(counts []int) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	expected := float64(n) / float64(len(counts))
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
	}
	return chi2
}

func TestPickUniform(t *testing.T) {
	// chi-square critical value for 9 degrees of freedom at p = 0.001
	const critical = 27.88
	tests := []struct {
		name    string
		numbers []string
		n       int
	}{
		{"pattern", []string{"+44207946XXXX"}, 10000},
		{"range not aligned", []string{"+442079465000-+442079474999"}, 2000},
		{"list", func() []string {
			var l []string
			for i := range 100 {
				l = append(l, fmt.Sprintf("+3361234%04d", i*37))
			}
			return l
		}(), 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", entry(tt.numbers...)))
			counts := make([]int, 10)
			for i := range tt.n {
				p := f.pick(t, recipient(i), "US")
				if !matches(tt.numbers, p.CLI) {
					t.Fatalf("Pick returned %q, which %q does not cover", p.CLI, tt.numbers)
				}
				if p.Prefix+p.Code != p.CLI || len(p.Code) != 4 || p.Pool != "demo" || p.Entry != "e1" {
					t.Fatalf("Pick = %+v: want prefix+code = CLI, 4-digit code, pool demo, entry e1", p)
				}
				counts[p.CLI[len(p.CLI)-1]-'0']++
			}
			chi2 := chiSquare(counts)
			if chi2 > critical {
				t.Errorf("last digit counts %v: chi-square %.2f > %.2f, not uniform", counts, chi2, critical)
			}
			t.Logf("%d picks, last digits %v: chi-square %.2f (df 9, reject above %.2f)", tt.n, counts, chi2, critical)
		})
	}
}

// A recipient whose country has a local entry always gets it; others get the entries for any country.
func TestPickLocalFirst(t *testing.T) {
	const (
		gb      = "+44207946XXXX"
		general = "+12025XXXXXX"
		fr      = "+33198765XXXX"
	)
	f := newFixture(t, numberpool.Config{},
		pool("demo", local([]string{"GB"}, gb), entry(general),
			numberpool.Entry{Numbers: []string{fr}, Countries: []string{"FR"}, Enabled: false}))
	tests := []struct {
		country   string
		want      string // the entry's numbers
		wantEntry string
	}{
		{"GB", gb, "e1"},
		{"US", general, "e2"},
		{"DE", general, "e2"},
		// FR's only local entry is disabled: FR recipients get the general entry rather than nothing.
		{"FR", general, "e2"},
	}
	n := 0
	for _, tt := range tests {
		t.Run(tt.country, func(t *testing.T) {
			for range 300 {
				n++
				p := f.pick(t, recipient(n), tt.country)
				if !matches([]string{tt.want}, p.CLI) || p.Entry != tt.wantEntry {
					t.Fatalf("%s recipient got %s of entry %s, want a number of %s (%s)", tt.country, p.CLI, p.Entry, tt.want, tt.wantEntry)
				}
			}
		})
	}
}

func TestPickWeights(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string // two disjoint entries of the same size
		n      int
		weight [2]int
	}{
		{"3:1, 10000 numbers each", "+44207946XXXX", "+44113496XXXX", 2000, [2]int{3, 1}},
		{"1:1", "+44207946XXXX", "+44113496XXXX", 2000, [2]int{1, 1}},
		{"1:4", "+442079460000-+442079469999", "+441134960000-+441134969999", 2000, [2]int{1, 4}},
		// Numbers are drawn again and again here: the weights must hold when no number is new.
		{"3:1, 100 numbers each", "+4420794600XX", "+4411349600XX", 2000, [2]int{3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := entry(tt.a), entry(tt.b)
			a.Weight, b.Weight = tt.weight[0], tt.weight[1]
			f := newFixture(t, numberpool.Config{}, pool("demo", a, b))
			inA := 0
			for i := range tt.n {
				p := f.pick(t, recipient(i), "US")
				switch {
				case matches(a.Numbers, p.CLI) && p.Entry == "e1":
					inA++
				case matches(b.Numbers, p.CLI) && p.Entry == "e2":
				default:
					t.Fatalf("Pick returned %s of entry %s, in neither entry", p.CLI, p.Entry)
				}
			}
			pa := float64(tt.weight[0]) / float64(tt.weight[0]+tt.weight[1])
			want := float64(tt.n) * pa
			sd := math.Sqrt(float64(tt.n) * pa * (1 - pa))
			if math.Abs(float64(inA)-want) > 6*sd {
				t.Errorf("%d of %d picks from the entry of weight %d, want about %.0f (weights %d:%d, sd %.0f)",
					inA, tt.n, tt.weight[0], want, tt.weight[0], tt.weight[1], sd)
			}
		})
	}
}

func TestPickAcrossEntriesBySize(t *testing.T) {
	tests := []struct {
		name       string
		big, small []string // disjoint
		smallShare float64
	}{
		{"pattern 10^3 and pattern 10^2", []string{"+442079461XXX"}, []string{"+4411349600XX"}, 100.0 / 1100},
		{"range of 1000 and range of 100", []string{"+441134960000-+441134960999"}, []string{"+442079460100-+442079460199"}, 100.0 / 1100},
		{"range of 100 and list of 10", []string{"+441134960100-+441134960199"}, []string{
			"+12025550100", "+12025550111", "+12025550122", "+12025550133", "+12025550144",
			"+12025550155", "+12025550166", "+12025550177", "+12025550188", "+12025550199",
		}, 10.0 / 110},
	}
	const n = 2000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", entry(tt.big...), entry(tt.small...)))
			inSmall := 0
			for i := range n {
				p := f.pick(t, recipient(i), "US")
				switch {
				case matches(tt.small, p.CLI):
					inSmall++
				case matches(tt.big, p.CLI):
				default:
					t.Fatalf("Pick returned %q, which neither entry covers", p.CLI)
				}
			}
			// An entry is drawn by its size: about 182 picks from the small one (sd 13); by entry alone, 1000.
			want := n * tt.smallShare
			sd := math.Sqrt(n * tt.smallShare * (1 - tt.smallShare))
			if math.Abs(float64(inSmall)-want) > 6*sd {
				t.Errorf("%d of %d picks from the small entry, want about %.0f (sd %.0f)", inSmall, n, want, sd)
			}
		})
	}
}

// TestPickOverlapUniform checks the package invariant for entries that overlap: every number covered must be
// equally likely, so a number inside both entries must not be drawn more often than one inside only the
// larger.
func TestPickOverlapUniform(t *testing.T) {
	tests := []struct {
		name         string
		outer, inner []string // inner: 100 numbers, all in outer's 1000
	}{
		{"pattern in pattern", []string{"+442079460XXX"}, []string{"+4420794600XX"}},
		{"range in pattern", []string{"+442079460XXX"}, []string{"+442079460000-+442079460099"}},
		{"list in range", []string{"+442079460000-+442079460999"}, func() []string {
			var l []string
			for i := range 100 {
				l = append(l, fmt.Sprintf("+44207946%04d", i*10))
			}
			return l
		}()},
	}
	const n = 2000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", entry(tt.outer...), entry(tt.inner...)))
			inInner := 0
			for i := range n {
				p := f.pick(t, recipient(i), "US")
				if !matches(tt.outer, p.CLI) {
					t.Fatalf("Pick returned %q, outside the union %s", p.CLI, tt.outer)
				}
				if matches(tt.inner, p.CLI) {
					inInner++
				}
			}
			// Uniform over the 1000 distinct numbers: inner holds 10%, about 200 picks (sd ≈ 13). Weighting
			// each entry by its size instead gives inner 200/1100, about 364 picks.
			if inInner > 280 || inInner < 120 {
				t.Errorf("%d of %d picks fell in the inner entry, want about %d (10%%)", inInner, n, n/10)
			}
		})
	}
}

// Picked.Pattern tells an app which calls to look at: it matches the picked CLI and every other number of
// the candidate entries, and never depends on the code.
func TestPickPattern(t *testing.T) {
	tests := []struct {
		name    string
		entries []numberpool.Entry
		country string
		others  []string // other numbers of the candidates, which the pattern must match too
		never   []string // numbers no candidate can be, which it must not match
	}{
		{"pattern", []numberpool.Entry{entry("+44207946XXXX")}, "US",
			[]string{"+442079460000", "+442079469999"}, []string{"+44207947000", "+4420794600000", "+33207946000", "+44207946123a"}},
		{"pattern with free digits before the code", []numberpool.Entry{entry("+4420XX46XXXX")}, "US",
			[]string{"+442000460000", "+442099469999"}, []string{"+442000470000", "+4420004600000"}},
		{"range", []numberpool.Entry{entry("+442079460100-+442079460199")}, "US",
			[]string{"+442079460100", "+442079460199"}, []string{"+44207946010", "+332079460100"}},
		{"range across a prefix", []numberpool.Entry{entry("+442079465000-+442079474999")}, "US",
			[]string{"+442079465000", "+442079474999"}, []string{"+442079565000", "+4420794650000"}},
		{"list", []numberpool.Entry{entry("+12025550100", "+12025550177", "+12025551234")}, "US",
			[]string{"+12025550100", "+12025550177", "+12025551234"}, []string{"+12035550100", "+120255501000"}},
		{"list of different lengths", []numberpool.Entry{entry("+6831234", "+68312345678")}, "US",
			[]string{"+6831234", "+68312345678"}, []string{"+6841234", "+683123456789"}},
		{"two entries", []numberpool.Entry{entry("+44207946XXXX"), entry("+33198765XXXX")}, "US",
			[]string{"+442079460000", "+331987659999"}, []string{"+491987650000"}},
		{"local entry only", []numberpool.Entry{local([]string{"FR"}, "+33198765XXXX"), entry("+44207946XXXX")}, "FR",
			[]string{"+331987650000"}, []string{"+442079460000"}},
		{"general entry only", []numberpool.Entry{local([]string{"FR"}, "+33198765XXXX"), entry("+44207946XXXX")}, "GB",
			[]string{"+442079460000"}, []string{"+331987650000"}},
		// A phone shows a CLI of its own country in the national form: with the national prefix, or without.
		{"national form for a GB recipient", []numberpool.Entry{entry("+44207946XXXX")}, "GB",
			[]string{"02079460000", "2079469999", "00442079460000", "442079460000"},
			[]string{"+02079460000", "002079460000", "0442079460000", "12079460000", "020794600000", "0207946000"}},
		{"no national form for a US recipient of a GB CLI", []numberpool.Entry{entry("+44207946XXXX")}, "US",
			[]string{"00442079460000"}, []string{"02079460000", "2079460000"}},
		{"national form of a NANP number", []numberpool.Entry{entry("+12025550100-+12025550199")}, "US",
			[]string{"2025550100", "12025550199"}, []string{"02025550100", "2035550100", "+2025550100"}},
		{"national prefix 8", []numberpool.Entry{entry("+7495123XXXX")}, "RU",
			[]string{"84951230000", "4951239999"}, []string{"04951230000", "884951230000"}},
		{"no national prefix", []numberpool.Entry{entry("+390612XXXXXX")}, "IT",
			[]string{"0612000000", "00390612999999"}, []string{"00612000000", "612000000"}},
		{"national form only of the recipient's calling code", []numberpool.Entry{entry("+44207946XXXX"), entry("+33198765XXXX")}, "GB",
			[]string{"02079460000", "+331987650000"}, []string{"01987650000", "0331987650000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", tt.entries...))
			for i := range 20 {
				p := f.pick(t, recipient(i), tt.country)
				re, err := regexp.Compile(p.Pattern)
				if err != nil {
					t.Fatalf("Pattern %q: %v", p.Pattern, err)
				}
				for _, s := range []string{p.CLI, strings.TrimPrefix(p.CLI, "+"), p.Prefix + otherCode(p.Code), p.Prefix[1:] + otherCode(p.Code)} {
					if !re.MatchString(s) {
						t.Errorf("Pattern %q does not match %q (picked %s)", p.Pattern, s, p.CLI)
					}
				}
				for _, s := range tt.others {
					if !re.MatchString(s) {
						t.Errorf("Pattern %q does not match %q, a number of the candidates", p.Pattern, s)
					}
				}
				for _, s := range tt.never {
					if re.MatchString(s) {
						t.Errorf("Pattern %q matches %q", p.Pattern, s)
					}
				}
				if re.MatchString(p.CLI+"x") || re.MatchString("x"+p.CLI) {
					t.Errorf("Pattern %q is not anchored", p.Pattern)
				}
			}
		})
	}
}

// otherCode returns a code of the same length with every digit changed.
func otherCode(code string) string {
	b := []byte(code)
	for i := range b {
		b[i] = '0' + (b[i]-'0'+5)%10
	}
	return string(b)
}
