// Package numberpool owns the caller IDs (CLIs) flash calls present. Its pools group entries (X patterns
// like +44207946XXXX, ranges, lists of numbers) with the destinations and trunks they may serve; its
// Registry draws CLIs with crypto/rand (local numbers first, cooldown per recipient, quarantine of rejected
// numbers), derives codes from their last digits, accounts for the code space each app really has, and
// takes live changes, kept in the store.
//
// Invariants: every CLI drawn belongs to an enabled, unquarantined entry that may serve the recipient;
// within the candidate entries every number is equally likely, times its entry's weight; no app is ever
// left with fewer distinct codes than the minimum for a destination it serves.
package numberpool

import (
	"fmt"
	"strings"
)

// patternDigits checks an X pattern ("+<digits and X>", 6 to 15 long as E.164 allows, first digit 1-9)
// and returns it without its '+'.
func patternDigits(s string) (string, error) {
	body, ok := strings.CutPrefix(s, "+")
	if !ok || len(body) < 6 || len(body) > 15 || body[0] < '1' || body[0] > '9' {
		return "", fmt.Errorf("%w %q: want + and 6..15 digits or X, first digit 1-9", ErrBadPattern, s)
	}
	if strings.Trim(body, "0123456789X") != "" {
		return "", fmt.Errorf("%w %q: only digits and X", ErrBadPattern, s)
	}
	return body, nil
}
