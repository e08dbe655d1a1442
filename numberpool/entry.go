package numberpool

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"flashotp/fault"
)

// Reasons for this package's errors. Each comes wrapped in a *fault.Error that carries the API's code
// (named here) and the message; an unknown pool or entry is fault.NotFound, a pool name taken
// fault.Conflict.
var (
	// ErrBadPattern is returned for a number that is not a pattern, a range or an E.164 number
	// (fault.InvalidRequest).
	ErrBadPattern = errors.New("bad number pattern")
	// ErrCodeSpace is returned when an app's numbers yield fewer distinct codes than the minimum
	// (fault.InvalidRequest).
	ErrCodeSpace = errors.New("code space too small")
	// ErrNoNumbers is returned by Pick when no entry of the app's pools serves the recipient's country
	// (fault.DestinationBlocked).
	ErrNoNumbers = errors.New("no caller ID for this destination")
	// ErrNoPool is returned by Pick for a pool the app does not draw from (fault.InvalidRequest).
	ErrNoPool = errors.New("not found")
	// ErrExhausted is returned by Pick when every number that could serve the recipient is quarantined,
	// disabled or in the recipient's cooldown (fault.Unavailable).
	ErrExhausted = errors.New("no caller ID available now")
	// ErrInvalid is returned for a pool or entry definition that does not hold; the message names the field
	// (fault.InvalidRequest).
	ErrInvalid = errors.New("invalid pool")
	// ErrInUse is returned when a change would take numbers an app needs, or touch a pool the config owns
	// (fault.Conflict).
	ErrInUse = errors.New("in use")
)

// kind of a number set.
const (
	kindPattern = iota // +44207946XXXX: X digits free
	kindRange          // +442079460000-+442079469999: every number between, same length
	kindList           // explicit numbers
)

// set is the parsed numbers of one entry: a pattern, a range or a list. Numbers are digits without '+'.
type set struct {
	kind    int
	pattern string   // kindPattern: digits and X
	lo, hi  uint64   // kindRange
	width   int      // kindRange: digit count
	list    []string // kindList
}

// parseSet parses an entry's numbers: one pattern, one range, or one or more explicit E.164 numbers.
func parseSet(numbers []string) (set, error) {
	if len(numbers) == 0 {
		return set{}, fault.Errorf(fault.InvalidRequest, "%w: no numbers", ErrBadPattern)
	}
	if len(numbers) == 1 && strings.Contains(numbers[0], "X") {
		p, err := patternDigits(numbers[0])
		if err != nil {
			return set{}, err
		}
		return set{kind: kindPattern, pattern: p}, nil
	}
	if len(numbers) == 1 && strings.Contains(numbers[0], "-") {
		a, b, _ := strings.Cut(numbers[0], "-")
		lo, err1 := e164Digits(a)
		hi, err2 := e164Digits(b)
		if err1 != nil || err2 != nil || len(lo) != len(hi) || lo > hi {
			return set{}, fault.Errorf(fault.InvalidRequest, "%w %q: want +FIRST-+LAST, same length, first not above last", ErrBadPattern, numbers[0])
		}
		l, _ := strconv.ParseUint(lo, 10, 64)
		h, _ := strconv.ParseUint(hi, 10, 64)
		return set{kind: kindRange, lo: l, hi: h, width: len(lo)}, nil
	}
	s := set{kind: kindList}
	seen := map[string]bool{}
	for _, n := range numbers {
		d, err := e164Digits(n)
		if err != nil {
			return set{}, err
		}
		if !seen[d] {
			seen[d] = true
			s.list = append(s.list, d)
		}
	}
	return s, nil
}

func e164Digits(s string) (string, error) {
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 6 || len(d) > 15 || d[0] < '1' || d[0] > '9' || strings.Trim(d, "0123456789") != "" {
		return "", fault.Errorf(fault.InvalidRequest, "%w %q: want + and 6..15 digits, first 1-9", ErrBadPattern, s)
	}
	return d, nil
}

// ValidateNumbers reports whether numbers make one entry: a pattern, a range, or a list of numbers.
func ValidateNumbers(numbers []string) error {
	_, err := parseSet(numbers)
	return err
}

// size returns how many numbers the set covers.
func (s set) size() uint64 {
	switch s.kind {
	case kindPattern:
		return uint64(math.Pow10(strings.Count(s.pattern, "X")))
	case kindRange:
		return s.hi - s.lo + 1
	}
	return uint64(len(s.list))
}

// minLen is the digit count of the set's shortest number.
func (s set) minLen() int {
	switch s.kind {
	case kindPattern:
		return len(s.pattern)
	case kindRange:
		return s.width
	}
	n := 15
	for _, d := range s.list {
		n = min(n, len(d))
	}
	return n
}

