package numberpool_test

import (
	"errors"
	"strings"
	"testing"

	"flashotp/numberpool"
)

// matches reports whether cli is covered by the pattern: same length, same fixed digits, a digit at every X.
func matches(pattern, cli string) bool {
	if len(pattern) != len(cli) {
		return false
	}
	for i := 0; i < len(pattern); i++ {
		switch p, c := pattern[i], cli[i]; {
		case p == 'X':
			if c < '0' || c > '9' {
				return false
			}
		case p != c:
			return false
		}
	}
	return true
}

// pickN draws n CLIs from p.
func pickN(t *testing.T, p *numberpool.Pool, n int) []string {
	t.Helper()
	clis := make([]string, n)
	for i := range clis {
		cli, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		clis[i] = cli
	}
	return clis
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		size float64
	}{
		{"+44207946XXXX", true, 1e4},
		{"+123456", true, 1},
		{"+12345X", true, 10},
		{"+123456789012345", true, 1},     // 15 digits, the E.164 maximum
		{"+1XXXXXXXXXXXXXX", true, 1e14},  // 15 characters, 14 free
		{"+1234567890123456", false, 0},   // 16 digits
		{"+12345", false, 0},              // 5 digits
		{"", false, 0},                    // empty
		{"+", false, 0},                   // only the plus
		{"44207946XXXX", false, 0},        // no plus
		{"++44207946XXXX", false, 0},      // two pluses
		{"+0207946XXXX", false, 0},        // leading 0
		{"+X4207946XXXX", false, 0},       // leading X
		{"+44207946xxxx", false, 0},       // lower-case x
		{"+44 207946XXXX", false, 0},      // space
		{"+44-207946XXXX", false, 0},      // dash
		{"+44207946XXX\n", false, 0},      // newline
		{"+44207946XXX\x00", false, 0},    // NUL
		{"+4420794６XXXX", false, 0},       // full-width digit
		{"+44207946YYYY", false, 0},       // other letter
		{"+44207946XXXX;tag=1", false, 0}, // header text
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := numberpool.ParsePattern(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParsePattern(%q) = %v, want an error", tt.in, p)
				}
				if !errors.Is(err, numberpool.ErrBadPattern) {
					t.Errorf("error %v is not ErrBadPattern", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.in, err)
			}
			if p.String() != tt.in {
				t.Errorf("String() = %q, want %q", p.String(), tt.in)
			}
			if p.Size() != tt.size {
				t.Errorf("Size() = %v, want %v", p.Size(), tt.size)
			}
		})
	}
}

