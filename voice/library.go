package voice

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
)

// SampleRate is the prompts' rate: G.711's 8000 samples a second, one byte each.
const SampleRate = 8000

// Silence is a mu-law byte of silence (linear 0).
const Silence = 0xFF

// The clips of a locale: the ten digits, then the two phrases.
const (
	Intro = "intro" // "Your verification code is"
	Again = "again" // "Again:"
)

// clipNames are the files every locale must have, "<name>.ul".
var clipNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", Intro, Again}

// Bounds on a clip's length, so that a truncated or runaway recording is refused at load.
const (
	minClip       = 100 * time.Millisecond
	maxDigitClip  = 3 * time.Second
	maxPhraseClip = 8 * time.Second
	// minPeak is the least peak level (linear 16-bit) a clip must reach: below it, a recording is silent
	// or not mu-law at all.
	minPeak = 1000
)

// The silences Prompt puts between clips: before the first, after the intro, between digits, before
// "again", and after the last. Digits are spaced well apart so that each is heard on its own.
const (
	leadSilence   = 200 * time.Millisecond
	introGap      = 400 * time.Millisecond
	digitGap      = 250 * time.Millisecond
	againGap      = 700 * time.Millisecond
	trailSilence  = 300 * time.Millisecond
	maxCodeDigits = 16
)

// Errors returned by Prompt.
var (
	// ErrBadCode is returned for a code that is not 1..16 digits.
	ErrBadCode = errors.New("voice: code must be 1..16 digits")
)

//go:embed prompts
var builtinFS embed.FS

var (
	builtinOnce sync.Once
	builtin     *Library
)

// Builtin returns the prompts built into the binary (scripts/prompts.sh): en, es, pt, fr, de and hi.
func Builtin() *Library {
	builtinOnce.Do(func() {
		sub, err := fs.Sub(builtinFS, "prompts")
		if err == nil {
			builtin, err = Load(sub)
		}
		if err != nil {
			panic("voice: built-in prompts: " + err.Error()) // a broken build; TestBuiltin catches it
		}
	})
	return builtin
}

// Library is a set of prompts per locale. It is read-only once loaded and safe for concurrent use.
type Library struct {
	locales []string // as the directories name them, the default (en, else the first) first
	matcher language.Matcher
	clips   map[string]map[string][]byte // locale → clip name → mu-law samples

	decodeOnce sync.Once
	refs       map[string]map[string]*ref // Decode's references, made at its first use
}

// LoadDir loads the prompts in dir (<dir>/<locale>/<name>.ul), as Load does.
func LoadDir(dir string) (*Library, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("prompts: %s is not a directory", dir)
	}
	return Load(os.DirFS(dir))
}

// Load loads the prompts of fsys: one directory per locale, named by its BCP 47 tag (en, pt-BR), each
// with 0.ul … 9.ul, intro.ul and again.ul in raw 8 kHz G.711 mu-law. Every clip is checked: present, not a
// WAV file, between 100 ms and 3 s long (a phrase: 8 s), and not silent. The locale en, when there, is
// the fallback of locales no clip set matches; else the first in name order.
func Load(fsys fs.FS) (*Library, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	l := &Library{clips: map[string]map[string][]byte{}}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		name := e.Name()
		if _, err := language.Parse(name); err != nil {
			errs = append(errs, fmt.Errorf("prompts: directory %q is not a BCP 47 locale", name))
			continue
		}
		set := map[string][]byte{}
		for _, c := range clipNames {
			p := path.Join(name, c+".ul")
			b, err := fs.ReadFile(fsys, p)
			if err == nil {
				err = checkClip(c, b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("prompts: %s: %w", p, err))
				continue
			}
			set[c] = b
		}
		l.clips[name] = set
		l.locales = append(l.locales, name)
	}
	if len(l.locales) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("prompts: no locale directories (want <locale>/0.ul … 9.ul, intro.ul, again.ul)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.Sort(l.locales)
	if i := slices.Index(l.locales, "en"); i > 0 {
		l.locales = slices.Insert(slices.Delete(l.locales, i, i+1), 0, "en")
	}
	tags := make([]language.Tag, len(l.locales))
	for i, loc := range l.locales {
		tags[i] = language.MustParse(loc)
	}
	l.matcher = language.NewMatcher(tags)
	return l, nil
}