// sample draws one number of the set uniformly with crypto/rand.
func (s set) sample() (string, error) {
	switch s.kind {
	case kindPattern:
		// One uniform draw over the pattern's numbers, its decimal digits put in the X places.
		n, err := randN(s.size())
		if err != nil {
			return "", err
		}
		d := []byte(s.pattern)
		for i := len(d) - 1; i >= 0; i-- {
			if d[i] == 'X' {
				d[i] = '0' + byte(n%10)
				n /= 10
			}
		}
		return string(d), nil
	case kindRange:
		n, err := randN(s.hi - s.lo + 1)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%0*d", s.width, s.lo+n), nil
	}
	i, err := randN(uint64(len(s.list)))
	if err != nil {
		return "", err
	}
	return s.list[i], nil
}

// covers reports whether digits (no '+') is one of the set's numbers.
func (s set) covers(digits string) bool {
	switch s.kind {
	case kindPattern:
		if len(digits) != len(s.pattern) {
			return false
		}
		for i := 0; i < len(digits); i++ {
			if s.pattern[i] != 'X' && s.pattern[i] != digits[i] {
				return false
			}
		}
		return true
	case kindRange:
		n, err := strconv.ParseUint(digits, 10, 64)
		return err == nil && len(digits) == s.width && n >= s.lo && n <= s.hi
	}
	for _, d := range s.list {
		if d == digits {
			return true
		}
	}
	return false
}

// each calls f with every number of the set (digits, no '+'). Callers bound the set's size first.
func (s set) each(f func(digits string)) {
	switch s.kind {
	case kindPattern:
		free := strings.Count(s.pattern, "X")
		for n := uint64(0); n < s.size(); n++ {
			d := []byte(s.pattern)
			v := fmt.Sprintf("%0*d", free, n)
			for i, j := 0, 0; i < len(d); i++ {
				if d[i] == 'X' {
					d[i] = v[j]
					j++
				}
			}
			f(string(d))
		}
	case kindRange:
		for n := s.lo; n <= s.hi; n++ {
			f(fmt.Sprintf("%0*d", s.width, n))
		}
	default:
		for _, d := range s.list {
			f(d)
		}
	}
}

// markCodes calls mark with every code (the last codeLength digits, as a number) the set can produce, and
// reports whether that is already every code there is.
func (s set) markCodes(codeLength int, mark func(int)) (all bool) {
	full := uint64(math.Pow10(codeLength))
	switch s.kind {
	case kindPattern:
		suffix := s.pattern[len(s.pattern)-codeLength:]
		if strings.Count(suffix, "X") == codeLength {
			return true
		}
		forEach(suffix, mark)
	case kindRange:
		if s.hi-s.lo+1 >= full {
			return true
		}
		for n := s.lo; n <= s.hi; n++ {
			mark(int(n % full))
		}
	default:
		for _, d := range s.list {
			c, _ := strconv.Atoi(d[len(d)-codeLength:])
			mark(c)
		}
	}
	return false
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

// regexp returns a regular expression (without anchors) for the set's numbers in which the last
// codeLength digits are always free: it tells an app which calls to look at, never the code.
func (s set) regexp(codeLength int) string {
	var prefix string
	var lo, hi int
	switch s.kind {
	case kindPattern:
		var b strings.Builder
		for _, r := range s.pattern[:len(s.pattern)-codeLength] {
			if r == 'X' {
				b.WriteString("[0-9]")
			} else {
				b.WriteRune(r)
			}
		}
		return b.String() + "[0-9]{" + strconv.Itoa(codeLength) + "}"
	case kindRange:
		a, z := fmt.Sprintf("%0*d", s.width, s.lo), fmt.Sprintf("%0*d", s.width, s.hi)
		prefix = commonPrefix(a, z)
		lo, hi = s.width, s.width
	default:
		prefix = s.list[0]
		lo, hi = len(s.list[0]), len(s.list[0])
		for _, d := range s.list[1:] {
			prefix = commonPrefix(prefix, d)
			lo, hi = min(lo, len(d)), max(hi, len(d))
		}
	}
	if len(prefix) > lo-codeLength {
		prefix = prefix[:lo-codeLength]
	}
	rest := strconv.Itoa(lo - len(prefix))
	if hi != lo {
		rest += "," + strconv.Itoa(hi-len(prefix))
	}
	return regexp.QuoteMeta(prefix) + "[0-9]{" + rest + "}"
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// randN returns a uniform number in [0, n) from crypto/rand.
func randN(n uint64) (uint64, error) {
	if n <= 1 {
		return 0, nil
	}
	if n <= math.MaxInt64 {
		v, err := rand.Int(rand.Reader, new(big.Int).SetUint64(n))
		if err != nil {
			return 0, fmt.Errorf("crypto/rand: %w", err)
		}
		return v.Uint64(), nil
	}
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("crypto/rand: %w", err)
		}
		v := binary.BigEndian.Uint64(b[:])
		if v < math.MaxUint64-math.MaxUint64%n {
			return v % n, nil
		}
	}
}
