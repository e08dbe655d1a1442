package templates

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Errors of Check, CheckLocale and Render.
var (
	// ErrLocale is returned for a locale that is not a well-formed BCP 47 tag of a known language ("zz",
	// "en_", "123"); the API answers it 400 invalid_request naming locale.
	ErrLocale = errors.New("want a BCP 47 language tag such as en, pt-BR or hi-IN")
	// ErrNoCode is returned by Check for a template whose output does not hold the code it is given.
	ErrNoCode = errors.New("does not print {{.Code}}")
	// ErrTemplate is returned by Check for a template that does not parse, uses something not allowed (a
	// field other than .Code, .App and .Minutes, range, define, template, a function outside the
	// comparisons, len, print and println), runs into an error, writes more than MaxOutput bytes, or is too long.
	ErrTemplate = errors.New("not a usable template")
	// ErrChannel is returned for a channel that has no text templates (flashcall, voice, inbound).
	ErrChannel = errors.New("has no text templates")
	// ErrNoTemplate is returned by Render when no template of the channel matches the locale, its fallback
	// or en (a channel without built-in templates whose app has none that match).
	ErrNoTemplate = errors.New("no template for this locale")
)

// Data is what a template sees.
type Data struct {
	Code    string // the verification's code
	App     string // the app's name, as the recipient should read it (the app's ID)
	Minutes int    // the verification's TTL in whole minutes (MinutesOf)
}

// Limits on a template's text and on what it writes. An email's HTML body has room for markup; its subject
// is one short line.
const (
	MaxText       = 2048  // bytes of template source
	MaxOutput     = 4096  // bytes a template may write
	MaxHTMLText   = 16384 // bytes of an email_html template's source
	MaxHTMLOutput = 32768 // bytes an email_html template may write
	MaxSubject    = 255   // bytes an email_subject template may write
)

// MinutesOf returns d in whole minutes, rounded up and at least 1, for Data.Minutes: a code valid for 90
// seconds "expires in 2 minutes", never in 1.
func MinutesOf(d time.Duration) int {
	m := int((d + time.Minute - 1) / time.Minute)
	return max(m, 1)
}

// Channels returns the channels that have text templates, sorted.
func Channels() []string { return []string{ChannelEmail, ChannelSMS, ChannelWhatsApp} }

// HasTemplates reports whether channel is one whose deliveries are text made from templates.
func HasTemplates(channel string) bool { return slices.Contains(Channels(), channel) }

// Keys returns the keys channel's templates have in an app's templates: the channel's own (its text), and
// for email its subject and HTML body too (KeyEmailSubject, KeyEmailHTML).
func Keys(channel string) []string {
	if channel == ChannelEmail {
		return []string{ChannelEmail, KeyEmailHTML, KeyEmailSubject}
	}
	return []string{channel}
}

// ChannelOf returns the channel whose templates key holds: email for email_subject and email_html, key
// itself otherwise.
func ChannelOf(key string) string {
	if key == KeyEmailSubject || key == KeyEmailHTML {
		return ChannelEmail
	}
	return key
}

// IsKey reports whether key names templates: a channel with text templates, or a part of an email.
func IsKey(key string) bool { return HasTemplates(ChannelOf(key)) }

// Locales returns the locales key (a channel, or an email's part) has built-in templates for, sorted.
func Locales(key string) []string { return slices.Sorted(maps.Keys(builtin[key])) }

// Builtin returns the built-in template of key (a channel, or an email's part) and locale (exactly as
// Locales names it) and whether there is one.
func Builtin(key, locale string) (string, bool) {
	text, ok := builtin[key][locale]
	return text, ok
}

// kind is how a key's templates are parsed, run and checked.
type kind int

const (
	kindText    kind = iota // text/template; prints the code
	kindSubject             // text/template; one line, need not print the code
	kindHTML                // html/template (the data escaped for HTML); prints the code
)

func kindOf(key string) kind {
	switch key {
	case KeyEmailSubject:
		return kindSubject
	case KeyEmailHTML:
		return kindHTML
	}
	return kindText
}

// limits returns the bytes of source and of output a template of k may have.
func (k kind) limits() (text, output int) {
	switch k {
	case kindHTML:
		return MaxHTMLText, MaxHTMLOutput
	case kindSubject:
		return MaxText, MaxSubject
	}
	return MaxText, MaxOutput
}