func TestCodeSpace(t *testing.T) {
	tests := []struct {
		name       string
		patterns   []string
		codeLength int
		want       int
	}{
		{"4 free, length 4", []string{"+44207946XXXX"}, 4, 10000},
		{"4 free, length 5: one fixed code digit", []string{"+44207946XXXX"}, 5, 10000},
		{"4 free, length 6: two fixed code digits", []string{"+44207946XXXX"}, 6, 10000},
		{"4 free, length 8", []string{"+44207946XXXX"}, 8, 10000},
		{"3 free, length 4", []string{"+442079461XXX"}, 4, 1000},
		{"free digits before the code", []string{"+4420XXXX6123"}, 4, 1},
		{"free digits split", []string{"+4420XXXX61X3"}, 4, 10},
		{"different fixed suffix digits add up", []string{"+44207946XXXX", "+44207947XXXX"}, 6, 20000},
		{"different fixed code digit add up", []string{"+442079461XXX", "+442079462XXX"}, 4, 2000},
		{"three disjoint", []string{"+442079461XXX", "+442079462XXX", "+4420794630XX"}, 4, 2100},
		{"same pattern twice counted once", []string{"+44207946XXXX", "+44207946XXXX"}, 4, 10000},
		{"same suffix, other prefix counted once", []string{"+44207946XXXX", "+44113446XXXX"}, 6, 10000},
		{"same code suffix, other prefix", []string{"+442079461XXX", "+441134961XXX"}, 4, 1000},
		{"subset counted once", []string{"+4420794XXXXX", "+44207946XXXX"}, 6, 100000},
		{"subset counted once, fixed digits", []string{"+442079460XXX", "+4420794600XX"}, 4, 1000},
		{"partial overlap", []string{"+44207946XXX0", "+4420794600XX"}, 4, 1000 + 100 - 10},
		{"full code space wins", []string{"+4420794600XX", "+44207946XXXX"}, 4, 10000},
		{"length 8, two blocks", []string{"+4420794XXXXX", "+4411349XXXXX"}, 8, 200000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := numberpool.New(tt.patterns, tt.codeLength, 1)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := p.CodeSpace(); got != tt.want {
				t.Errorf("CodeSpace() = %d, want %d", got, tt.want)
			}
			if got := p.CodeLength(); got != tt.codeLength {
				t.Errorf("CodeLength() = %d, want %d", got, tt.codeLength)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name         string
		patterns     []string
		codeLength   int
		minCodeSpace int
		wantErr      error // nil: New must succeed
	}{
		{"code space exactly the minimum", []string{"+44207946XXXX"}, 4, 10000, nil},
		{"code space below the minimum", []string{"+44207946XXXX"}, 4, 100000, numberpool.ErrCodeSpace},
		{"longer code, same free digits", []string{"+44207946XXXX"}, 6, 10001, numberpool.ErrCodeSpace},
		{"two patterns reach the minimum", []string{"+44207946XXXX", "+44207947XXXX"}, 6, 20000, nil},
		{"overlap does not reach the minimum", []string{"+44207946XXXX", "+44113446XXXX"}, 6, 20000, numberpool.ErrCodeSpace},
		{"no patterns", nil, 4, 1, numberpool.ErrBadPattern},
		{"bad pattern", []string{"+44207946XXXX", "+44abc"}, 4, 1, numberpool.ErrBadPattern},
		{"pattern not longer than the code", []string{"+123456"}, 6, 1, numberpool.ErrBadPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := numberpool.New(tt.patterns, tt.codeLength, tt.minCodeSpace)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if p == nil {
					t.Fatal("New returned a nil pool and no error")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			if p != nil {
				t.Errorf("New returned a pool with its error")
			}
		})
	}
}

func TestPickUniform(t *testing.T) {
	const (
		pattern = "+44207946XXXX"
		n       = 10000
		// chi-square critical value for 9 degrees of freedom at p = 0.001
		critical = 27.88
	)
	p, err := numberpool.New([]string{pattern}, 4, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var counts [10]int
	for _, cli := range pickN(t, p, n) {
		if !matches(pattern, cli) {
			t.Fatalf("Pick returned %q, which %s does not cover", cli, pattern)
		}
		counts[cli[len(cli)-1]-'0']++
	}
	expected := float64(n) / 10
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
	}
	if chi2 > critical {
		t.Errorf("last digit counts %v: chi-square %.2f > %.2f, not uniform", counts, chi2, critical)
	}
}

func TestPickAcrossPatternsBySize(t *testing.T) {
	const (
		big   = "+44207946XXXX" // 10^4 numbers
		small = "+4411349600XX" // 10^2 numbers, disjoint from big
		n     = 20000
	)
	p, err := numberpool.New([]string{big, small}, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	var inBig, inSmall int
	for _, cli := range pickN(t, p, n) {
		switch {
		case matches(big, cli):
			inBig++
		case matches(small, cli):
			inSmall++
		default:
			t.Fatalf("Pick returned %q, which neither pattern covers", cli)
		}
	}
	// Expected about 198 in the small pattern (n·100/10100, sd ≈ 14): the bounds are 7 sd wide.
	if inSmall < 100 || inSmall > 300 {
		t.Errorf("%d picks from %s and %d from %s: want about 100:1", inBig, big, inSmall, small)
	}
}

// TestPickOverlapUniform checks the package invariant for a pool whose patterns overlap (as an app whose
// pools share a range does): every number covered must be equally likely, so a number inside both patterns
// must not be drawn more often than one inside only the larger.
func TestPickOverlapUniform(t *testing.T) {
	const (
		outer = "+44207946XXXX" // 10^4 numbers
		inner = "+4420794600XX" // 10^2 numbers, all also in outer
		n     = 20000
	)
	p, err := numberpool.New([]string{outer, inner}, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	inInner := 0
	for _, cli := range pickN(t, p, n) {
		if !matches(outer, cli) {
			t.Fatalf("Pick returned %q, outside the union %s", cli, outer)
		}
		if matches(inner, cli) {
			inInner++
		}
	}
	// Uniform over the 10^4 distinct numbers: inner holds 1%, about 200 picks (sd ≈ 14). Weighting each
	// pattern by its size instead gives inner about 2%, about 396 picks.
	if inInner > 300 {
		t.Errorf("%d of %d picks fell in %s, want about %d (1%%): numbers in both patterns are favoured",
			inInner, n, inner, n/100)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		cli        string
		codeLength int
		prefix     string
		code       string
	}{
		{"+442079461234", 4, "+44207946", "1234"},
		{"+442079461234", 6, "+442079", "461234"},
		{"442079461234", 4, "44207946", "1234"},
		{"+442079461234", 0, "+442079461234", ""},
		{"12345", 4, "1", "2345"},
		{"1234", 4, "", "1234"},
		{"123", 4, "", "123"},
		{"", 4, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.cli+"/"+strings.Repeat("d", tt.codeLength), func(t *testing.T) {
			prefix, code := numberpool.Split(tt.cli, tt.codeLength)
			if prefix != tt.prefix || code != tt.code {
				t.Errorf("Split(%q, %d) = %q, %q; want %q, %q", tt.cli, tt.codeLength, prefix, code, tt.prefix, tt.code)
			}
			if prefix+code != tt.cli {
				t.Errorf("prefix+code = %q, want %q", prefix+code, tt.cli)
			}
		})
	}
}