// checkClip says what is wrong with the samples b of the clip named name.
func checkClip(name string, b []byte) error {
	if bytes.HasPrefix(b, []byte("RIFF")) || bytes.HasPrefix(b, []byte(".snd")) {
		return errors.New("a WAV or AU file; want raw 8 kHz mu-law (sox in.wav -r 8000 -c 1 -e mu-law -t ul out.ul)")
	}
	d := Duration(b)
	most := maxDigitClip
	if name == Intro || name == Again {
		most = maxPhraseClip
	}
	if d < minClip || d > most {
		return fmt.Errorf("%s long, want %s..%s of raw 8 kHz mu-law", d, minClip, most)
	}
	var peak int
	for _, s := range b {
		v := int(mulawToLinear[s])
		peak = max(peak, v, -v)
	}
	if peak < minPeak {
		return fmt.Errorf("silent (peak %d of 32767): want speech in raw 8 kHz mu-law", peak)
	}
	return nil
}

// Locales returns the locales the library has, the fallback first.
func (l *Library) Locales() []string { return slices.Clone(l.locales) }

// Match returns the library's locale that serves locale (a BCP 47 tag) best: the same language (pt-BR for
// pt, en for en-GB), else the fallback (en, where the library has it).
func (l *Library) Match(locale string) string {
	t, err := language.Parse(locale)
	if err != nil {
		return l.locales[0]
	}
	_, i, conf := l.matcher.Match(t)
	if conf == language.No {
		return l.locales[0]
	}
	return l.locales[i]
}

// Prompt returns the spoken prompt of code (digits) in the locale that matches locale best: "intro 1 2 3
// 4 5 6, again 1 2 3 4 5 6", as 8 kHz mu-law with silences between the clips.
func (l *Library) Prompt(locale, code string) ([]byte, error) {
	if len(code) == 0 || len(code) > maxCodeDigits {
		return nil, ErrBadCode
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return nil, ErrBadCode
		}
	}
	set := l.clips[l.Match(locale)]
	out := make([]byte, 0, promptLen(set, code))
	out = appendSilence(out, leadSilence)
	out = append(out, set[Intro]...)
	for round := 0; round < 2; round++ {
		if round == 1 {
			out = appendSilence(out, againGap)
			out = append(out, set[Again]...)
		}
		out = appendSilence(out, introGap)
		for i, c := range code {
			if i > 0 {
				out = appendSilence(out, digitGap)
			}
			out = append(out, set[string(c)]...)
		}
	}
	return appendSilence(out, trailSilence), nil
}

// promptLen is the number of samples Prompt makes for code from set.
func promptLen(set map[string][]byte, code string) int {
	n := samples(leadSilence) + len(set[Intro]) + samples(againGap) + len(set[Again]) + 2*samples(introGap) + samples(trailSilence)
	for _, c := range code {
		n += 2 * len(set[string(c)])
	}
	return n + 2*(len(code)-1)*samples(digitGap)
}

// MaxDuration returns how long the longest prompt of a digits-long code lasts in the locale that matches
// locale: what a call that plays it once may take after the answer.
func (l *Library) MaxDuration(locale string, digits int) time.Duration {
	set := l.clips[l.Match(locale)]
	longest := "0"
	for c := '1'; c <= '9'; c++ {
		if len(set[string(c)]) > len(set[longest]) {
			longest = string(c)
		}
	}
	return samplesDuration(promptLen(set, strings.Repeat(longest, max(digits, 1))))
}

// Duration returns how long 8 kHz G.711 audio of len(audio) samples lasts.
func Duration(audio []byte) time.Duration { return samplesDuration(len(audio)) }

func samplesDuration(n int) time.Duration { return time.Duration(n) * time.Second / SampleRate }

func samples(d time.Duration) int { return int(d * SampleRate / time.Second) }

func appendSilence(b []byte, d time.Duration) []byte {
	for range samples(d) {
		b = append(b, Silence)
	}
	return b
}