// CheckLocale returns an error wrapping ErrLocale unless tag is a well-formed BCP 47 tag of a known
// language (an underscore for the hyphen is accepted: en_US).
func CheckLocale(tag string) error {
	_, err := parseLocale(tag)
	return err
}

func parseLocale(s string) (language.Tag, error) {
	if len(s) > 64 {
		return language.Und, fmt.Errorf("%q...: %w", s[:16], ErrLocale)
	}
	t, err := language.Parse(s)
	if err != nil {
		return language.Und, fmt.Errorf("%q: %w", s, ErrLocale)
	}
	return t, nil
}

// samples are the data Check runs a template with: two different codes (of the shortest and longest
// lengths a code can have), so that a template printing a fixed number instead of .Code fails; both branches
// of a singular/plural test on .Minutes; and the longest app name and TTL there are (an app's ID, 64
// characters; 15 minutes), so that what passes Check with MaxOutput passes it on every send.
var samples = []Data{
	{Code: "4029", App: "SampleApp", Minutes: 1},
	{Code: "8153627049", App: strings.Repeat("S", 64), Minutes: 15},
}

// Check returns an error unless text is a template of key (a channel, or an email's part: IsKey) that
// Render may use: it parses, uses only .Code, .App, .Minutes, the comparison functions, len, print and
// println, if and with, writes at most MaxOutput bytes (MaxHTMLOutput for email_html, MaxSubject for
// email_subject), and prints the code (run with two different codes, each must appear in its output), except
// an email's subject, which need not print it but must be one line. The error wraps ErrChannel, ErrLocale,
// ErrTemplate or ErrNoCode and does not name key or locale: the caller's key does.
func Check(key, locale, text string) error {
	if !IsKey(key) {
		return fmt.Errorf("channel %q %w", key, ErrChannel)
	}
	if err := CheckLocale(locale); err != nil {
		return err
	}
	k := kindOf(key)
	t, err := compile(k, text)
	if err != nil {
		return err
	}
	for _, d := range samples {
		out, err := execute(k, t, d)
		if err != nil {
			return err
		}
		if k == kindSubject {
			if strings.ContainsAny(out, "\r\n") {
				return fmt.Errorf("%w: a subject is one line", ErrTemplate)
			}
			continue
		}
		if !strings.Contains(out, d.Code) {
			return ErrNoCode
		}
	}
	return nil
}

// Render writes the message of channel for d with the template whose locale best matches locale: among
// custom's templates of channel (channel → locale → text, the app's own) first, then the built-in ones.
// locale "" or one no template matches falls back to fallback (the app's locale), then to en. It returns
// the text and the locale of the template used. A malformed locale is an error wrapping ErrLocale; a
// malformed fallback is passed over.
//
// A locale matches a template of the same language (pt-BR → pt, hi-IN → hi, es-419 → es) or one x/text
// holds for the same (nb → no), never one of another language it guesses the reader may know (sw → en): a
// language the app has no template for gets the app's own locale.
//
// channel may be an email's part (email_subject, email_html): an HTML body is rendered with html/template,
// so the data are escaped for HTML; a subject's control characters (a line break a value could bring) are
// each made a space, so that it cannot end its header.
func Render(custom map[string]map[string]string, channel, locale, fallback string, d Data) (text, used string, err error) {
	if !IsKey(channel) {
		return "", "", fmt.Errorf("channel %q %w", channel, ErrChannel)
	}
	var want []language.Tag
	if locale != "" {
		t, err := parseLocale(locale)
		if err != nil {
			return "", "", err
		}
		want = append(want, t)
	}
	if t, err := parseLocale(fallback); err == nil && fallback != "" {
		want = append(want, t)
	}
	want = append(want, language.English)

	c := candidatesOf(channel, custom[channel])
	if len(c.locales) == 0 {
		return "", "", fmt.Errorf("channel %q: %w", channel, ErrNoTemplate)
	}
	i, ok := c.match(want)
	if !ok {
		return "", "", fmt.Errorf("channel %q, locale %q: %w", channel, locale, ErrNoTemplate)
	}
	used = c.locales[i]
	src, ok := custom[channel][used]
	if !ok {
		src = builtin[channel][used]
	}
	k := kindOf(channel)
	t, err := compile(k, src)
	if err != nil {
		return "", "", fmt.Errorf("template %s.%s: %w", channel, used, err)
	}
	text, err = execute(k, t, d)
	if err != nil {
		return "", "", fmt.Errorf("template %s.%s: %w", channel, used, err)
	}
	if k == kindSubject {
		return OneLine(text), used, nil
	}
	if !strings.Contains(text, d.Code) {
		return "", "", fmt.Errorf("template %s.%s: %w", channel, used, ErrNoCode)
	}
	return text, used, nil
}

