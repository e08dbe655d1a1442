// Package numberpool owns the caller IDs (CLIs) flash calls present: it parses the X-wildcard patterns of
// the configured pools, draws a CLI uniformly with crypto/rand, derives the code from its last digits and
// accounts for the code space each app really has.
//
// Invariant: every CLI a Pool returns matches one of its patterns, and every number a pattern covers is
// equally likely to be drawn.
package numberpool

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Errors returned by this package.
var (
	// ErrBadPattern is returned by ParsePattern for anything but "+", digits and X wildcards.
	ErrBadPattern = errors.New("bad number pattern")
	// ErrCodeSpace is returned by New when the patterns yield fewer distinct codes than the minimum.
	ErrCodeSpace = errors.New("code space too small")
)

// Pattern is one E.164 number pattern whose X digits are free, e.g. +44207946XXXX.
type Pattern struct {
	text string // without the leading '+'
	free int    // number of X digits
}

// ParsePattern parses "+<digits and X>", at most 15 digits long as E.164 allows.
func ParsePattern(s string) (Pattern, error) {
	body, ok := strings.CutPrefix(s, "+")
	if !ok || len(body) < 6 || len(body) > 15 || body[0] < '1' || body[0] > '9' {
		return Pattern{}, fmt.Errorf("%w %q: want + and 6..15 digits or X, first digit 1-9", ErrBadPattern, s)
	}
	p := Pattern{text: body}
	for _, r := range body {
		switch {
		case r == 'X':
			p.free++
		case r < '0' || r > '9':
			return Pattern{}, fmt.Errorf("%w %q: only digits and X", ErrBadPattern, s)
		}
	}
	return p, nil
}

// String returns the pattern as written, with its '+'.
func (p Pattern) String() string { return "+" + p.text }

// Size returns how many numbers the pattern covers.
func (p Pattern) Size() float64 { return math.Pow10(p.free) }

// Pool draws CLIs for one app from its patterns.
type Pool struct {
	patterns   []Pattern
	codeLength int
	sizes      []*big.Int // cumulative sizes, for a uniform draw across patterns
	total      *big.Int
}

// New builds a pool of the patterns for codes of codeLength digits. It fails with ErrCodeSpace, naming the
// space it has, if the patterns give fewer than minCodeSpace distinct codes.
func New(patterns []string, codeLength, minCodeSpace int) (*Pool, error) {
	p := &Pool{codeLength: codeLength, total: new(big.Int)}
	for _, s := range patterns {
		pat, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		if len(pat.text) <= codeLength {
			return nil, fmt.Errorf("%w %q: shorter than code length %d plus a prefix", ErrBadPattern, s, codeLength)
		}
		p.patterns = append(p.patterns, pat)
		p.total.Add(p.total, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(pat.free)), nil))
		p.sizes = append(p.sizes, new(big.Int).Set(p.total))
	}
	if len(p.patterns) == 0 {
		return nil, fmt.Errorf("%w: no patterns", ErrBadPattern)
	}
	if space := p.CodeSpace(); space < minCodeSpace {
		return nil, fmt.Errorf("%w: %d distinct codes, need at least %d", ErrCodeSpace, space, minCodeSpace)
	}
	return p, nil
}

// CodeLength returns the number of trailing CLI digits that form the code.
func (p *Pool) CodeLength() int { return p.codeLength }

// CodeSpace returns the number of distinct codes the pool can produce: the size of the union of the
// patterns' last CodeLength digits.
func (p *Pool) CodeSpace() int {
	full := int(math.Pow10(p.codeLength))
	suffixes := map[string]bool{}
	for _, pat := range p.patterns {
		suf := pat.text[len(pat.text)-p.codeLength:]
		if strings.Count(suf, "X") == p.codeLength {
			return full
		}
		suffixes[suf] = true
	}
	if len(suffixes) == 1 {
		for s := range suffixes {
			return int(math.Pow10(strings.Count(s, "X")))
		}
	}
	// Overlapping suffix patterns: count the union exactly. codeLength is at most 8, so at most 10^8 bits.
	seen := make([]uint64, full/64+1)
	count := 0
	for suf := range suffixes {
		forEach(suf, func(n int) {
			if seen[n/64]&(1<<(n%64)) == 0 {
				seen[n/64] |= 1 << (n % 64)
				count++
			}
		})
	}
	return count
}

// forEach calls f with every number the digit pattern pat covers.
func forEach(pat string, f func(int)) {
	var rec func(i, n int)
	rec = func(i, n int) {
		if i == len(pat) {
			f(n)
			return
		}
		if pat[i] != 'X' {
			rec(i+1, n*10+int(pat[i]-'0'))
			return
		}
		for d := 0; d < 10; d++ {
			rec(i+1, n*10+d)
		}
	}
	rec(0, 0)
}

// Pick draws a CLI uniformly from all the numbers the pool covers and returns it in E.164 with '+'.
//
// A pattern is chosen in proportion to its size and a number drawn from it; a number that k patterns
// cover is then kept with probability 1/k (else drawn again), so overlapping patterns do not make the
// numbers they share more likely.
func (p *Pool) Pick() (string, error) {
	for {
		cli, err := p.pick()
		if err != nil {
			return "", err
		}
		k := 0
		for _, pat := range p.patterns {
			if pat.covers(cli[1:]) {
				k++
			}
		}
		if k <= 1 {
			return cli, nil
		}
		r, err := rand.Int(rand.Reader, big.NewInt(int64(k)))
		if err != nil {
			return "", fmt.Errorf("pick cli: %w", err)
		}
		if r.Sign() == 0 {
			return cli, nil
		}
	}
}

// covers reports whether the digits (without '+') are one of the pattern's numbers.
func (p Pattern) covers(digits string) bool {
	if len(digits) != len(p.text) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if p.text[i] != 'X' && p.text[i] != digits[i] {
			return false
		}
	}
	return true
}

func (p *Pool) pick() (string, error) {
	n, err := rand.Int(rand.Reader, p.total)
	if err != nil {
		return "", fmt.Errorf("pick cli: %w", err)
	}
	i := 0
	for p.sizes[i].Cmp(n) <= 0 {
		i++
	}
	pat := p.patterns[i]
	var b strings.Builder
	b.Grow(len(pat.text) + 1)
	b.WriteByte('+')
	var digit [1]byte
	for j := 0; j < len(pat.text); j++ {
		if pat.text[j] != 'X' {
			b.WriteByte(pat.text[j])
			continue
		}
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", fmt.Errorf("pick cli: %w", err)
		}
		digit[0] = '0' + byte(d.Int64())
		b.Write(digit[:])
	}
	return b.String(), nil
}

// Split returns the CLI without its code digits (what a client may be shown) and the code.
func Split(cli string, codeLength int) (prefix, code string) {
	if len(cli) <= codeLength {
		return "", cli
	}
	return cli[:len(cli)-codeLength], cli[len(cli)-codeLength:]
}