// candidates are the locales a channel has templates in for one app, its own first, and their matcher.
type candidates struct {
	locales []string
	tags    []language.Tag
	matcher language.Matcher
}

// match returns the index of the first locale that matches one of want, tried in order.
func (c *candidates) match(want []language.Tag) (int, bool) {
	for _, w := range want {
		_, i, conf := c.matcher.Match(w)
		if conf == language.Exact {
			return i, true
		}
		if conf == language.No {
			continue
		}
		wb, _ := w.Base()
		cb, _ := c.tags[i].Base()
		if wb == cb {
			return i, true
		}
	}
	return 0, false
}

// matchers caches the candidates of each distinct list of locales (a language.Matcher is costly to make
// and the lists are few: one per channel per set of locales an app has templates in).
var matchers sync.Map // string → *candidates

func candidatesOf(channel string, custom map[string]string) *candidates {
	own := slices.Sorted(maps.Keys(custom))
	key := channel + "\x00" + strings.Join(own, "\x00")
	if c, ok := matchers.Load(key); ok {
		return c.(*candidates)
	}
	c := &candidates{}
	seen := map[string]bool{}
	for _, l := range append(own, Locales(channel)...) {
		t, err := parseLocale(l)
		if err != nil || seen[t.String()] {
			continue // stored settings were checked: one that does not parse is passed over, not fatal
		}
		seen[t.String()] = true
		c.locales, c.tags = append(c.locales, l), append(c.tags, t)
	}
	c.matcher = language.NewMatcher(c.tags)
	if cacheRoom() {
		matchers.Store(key, c)
	}
	return c
}

// OneLine returns s with each run of control characters (CR, LF, tab, ...) made one space, and trimmed: a
// header's value that no line break can end.
func OneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// parsed caches compile's result by kind and template text: a send parses nothing it has parsed before.
var parsed sync.Map // string → compiled

// executable is a parsed template of either package.
type executable interface {
	Execute(w io.Writer, data any) error
}

type compiled struct {
	t   executable
	err error
}

// cached counts the entries of both caches. Past maxCached, new texts are parsed on each use rather
// than kept: an admin API that keeps changing templates cannot grow the caches without bound.
var cached atomic.Int64

const maxCached = 10_000

func cacheRoom() bool { return cached.Add(1) <= maxCached }

func compile(k kind, text string) (executable, error) {
	key := string(rune('0'+k)) + "\x00" + text
	if c, ok := parsed.Load(key); ok {
		c := c.(compiled)
		return c.t, c.err
	}
	var t executable
	tt, err := parseTemplate(k, text)
	if err == nil {
		t = tt
		if k == kindHTML {
			// Vetted as text/template's tree above (the same syntax); run by html/template, which escapes
			// what the data put in for the HTML context it lands in.
			h, herr := htmltemplate.New("").Option("missingkey=error").Parse(text)
			if herr != nil {
				t, err = nil, fmt.Errorf("%w: %s", ErrTemplate, strings.TrimPrefix(herr.Error(), "html/template: :"))
			} else {
				t = h
			}
		}
	}
	if cacheRoom() {
		parsed.Store(key, compiled{t, err})
	}
	return t, err
}

func parseTemplate(k kind, text string) (*template.Template, error) {
	if maxText, _ := k.limits(); len(text) > maxText {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrTemplate, len(text), maxText)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrTemplate)
	}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: empty", ErrTemplate)
	}
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		// text/template's message starts "template: :1: ..."; the position is what tells.
		return nil, fmt.Errorf("%w: %s", ErrTemplate, strings.TrimPrefix(err.Error(), "template: :"))
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("%w: define and block are not allowed", ErrTemplate)
	}
	if err := vet(t.Tree.Root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	return t, nil
}

// fields are the fields of Data a template may use; funcs the functions it may call. Not allowed: range
// (a loop is a way to make a send slow or its text huge), template, define and block (one template is one
// message), printf (a width of a million spaces costs a megabyte before MaxOutput can refuse it), call,
// index, slice and the escapers (nothing in Data needs them).
var (
	fields = map[string]bool{"Code": true, "App": true, "Minutes": true}
	funcs  = map[string]bool{
		"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
		"len": true, "print": true, "println": true,
	}
)

// vet walks a template's tree and refuses what fields and funcs do not allow.
func vet(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := vet(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode, *parse.CommentNode:
		return nil
	case *parse.ActionNode:
		return vetPipe(n.Pipe)
	case *parse.IfNode:
		return vetBranch(&n.BranchNode)
	case *parse.WithNode:
		return vetBranch(&n.BranchNode)
	case *parse.RangeNode:
		return fmt.Errorf("range is not allowed")
	case *parse.TemplateNode:
		return fmt.Errorf("template is not allowed")
	}
	return fmt.Errorf("%s is not allowed", n)
}

func vetBranch(b *parse.BranchNode) error {
	if err := vetPipe(b.Pipe); err != nil {
		return err
	}
	if err := vet(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return vet(b.ElseList)
	}
	return nil
}

func vetPipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			if err := vetArg(arg); err != nil {
				return err
			}
		}
	}
	return nil
}

func vetArg(n parse.Node) error {
	switch n := n.(type) {
	case *parse.FieldNode:
		return vetFields(n.Ident)
	case *parse.VariableNode:
		return vetFields(n.Ident[1:]) // $x or $.Code: the variable, then the fields
	case *parse.IdentifierNode:
		if !funcs[n.Ident] {
			return fmt.Errorf("function %s is not allowed", n.Ident)
		}
		return nil
	case *parse.PipeNode:
		return vetPipe(n)
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
		return nil
	case *parse.DotNode:
		return fmt.Errorf("{{.}} is not allowed: use .Code, .App and .Minutes")
	}
	return fmt.Errorf("%s is not allowed", n)
}

func vetFields(idents []string) error {
	switch {
	case len(idents) == 0:
		return nil
	case len(idents) > 1 || !fields[idents[0]]:
		return fmt.Errorf(".%s is not a field (want .Code, .App or .Minutes)", strings.Join(idents, "."))
	}
	return nil
}

// limitedBuffer is a buffer that refuses to grow past max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, fmt.Errorf("writes more than %d bytes", b.max)
	}
	return b.Buffer.Write(p)
}

func execute(k kind, t executable, d Data) (string, error) {
	_, maxOut := k.limits()
	b := limitedBuffer{max: maxOut}
	if err := t.Execute(&b, d); err != nil {
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "html/template: :"), "template: :")
		return "", fmt.Errorf("%w: %s", ErrTemplate, msg)
	}
	return b.String(), nil
}

// androidHashRe is an Android app's SMS Retriever hash: 11 characters of base64 (Google, "Computing your
// app's hash string": the first 11 characters of the base64 of a SHA-256).
var androidHashRe = regexp.MustCompile(`^[A-Za-z0-9+/]{11}$`)

// ValidAndroidHash reports whether h is well-formed as an Android app's SMS Retriever hash: 11 characters
// of A-Z, a-z, 0-9, + and /.
func ValidAndroidHash(h string) bool { return androidHashRe.MatchString(h) }

// RetrieverMaxBytes is the longest message Google's SMS Retriever API reads (its server guide: "no longer
// than 140 bytes", one SMS: 160 GSM characters or 70 UCS-2 characters).
const RetrieverMaxBytes = 140

// AndroidHash returns text with an app's SMS Retriever hash on a line of its own at the end, the form
// Google's SMS Retriever API reads ("Your ExampleApp code is: 123ABC78" then "FA+9qCX9VSu"); hash ""
// returns text as it is. Trailing spaces and line breaks of text go first, so that the hash is the last
// line whatever the template ended with. Whether the whole fits RetrieverMaxBytes depends on the SMS's
// encoding, which the sender knows.
func AndroidHash(text, hash string) string {
	if hash == "" {
		return text
	}
	return strings.TrimRight(text, " \t\r\n") + "\n" + hash
}
