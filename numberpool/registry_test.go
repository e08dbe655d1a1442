package numberpool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/fault"
	"flashotp/internal/storetest"
	"flashotp/numberpool"
	"flashotp/store"
)

func TestNewRegistry(t *testing.T) {
	three := []string{"+442079460001", "+442079460002", "+442079460003"}
	tests := []struct {
		name         string
		apps         map[string][]string // nil: demo → demo
		codeLength   int
		minCodeSpace int
		pools        []numberpool.Pool
		wantErr      error    // nil: NewRegistry must succeed
		wantIn       []string // what the error must say
	}{
		{"code space exactly the minimum", nil, 4, 10000, []numberpool.Pool{pool("demo", entry("+44207946XXXX"))}, nil, nil},
		{"code space below the minimum names the app", map[string][]string{"tiny-app": {"demo"}}, 4, 100000,
			[]numberpool.Pool{pool("demo", entry("+44207946XXXX"))}, numberpool.ErrCodeSpace, []string{"tiny-app", "10000", "100000"}},
		{"longer code, same free digits", nil, 6, 10001, []numberpool.Pool{pool("demo", entry("+44207946XXXX"))},
			numberpool.ErrCodeSpace, []string{"demo", "10000"}},
		{"two entries reach the minimum", nil, 6, 20000, []numberpool.Pool{pool("demo", entry("+44207946XXXX"), entry("+44207947XXXX"))}, nil, nil},
		{"two pools of the app reach the minimum", map[string][]string{"demo": {"a", "b"}}, 6, 20000,
			[]numberpool.Pool{pool("a", entry("+44207946XXXX")), pool("b", entry("+44207947XXXX"))}, nil, nil},
		{"overlap does not reach the minimum", nil, 6, 20000, []numberpool.Pool{pool("demo", entry("+44207946XXXX"), entry("+44113446XXXX"))},
			numberpool.ErrCodeSpace, []string{"demo"}},
		{"a range of 10000 is the whole space", nil, 4, 10000, []numberpool.Pool{pool("demo", entry("+442079465000-+442079474999"))}, nil, nil},
		{"a list of 3 is 3 codes", nil, 4, 4, []numberpool.Pool{pool("demo", entry(three...))}, numberpool.ErrCodeSpace, []string{"demo", "3"}},
		{"a local entry below the minimum names the destination", nil, 4, 10000,
			[]numberpool.Pool{pool("demo", entry("+44207946XXXX"), local([]string{"GB"}, three...))}, numberpool.ErrCodeSpace, []string{"demo", "GB", "3"}},
		{"only local entries", nil, 4, 10000, []numberpool.Pool{pool("demo", local([]string{"FR"}, "+33198765XXXX"))}, nil, nil},
		{"the small app is named", map[string][]string{"big": {"a"}, "small": {"b"}}, 4, 10000,
			[]numberpool.Pool{pool("a", entry("+44207946XXXX")), pool("b", entry("+442079461XXX"))}, numberpool.ErrCodeSpace, []string{`"small"`, "1000"}},
		{"numbers no longer than the code", map[string][]string{"short": {"demo"}}, 7, 1, []numberpool.Pool{pool("demo", entry("+683XXXX"))},
			numberpool.ErrCodeSpace, []string{"short"}},
		{"the app's pool does not exist", map[string][]string{"demo": {"nope"}}, 4, 1, []numberpool.Pool{pool("other", entry("+44207946XXXX"))},
			numberpool.ErrCodeSpace, []string{"demo"}},
		{"bad numbers", nil, 4, 1, []numberpool.Pool{pool("demo", entry("+44abc"))}, numberpool.ErrBadPattern, []string{"demo", "entries[0].numbers"}},
		{"bad range", nil, 4, 1, []numberpool.Pool{pool("demo", entry("+442079469999-+442079460000"))}, numberpool.ErrInvalid, []string{"entries[0].numbers"}},
		{"bad country", nil, 4, 1, []numberpool.Pool{pool("demo", local([]string{"gb"}, "+44207946XXXX"))}, numberpool.ErrInvalid, []string{"entries[0].countries[0]", "capitals: GB"}},
		{"UK is not a country code", nil, 4, 1, []numberpool.Pool{pool("demo", local([]string{"UK"}, "+44207946XXXX"))}, numberpool.ErrInvalid, []string{"entries[0].countries[0]", `"UK"`, "did you mean GB"}},
		{"ZZ is no country", nil, 4, 1, []numberpool.Pool{pool("demo", local([]string{"FR", "ZZ"}, "+44207946XXXX"))}, numberpool.ErrInvalid, []string{"entries[0].countries[1]", `"ZZ"`}},
		{"bad trunk", nil, 4, 1, []numberpool.Pool{pool("demo", numberpool.Entry{Numbers: []string{"+44207946XXXX"}, Trunks: []string{"a b"}, Enabled: true})},
			numberpool.ErrInvalid, []string{"entries[0].trunks"}},
		{"weight too high", nil, 4, 1, []numberpool.Pool{pool("demo", numberpool.Entry{Numbers: []string{"+44207946XXXX"}, Weight: 1001, Enabled: true})},
			numberpool.ErrInvalid, []string{"entries[0].weight"}},
		{"repeated entry id", nil, 4, 1, []numberpool.Pool{pool("demo",
			numberpool.Entry{ID: "a", Numbers: []string{"+44207946XXXX"}, Enabled: true},
			numberpool.Entry{ID: "a", Numbers: []string{"+44207947XXXX"}, Enabled: true})}, numberpool.ErrInvalid, []string{"entries[1].id"}},
		{"no entries", nil, 4, 1, []numberpool.Pool{pool("demo")}, numberpool.ErrInvalid, []string{"entries"}},
		{"bad name", map[string][]string{"demo": {"a b"}}, 4, 1, []numberpool.Pool{pool("a b", entry("+44207946XXXX"))}, numberpool.ErrInvalid, []string{"name"}},
		{"bad quarantine code", nil, 4, 1, []numberpool.Pool{func() numberpool.Pool {
			p := pool("demo", entry("+44207946XXXX"))
			p.QuarantineCodes = []int{200}
			return p
		}()}, numberpool.ErrInvalid, []string{"quarantine_codes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := storetest.Open(t)
			apps := tt.apps
			if apps == nil {
				apps = map[string][]string{"demo": {"demo"}}
			}
			cfg := numberpool.Config{Apps: apps, CodeLength: tt.codeLength, MinCodeSpace: tt.minCodeSpace, Key: db.Key(), Now: newClock().Now, Log: quietLog()}
			r, err := numberpool.NewRegistry(t.Context(), cfg, db, tt.pools)
			if tt.wantErr == nil {
				if err != nil || r == nil {
					t.Fatalf("NewRegistry = %v, %v; want a registry", r, err)
				}
				r.Close()
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewRegistry error = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if r != nil {
				t.Errorf("NewRegistry returned a registry with its error")
			}
		})
	}
}

func TestPickErrors(t *testing.T) {
	f := newFixture(t, numberpool.Config{
		Apps:         map[string][]string{"demo": {"wide"}, "fronly": {"fr"}, "short": {"short"}},
		CodeLength:   5,
		MinCodeSpace: 100000,
	}, pool("wide", entry("+4420794XXXXX")), pool("fr", local([]string{"FR"}, "+3319876XXXXX")), pool("short", entry("+683XXXXX")))
	tests := []struct {
		name       string
		app, pool  string
		country    string
		codeLength int
		want       error      // nil: a CLI
		code       fault.Code // the API's answer to the send
	}{
		{"default length", "demo", "", "US", 5, nil, ""},
		{"6 digits", "demo", "", "US", 6, nil, ""},
		{"by pool", "demo", "wide", "US", 5, nil, ""},
		{"4 digits give 10^4 codes", "demo", "", "US", 4, numberpool.ErrCodeSpace, fault.InvalidRequest},
		{"unknown pool", "demo", "nope", "US", 5, numberpool.ErrNoPool, fault.InvalidRequest},
		{"another app's pool", "demo", "fr", "FR", 5, numberpool.ErrNoPool, fault.InvalidRequest},
		{"unknown app", "nobody", "", "US", 5, numberpool.ErrNoNumbers, fault.DestinationBlocked},
		{"no entry for the destination", "fronly", "", "US", 5, numberpool.ErrNoNumbers, fault.DestinationBlocked},
		{"local entry", "fronly", "", "FR", 5, nil, ""},
		{"code shorter than the numbers", "short", "", "US", 7, nil, ""},
		// A code as long as the numbers leaves no prefix: the code length is wrong, not the destination.
		{"code as long as the numbers", "short", "", "US", 8, numberpool.ErrCodeSpace, fault.InvalidRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: tt.app, Pool: tt.pool, Recipient: recipient(i), Country: tt.country, CodeLength: tt.codeLength})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Pick: %v", err)
				}
				if len(p.Code) != tt.codeLength || p.Prefix+p.Code != p.CLI {
					t.Errorf("Pick = %+v, want a %d-digit code", p, tt.codeLength)
				}
				return
			}
			if !errors.Is(err, tt.want) || fault.CodeOf(err) != tt.code {
				t.Fatalf("Pick = %+v, %v (code %s); want %v (code %s)", p, err, fault.CodeOf(err), tt.want, tt.code)
			}
		})
	}
}

// Within the cooldown a recipient never gets the same CLI, nor the same code, twice; after it, it may.
func TestPickCooldown(t *testing.T) {
	tests := []struct {
		name     string
		numbers  []string
		cooldown time.Duration // 0: the default, 24h
		distinct int           // CLIs (with distinct codes) one recipient can get within the cooldown
	}{
		{"range of 20, default cooldown", []string{"+442079460000-+442079460019"}, 0, 20},
		{"range of 20 across the code's wrap", []string{"+442079469990-+442079470009"}, time.Hour, 20},
		{"list of 3", []string{"+12025550100", "+12025550177", "+442079461234"}, 10 * time.Minute, 3},
		{"list sharing codes", []string{"+442079461234", "+442079471234", "+12025551234", "+12025550001"}, time.Hour, 2},
		{"pattern of 10", []string{"+44207946000X"}, time.Hour, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pool("demo", entry(tt.numbers...))
			p.Cooldown = numberpool.Duration(tt.cooldown)
			f := newFixture(t, numberpool.Config{}, p)
			cooldown := tt.cooldown
			if cooldown == 0 {
				cooldown = numberpool.DefaultCooldown
			}
			const who = "+14155552671"
			round := func() {
				t.Helper()
				clis, codes := map[string]bool{}, map[string]bool{}
				for range tt.distinct {
					p := f.pick(t, who, "US")
					if !matches(tt.numbers, p.CLI) {
						t.Fatalf("Pick returned %s, not a number of %q", p.CLI, tt.numbers)
					}
					if clis[p.CLI] || codes[p.Code] {
						t.Fatalf("Pick returned %s (code %s) again within the cooldown", p.CLI, p.Code)
					}
					clis[p.CLI], codes[p.Code] = true, true
					f.clock.Advance(time.Second)
				}
				if p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); !errors.Is(err, numberpool.ErrExhausted) || fault.CodeOf(err) != fault.Unavailable {
					t.Fatalf("Pick after %d CLIs within the cooldown = %+v, %v; want ErrExhausted", tt.distinct, p, err)
				}
			}
			round()
			// Another recipient is not held back.
			f.pick(t, "+14155552672", "US")
			// The cooldown is kept in the store: a restart does not lift it.
			f.reopen(t)
			if _, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); !errors.Is(err, numberpool.ErrExhausted) || fault.CodeOf(err) != fault.Unavailable {
				t.Fatalf("Pick after a restart = %v, want ErrExhausted", err)
			}
			// A second before the first pick's cooldown ends, all are still held back; once the last one's
			// ends, all are free again.
			f.clock.Advance(cooldown - time.Duration(tt.distinct+1)*time.Second)
			if _, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); !errors.Is(err, numberpool.ErrExhausted) || fault.CodeOf(err) != fault.Unavailable {
				t.Fatalf("Pick within the cooldown = %v, want ErrExhausted", err)
			}
			f.clock.Advance(time.Duration(tt.distinct+1) * time.Second)
			round()
		})
	}
}

// The recent calls kept for the cooldown hold MACs: never a CLI or a code in clear.
func TestCooldownKeepsNoCLI(t *testing.T) {
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+44207946XXXX")))
	const who = "+14155552671"
	var picked []numberpool.Picked
	for range 5 {
		picked = append(picked, f.pick(t, who, "US"))
	}
	f.close() // writes the histories
	raw, err := f.db.RecentCalls(t.Context(), who)
	if err != nil || raw == nil {
		t.Fatalf("recent calls of %s: %v", who, err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("recent calls are not JSON: %v: %s", err, raw)
	}
	var strs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			strs = append(strs, v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	for _, p := range picked {
		for _, s := range strs {
			if strings.Contains(s, strings.TrimPrefix(p.CLI, "+")) || s == p.Code || s == p.Prefix {
				t.Errorf("recent calls hold %q, which shows the CLI %s or its code: %s", s, p.CLI, raw)
			}
		}
	}
}

// ErrExhausted is for when every number that could serve the recipient is out; one number left must be
// found, however many are out. Here the first pick takes code 0000 (the one code of 100,000 numbers), and
// +442079461234 is the only number left for this recipient: Pick must return it. (The same happens, less
// often, in any small pool: with 49 of 50 numbers in a recipient's cooldown, Pick fails 1.8% of the time.)
func TestPickFindsTheLastFreeNumber(t *testing.T) {
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+44XXXXX0000"), entry("+442079461234")))
	const who = "+14155552671"
	first := f.pick(t, who, "US")
	second, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4})
	if err != nil {
		t.Fatalf("second Pick after %s: %v; want the one number whose code the recipient has not had", first.CLI, err)
	}
	if second.Code == first.Code {
		t.Errorf("second Pick %s repeats the code of %s", second.CLI, first.CLI)
	}
	if _, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); !errors.Is(err, numberpool.ErrExhausted) || fault.CodeOf(err) != fault.Unavailable {
		t.Errorf("third Pick = %v, want ErrExhausted", err)
	}
}

// A send limited to one of the app's pools draws its code from that pool only, so that pool alone must hold
// the minimum code space.
func TestPickFromPoolKeepsMinCodeSpace(t *testing.T) {
	f := newFixture(t, numberpool.Config{Apps: map[string][]string{"demo": {"main", "vip"}}, MinCodeSpace: 10000},
		pool("main", entry("+44207946XXXX")), pool("vip", entry("+12025550100", "+12025550101", "+12025550102")))
	p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Pool: "vip", Recipient: "+14155552671", Country: "US", CodeLength: 4})
	// ErrCodeSpace (400: the request asks for too small a pool) says it best; ErrExhausted would do.
	if !errors.Is(err, numberpool.ErrCodeSpace) && !errors.Is(err, numberpool.ErrExhausted) {
		t.Errorf("Pick from pool vip (3 codes, minimum 10000) = %s (code %s), %v; want ErrCodeSpace", p.CLI, p.Code, err)
	}
}

// When the entries that make an app's code space are disabled or quarantined, what is left must not be drawn
// from if it is below the minimum: three numbers are three codes, guessed in five tries.
func TestPickKeepsMinCodeSpaceWhenEntriesAreOut(t *testing.T) {
	small := []string{"+12025550100", "+12025550101", "+12025550102"}
	tests := []struct {
		name string
		out  func(t *testing.T, f *fixture) (refused bool) // takes the big entry (live/e1) out
	}{
		{"big entry quarantined by hand", func(t *testing.T, f *fixture) bool {
			if _, err := f.reg.QuarantineNow(t.Context(), numberpool.Target{Pool: "live", Entry: "e1", For: numberpool.Duration(time.Hour), Reason: "test"}); err != nil {
				t.Fatalf("QuarantineNow: %v", err)
			}
			return false
		}},
		{"big entry quarantined by rejections", func(t *testing.T, f *fixture) bool {
			for i := range numberpool.DefaultQuarantineAfter {
				f.reg.Reject(t.Context(), fmt.Sprintf("+4420794600%02d", i), 403, "Forbidden", false)
			}
			if _, ok := f.report(t, "live").Quarantine["entry:e1"]; !ok {
				t.Fatalf("entry e1 not quarantined after %d rejections", numberpool.DefaultQuarantineAfter)
			}
			return false
		}},
		{"big entry disabled", func(t *testing.T, f *fixture) bool {
			p := f.report(t, "live").Pool
			p.Entries = slices.Clone(p.Entries)
			p.Entries[0].Enabled = false
			_, err := f.reg.PutPool(t.Context(), p)
			if errors.Is(err, numberpool.ErrInUse) {
				return true
			}
			if err != nil {
				t.Fatalf("PutPool: %v", err)
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The app's code space comes from the stored pool live: open without the minimum, make it, reopen.
			f := newFixture(t, numberpool.Config{Apps: map[string][]string{"demo": {"base", "live"}}}, pool("base", entry(small...)))
			if _, err := f.reg.PutPool(t.Context(), pool("live", entry("+44207946XXXX"))); err != nil {
				t.Fatalf("PutPool: %v", err)
			}
			f.cfg.MinCodeSpace = 10000
			f.reopen(t)
			f.pick(t, recipient(0), "US")
			if refused := tt.out(t, f); refused {
				return
			}
			for i := range 20 {
				p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: recipient(i + 1), Country: "US", CodeLength: 4})
				if err == nil {
					t.Fatalf("Pick = %s of %s/%s: with the 10000-number entry out the app draws from %d codes", p.CLI, p.Pool, p.Entry, len(small))
				}
				if !errors.Is(err, numberpool.ErrExhausted) || fault.CodeOf(err) != fault.Unavailable && !errors.Is(err, numberpool.ErrCodeSpace) {
					t.Fatalf("Pick: %v, want ErrExhausted or ErrCodeSpace", err)
				}
			}
		})
	}
}

func TestReject(t *testing.T) {
	const cli = "+442079460003"
	numbers := []string{"+442079460001", "+442079460002", "+442079460003", "+442079460004", "+442079460005"}
	tests := []struct {
		name       string
		codes      []int // the pool's quarantine_codes; nil: the default
		cli        string
		sipCode    int
		reason     string
		rang       bool
		quarantine bool
	}{
		{"403 before ringing", nil, cli, 403, "Forbidden", false, true},
		// A 484 is about the dialled number, a 488 about codecs: not the caller ID's fault.
		{"484 before ringing", nil, cli, 484, "Address Incomplete", false, false},
		{"488 before ringing", nil, cli, 488, "Not Acceptable Here", false, false},
		{"488 naming the caller", nil, cli, 488, "Calling party not allowed", false, true},
		{"486 busy", nil, cli, 486, "Busy Here", false, false},
		{"404 not found", nil, cli, 404, "Not Found", false, false},
		{"480 unavailable", nil, cli, 480, "Temporarily Unavailable", false, false},
		{"503 trunk error", nil, cli, 503, "Service Unavailable", false, false},
		{"403 after ringing, reason not about the caller", nil, cli, 403, "Forbidden", true, false},
		{"403 after ringing, Caller ID not allowed", nil, cli, 403, "Caller ID not allowed", true, true},
		{"403 after ringing, Invalid calling number", nil, cli, 403, "Invalid calling number", true, true},
		{"486 after ringing, Caller ID not allowed", nil, cli, 486, "Caller ID not allowed", true, false},
		{"pool's own codes: 603 naming the caller", []int{603}, cli, 603, "Caller blocked", false, true},
		{"pool's own codes: 603 not about the caller", []int{603}, cli, 603, "Decline", false, false},
		{"pool's own codes: 403 not among them", []int{603}, cli, 403, "Forbidden", false, false},
		{"CLI of no pool", nil, "+12025550100", 403, "Forbidden", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pool("demo", entry(numbers...))
			if tt.codes != nil {
				p.QuarantineCodes = tt.codes
			}
			f := newFixture(t, numberpool.Config{}, p)
			f.reg.Reject(t.Context(), tt.cli, tt.sipCode, tt.reason, tt.rang)
			q, ok := f.report(t, "demo").Quarantine["cli:"+masked(tt.cli)]
			if ok != tt.quarantine {
				t.Fatalf("after Reject(%s, %d, %q, rang %v) quarantine = %v, want %v; report %+v",
					tt.cli, tt.sipCode, tt.reason, tt.rang, ok, tt.quarantine, f.report(t, "demo").Quarantine)
			}
			if n := len(f.report(t, "demo").Quarantine); n > 1 || n == 1 && !ok {
				t.Errorf("report quarantine = %+v, want only cli:%s", f.report(t, "demo").Quarantine, tt.cli)
			}
			seen := false
			for i := range 100 {
				if f.pick(t, recipient(i), "US").CLI == tt.cli {
					seen = true
				}
			}
			if !tt.quarantine {
				return
			}
			if seen {
				t.Errorf("a quarantined CLI was picked")
			}
			now := f.clock.Now()
			if !q.Since.Equal(now) || !q.Until.Equal(now.Add(numberpool.DefaultQuarantineFor)) || q.Rejections != 1 || q.Manual ||
				!strings.Contains(q.Reason, fmt.Sprint(tt.sipCode)) {
				t.Errorf("quarantine = %+v, want since now, for %v, 1 rejection, reason with %d", q, numberpool.DefaultQuarantineFor, tt.sipCode)
			}
		})
	}
}

// QuarantineAfter rejections of an entry's numbers within QuarantineFor quarantine the entry; quarantines
// survive a restart, can be released, and end by themselves.
func TestQuarantineEntry(t *testing.T) {
	gb := []string{"+442079460001", "+442079460002", "+442079460003", "+442079460004", "+442079460005"}
	p := pool("demo", local([]string{"GB"}, gb...), entry("+12025XXXXXX"))
	p.QuarantineAfter, p.QuarantineFor = 3, numberpool.Duration(time.Hour)
	f := newFixture(t, numberpool.Config{}, p)
	n := 0
	// pickGB draws for GB recipients and reports whether any got a number of the GB entry.
	pickGB := func() (fromGB bool) {
		t.Helper()
		for range 30 {
			n++
			if p := f.pick(t, recipient(n), "GB"); p.Entry == "e1" {
				fromGB = true
			}
		}
		return fromGB
	}
	entryOut := func() bool {
		t.Helper()
		_, ok := f.report(t, "demo").Quarantine["entry:e1"]
		return ok
	}

	f.reg.Reject(t.Context(), gb[0], 403, "Forbidden", false)
	f.reg.Reject(t.Context(), gb[1], 403, "Forbidden", false)
	if entryOut() || !pickGB() {
		t.Fatalf("2 of 3 rejections quarantined the entry")
	}
	// The first two leave the window: one more is not three within quarantine_for.
	f.clock.Advance(time.Hour + time.Second)
	f.reg.Reject(t.Context(), gb[2], 403, "Forbidden", false)
	if entryOut() {
		t.Fatalf("rejections older than quarantine_for still count")
	}
	f.reg.Reject(t.Context(), gb[3], 484, "Caller ID rejected", false)
	f.reg.Reject(t.Context(), gb[4], 403, "Forbidden", false)
	if !entryOut() {
		t.Fatalf("3 rejections within quarantine_for did not quarantine the entry: %+v", f.report(t, "demo").Quarantine)
	}
	if pickGB() {
		t.Errorf("a GB recipient got a number of the quarantined entry")
	}
	q := f.report(t, "demo").Quarantine["entry:e1"]
	if q.Rejections != 3 || !q.Until.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("entry quarantine = %+v, want 3 rejections, for 1h", q)
	}

	// Quarantines are kept in the store.
	f.reopen(t)
	if !entryOut() || pickGB() {
		t.Fatalf("the entry's quarantine did not survive a restart: %+v", f.report(t, "demo").Quarantine)
	}
	for _, cli := range gb[2:] {
		if _, ok := f.report(t, "demo").Quarantine["cli:"+masked(cli)]; !ok {
			t.Errorf("quarantine of %s did not survive a restart", cli)
		}
	}

	if err := f.reg.Release(t.Context(), numberpool.Target{Pool: "demo", Entry: "e1"}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if entryOut() || !pickGB() {
		t.Errorf("the released entry is still out")
	}
	if err := f.reg.Release(t.Context(), numberpool.Target{Pool: "demo", Entry: "e1"}); !errors.Is(err, fault.NotFound) {
		t.Errorf("second Release = %v, want ErrNotFound", err)
	}
	// The release is stored too.
	f.reopen(t)
	if entryOut() {
		t.Errorf("the released entry is quarantined again after a restart")
	}

	// The CLIs' own quarantines end after quarantine_for.
	f.clock.Advance(time.Hour + time.Second)
	if q := f.report(t, "demo").Quarantine; len(q) != 0 {
		t.Errorf("quarantine after quarantine_for = %+v, want none", q)
	}
	f.reopen(t)
	if q := f.report(t, "demo").Quarantine; len(q) != 0 {
		t.Errorf("quarantine after quarantine_for and a restart = %+v, want none", q)
	}
	seen := map[string]bool{}
	for range 50 {
		n++
		seen[f.pick(t, recipient(n), "GB").CLI] = true
	}
	if len(seen) != len(gb) {
		t.Errorf("after the quarantine ended, GB recipients got only %v", seen)
	}
}

func TestQuarantineNow(t *testing.T) {
	tests := []struct {
		name    string
		target  numberpool.Target
		d       time.Duration
		wantKey string // the report's key; "" for an error
		wantFor time.Duration
		wantErr error
	}{
		{"CLI for 2h", numberpool.Target{Pool: "demo", CLI: "+442079460002"}, 2 * time.Hour, "cli:+44207946****", 2 * time.Hour, nil},
		{"CLI of a pattern", numberpool.Target{Pool: "demo", CLI: "+331987651234"}, 0, "cli:+33198765****", numberpool.DefaultQuarantineFor, nil},
		{"entry for the pool's time", numberpool.Target{Pool: "demo", Entry: "e2"}, 0, "entry:e2", numberpool.DefaultQuarantineFor, nil},
		{"CLI of no entry", numberpool.Target{Pool: "demo", CLI: "+12025550100"}, 0, "", 0, fault.NotFound},
		{"unknown entry", numberpool.Target{Pool: "demo", Entry: "e9"}, 0, "", 0, fault.NotFound},
		{"unknown pool", numberpool.Target{Pool: "nope", CLI: "+442079460002"}, 0, "", 0, fault.NotFound},
		{"both CLI and entry", numberpool.Target{Pool: "demo", CLI: "+442079460002", Entry: "e1"}, 0, "", 0, numberpool.ErrBadPattern},
		{"neither", numberpool.Target{Pool: "demo"}, 0, "", 0, numberpool.ErrBadPattern},
		{"not a number", numberpool.Target{Pool: "demo", CLI: "442079460002;x"}, 0, "", 0, numberpool.ErrBadPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, numberpool.Config{}, pool("demo", entry("+442079460001-+442079460009"), entry("+33198765XXXX")))
			tt.target.For, tt.target.Reason = numberpool.Duration(tt.d), "carrier complaint"
			q, err := f.reg.QuarantineNow(t.Context(), tt.target)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("QuarantineNow = %v, want %v", err, tt.wantErr)
				}
				if got := f.report(t, "demo").Quarantine; len(got) != 0 {
					t.Errorf("a refused QuarantineNow left %+v", got)
				}
				if err := f.reg.Release(t.Context(), tt.target); err == nil {
					t.Errorf("Release of %+v succeeded", tt.target)
				}
				return
			}
			if err != nil {
				t.Fatalf("QuarantineNow: %v", err)
			}
			now := f.clock.Now()
			if !q.Manual || q.Reason != "carrier complaint" || !q.Since.Equal(now) || !q.Until.Equal(now.Add(tt.wantFor)) {
				t.Errorf("QuarantineNow = %+v, want manual, reason, for %v", q, tt.wantFor)
			}
			f.reopen(t)
			if got, ok := f.report(t, "demo").Quarantine[tt.wantKey]; !ok || !got.Until.Equal(q.Until) {
				t.Fatalf("report after a restart = %+v, want %s until %v", f.report(t, "demo").Quarantine, tt.wantKey, q.Until)
			}
			if err := f.reg.Release(t.Context(), tt.target); err != nil {
				t.Fatalf("Release: %v", err)
			}
			f.reopen(t)
			if got := f.report(t, "demo").Quarantine; len(got) != 0 {
				t.Errorf("report after Release and a restart = %+v, want none", got)
			}
		})
	}
}

// snapshot is what Pools shows, as JSON, to compare before and after a refused change.
func (f *fixture) snapshot(t testing.TB) string {
	t.Helper()
	reports, apps := f.reg.Pools()
	for i := range reports {
		reports[i].Uses = nil // counted since start: a restart resets them
	}
	b, err := json.Marshal(struct {
		R []numberpool.Report
		A []numberpool.AppSpace
	}{reports, apps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLiveChanges(t *testing.T) {
	f := newFixture(t, numberpool.Config{Apps: map[string][]string{"demo": {"demo", "live"}}, MinCodeSpace: 10000},
		pool("demo", entry("+44207946XXXX")))
	const fr, de = "+33198765XXXX", "+4930123XXXXX"
	n := 0
	// from reports the entry (pool/id) every one of 20 recipients of country got, or "mixed".
	from := func(country string) string {
		t.Helper()
		got := ""
		for range 20 {
			n++
			p := f.pick(t, recipient(n), country)
			if e := p.Pool + "/" + p.Entry; got == "" || got == e {
				got = e
			} else {
				got = "mixed"
			}
		}
		return got
	}
	if got := from("FR"); got != "demo/e1" {
		t.Fatalf("FR before any change: %s, want demo/e1", got)
	}

	created, err := f.reg.PutPool(t.Context(), pool("live", local([]string{"FR"}, fr)))
	if err != nil {
		t.Fatalf("PutPool: %v", err)
	}
	if created.FromConfig || created.Cooldown != numberpool.Duration(numberpool.DefaultCooldown) || created.Entries[0].ID != "e1" {
		t.Errorf("PutPool = %+v, want a stored pool with defaults", created)
	}
	if got := from("FR"); got != "live/e1" {
		t.Fatalf("FR after PutPool: %s, want live/e1 at once", got)
	}

	added, err := f.reg.AddEntry(t.Context(), "live", local([]string{"DE"}, de))
	if err != nil {
		t.Fatalf("AddEntry: %v", err)
	}
	if added.ID != "e2" || added.Weight != 1 || !added.Enabled || !slices.Equal(added.Numbers, []string{de}) {
		t.Errorf("AddEntry = %+v, want e2 of weight 1", added)
	}
	if got := from("DE"); got != "live/e2" {
		t.Fatalf("DE after AddEntry: %s, want live/e2 at once", got)
	}
	if sp := f.reg.CodeSpace("demo", 4); sp["DE"].Codes != 10000 || sp["FR"].Codes != 10000 {
		t.Errorf("CodeSpace after AddEntry = %v, want DE and FR", sp)
	}

	// Stored pools and entries survive a restart; the config pool stays the config's.
	f.reopen(t)
	if got := from("DE"); got != "live/e2" {
		t.Fatalf("DE after a restart: %s, want live/e2", got)
	}
	if rep := f.report(t, "live"); rep.FromConfig || len(rep.Entries) != 2 {
		t.Errorf("live after a restart = %+v, want 2 entries, not from config", rep.Pool)
	}
	if rep := f.report(t, "demo"); !rep.FromConfig {
		t.Errorf("demo after a restart is not from config")
	}

	// Refused changes change nothing, live or stored.
	small := local([]string{"FR"}, "+33198765000", "+33198765001", "+33198765002")
	if _, err := f.reg.AddEntry(t.Context(), "live", small); err != nil {
		t.Fatalf("AddEntry: %v", err)
	}
	refused := []struct {
		name   string
		change func() error
		want   error
		wantIn string
	}{
		{"remove what FR needs", func() error { return f.reg.RemoveEntry(t.Context(), "live", "e1") }, numberpool.ErrInUse, "FR"},
		{"replace with too few FR numbers", func() error {
			_, err := f.reg.PutPool(t.Context(), pool("live", small))
			return err
		}, numberpool.ErrInUse, "FR"},
		{"change a config pool", func() error {
			_, err := f.reg.PutPool(t.Context(), pool("demo", entry("+44207947XXXX")))
			return err
		}, numberpool.ErrInUse, "config"},
		{"remove from a config pool", func() error { return f.reg.RemoveEntry(t.Context(), "demo", "e1") }, numberpool.ErrInUse, "config"},
		{"delete a config pool", func() error { return f.reg.DeletePool(t.Context(), "demo") }, numberpool.ErrInUse, "config"},
		{"add to no pool", func() error {
			_, err := f.reg.AddEntry(t.Context(), "nope", entry("+44207947XXXX"))
			return err
		}, fault.NotFound, "nope"},
		{"remove no entry", func() error { return f.reg.RemoveEntry(t.Context(), "live", "e9") }, fault.NotFound, "e9"},
		{"delete no pool", func() error { return f.reg.DeletePool(t.Context(), "nope") }, fault.NotFound, "nope"},
		{"add bad numbers", func() error {
			_, err := f.reg.AddEntry(t.Context(), "live", entry("+44207947abcd"))
			return err
		}, numberpool.ErrBadPattern, "numbers"},
		{"add a bad country", func() error {
			_, err := f.reg.AddEntry(t.Context(), "live", local([]string{"France"}, "+33298765XXXX"))
			return err
		}, numberpool.ErrInvalid, "countries"},
		{"put a bad weight", func() error {
			e := entry("+33298765XXXX")
			e.Weight = -1
			_, err := f.reg.PutPool(t.Context(), pool("other", e))
			return err
		}, numberpool.ErrInvalid, "weight"},
		{"put a bad name", func() error {
			_, err := f.reg.PutPool(t.Context(), pool("a/b", entry("+33298765XXXX")))
			return err
		}, numberpool.ErrInvalid, "name"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot(t)
			err := tt.change()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.wantIn)
			}
			if after := f.snapshot(t); after != before {
				t.Errorf("a refused change changed the pools:\nbefore %s\nafter  %s", before, after)
			}
			f.reopen(t)
			if after := f.snapshot(t); after != before {
				t.Errorf("a refused change changed the stored pools:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	// Removing what is not needed works; DE then falls back to the entries for any country.
	if err := f.reg.RemoveEntry(t.Context(), "live", "e2"); err != nil {
		t.Fatalf("RemoveEntry: %v", err)
	}
	if got := from("DE"); got != "demo/e1" {
		t.Fatalf("DE after RemoveEntry: %s, want demo/e1", got)
	}
	if err := f.reg.DeletePool(t.Context(), "live"); err != nil {
		t.Fatalf("DeletePool: %v", err)
	}
	f.reopen(t)
	if got := from("FR"); got != "demo/e1" {
		t.Fatalf("FR after DeletePool and a restart: %s, want demo/e1", got)
	}
	if reports, _ := f.reg.Pools(); len(reports) != 1 {
		t.Errorf("Pools after DeletePool = %d pools, want demo alone", len(reports))
	}
}

// Entries without an ID get one that no other entry of the pool has.
func TestPutPoolEntryIDs(t *testing.T) {
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+44207946XXXX")))
	named := entry("+33198765XXXX")
	named.ID = "e2"
	p, err := f.reg.PutPool(t.Context(), numberpool.Pool{Name: "live", Entries: []numberpool.Entry{named, entry("+33198766XXXX")}})
	if err != nil {
		t.Fatalf("PutPool with entries [e2, (no id)]: %v", err)
	}
	if p.Entries[0].ID != "e2" || p.Entries[1].ID == "" || p.Entries[1].ID == "e2" {
		t.Errorf("entry IDs = %q, %q; want e2 and another", p.Entries[0].ID, p.Entries[1].ID)
	}
}

// from_config is the config file's to give: a pool made or replaced through the admin API with entries
// claiming it does not show them as the config file's.
func TestAdminPoolCannotClaimConfigEntries(t *testing.T) {
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+44207946XXXX")))
	claimed := entry("+33198765XXXX")
	claimed.ID, claimed.FromConfig = "e1", true
	for _, put := range []func(context.Context, numberpool.Pool) (numberpool.Pool, error){f.reg.CreatePool, f.reg.PutPool} {
		p, err := put(t.Context(), numberpool.Pool{Name: "live", Entries: []numberpool.Entry{claimed}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Entries[0].FromConfig {
			t.Fatalf("an admin pool's entry kept from_config: %+v", p.Entries[0])
		}
	}
}

// reopenWithin is reopen with a time limit. A registry that hangs holds the store's write lock for good,
// so the test's store is then left open rather than closed.
func (f *fixture) reopenWithin(t *testing.T, d time.Duration) error {
	t.Helper()
	type result struct {
		r   *numberpool.Registry
		err error
	}
	f.close()
	done := make(chan result, 1)
	go func() {
		r, err := numberpool.NewRegistry(t.Context(), f.cfg, f.db, f.configs)
		done <- result{r, err}
	}()
	select {
	case res := <-done:
		if res.err == nil {
			f.reg, f.closed = res.r, false
		}
		return res.err
	case <-time.After(d):
		return errHung
	}
}

var errHung = errors.New("NewRegistry did not return")

// A config pool that left the config file is dropped from the store at the next start; pools made through
// the admin API stay; a config pool wins over a stored pool of its name.
func TestConfigPoolDropped(t *testing.T) {
	db := openStoreLeftOpenIfHung(t)
	f := &fixture{db: db, clock: newClock(),
		cfg:     numberpool.Config{Apps: map[string][]string{"demo": {"demo", "live"}}, CodeLength: 4, MinCodeSpace: 1, Key: db.Key(), Log: quietLog()},
		configs: []numberpool.Pool{pool("demo", entry("+44207946XXXX")), pool("old", entry("+44207947XXXX"))}}
	f.cfg.Now = f.clock.Now
	t.Cleanup(f.close)
	if err := f.reopenWithin(t, 10*time.Second); err != nil {
		markHung(t, err)
		t.Fatalf("NewRegistry: %v", err)
	}
	if _, err := f.reg.PutPool(t.Context(), pool("live", local([]string{"FR"}, "+33198765XXXX"))); err != nil {
		t.Fatalf("PutPool: %v", err)
	}
	if _, err := f.reg.PutPool(t.Context(), pool("later", entry("+33198766XXXX"))); err != nil {
		t.Fatalf("PutPool: %v", err)
	}
	f.pick(t, recipient(1), "FR")

	// Restart without "old", and with a config pool "later".
	f.configs = []numberpool.Pool{pool("demo", entry("+44207946XXXX")), pool("later", entry("+33198767XXXX"))}
	// It takes milliseconds; one that writes to the store inside a read of it waits forever for bbolt to
	// remap the file.
	if err := f.reopenWithin(t, 3*time.Second); err != nil {
		markHung(t, err)
		t.Fatalf("NewRegistry after a config pool left the config: %v", err)
	}
	reports, _ := f.reg.Pools()
	var names []string
	for _, r := range reports {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"demo", "later", "live"}) {
		t.Errorf("pools after the restart = %v, want demo, later, live", names)
	}
	if storedPool(t, f.db, "old") != nil {
		t.Errorf("the store still holds pool old")
	}
	if rep := f.report(t, "later"); !rep.FromConfig || !slices.Equal(rep.Entries[0].Numbers, []string{"+33198767XXXX"}) {
		t.Errorf("later = %+v, want the config's", rep.Pool)
	}
	if rep := f.report(t, "live"); rep.FromConfig {
		t.Errorf("live is marked from config")
	}
}

// hung is set by a test whose NewRegistry never returned; openStoreLeftOpenIfHung then leaves its store
// open, since closing it would wait forever.
var hung sync.Map

func markHung(t *testing.T, err error) {
	if errors.Is(err, errHung) {
		hung.Store(t.Name(), true)
	}
}

// openStoreLeftOpenIfHung is openStore for a test that may hang the store (see reopenWithin).
func openStoreLeftOpenIfHung(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "flashotp.db"), "")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	name := t.Name()
	t.Cleanup(func() {
		if _, ok := hung.Load(name); ok {
			return
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// The registry is safe for concurrent use.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, numberpool.Config{Apps: map[string][]string{"demo": {"demo", "live"}}},
		pool("demo", entry("+44207946XXXX")), pool("other", entry("+44207947XXXX")))
	if _, err := f.reg.PutPool(t.Context(), pool("live", local([]string{"FR"}, "+33198765XXXX"))); err != nil {
		t.Fatalf("PutPool: %v", err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				p, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: recipient(g*1000 + i), Country: []string{"US", "FR"}[i%2], CodeLength: 4})
				if err != nil {
					t.Errorf("Pick: %v", err)
					return
				}
				f.reg.Reject(t.Context(), p.CLI, 486, "Busy Here", false)
				f.reg.Reject(t.Context(), fmt.Sprintf("+44207947%04d", g*1000+i), 403, "Forbidden", false)
				f.reg.Pools()
				f.reg.CodeSpace("demo", 4+i%3)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 10 {
			e, err := f.reg.AddEntry(t.Context(), "live", local([]string{"DE"}, fmt.Sprintf("+49301%02dXXXXX", i)))
			if err != nil {
				t.Errorf("AddEntry: %v", err)
				return
			}
			if _, err := f.reg.QuarantineNow(t.Context(), numberpool.Target{Pool: "live", Entry: e.ID, For: numberpool.Duration(time.Minute), Reason: "test"}); err != nil {
				t.Errorf("QuarantineNow: %v", err)
			}
			if err := f.reg.Release(t.Context(), numberpool.Target{Pool: "live", Entry: e.ID}); err != nil {
				t.Errorf("Release: %v", err)
			}
			if err := f.reg.RemoveEntry(t.Context(), "live", e.ID); err != nil {
				t.Errorf("RemoveEntry: %v", err)
			}
		}
	}()
	wg.Wait()
}

// Many sends to one recipient at once: what is stored, once written, holds every one of them, so the
// cooldown survives a restart. (Histories must reach the store in the order they were made; a race shows
// only now and then, hence the rounds.)
func TestCooldownSurvivesConcurrentSends(t *testing.T) {
	const (
		size    = 20
		senders = 4
		each    = 4
	)
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+442079460000-+442079460019")))
	for round := range 60 {
		who := recipient(round)
		var wg sync.WaitGroup
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); err != nil {
						t.Errorf("Pick: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		f.reopen(t)
		left := 0
		for {
			if _, err := f.reg.Pick(t.Context(), numberpool.PickRequest{App: "demo", Recipient: who, Country: "US", CodeLength: 4}); err != nil {
				break
			}
			left++
		}
		if left != size-senders*each {
			t.Fatalf("round %d: after %d sends and a restart the recipient got %d more CLIs within the cooldown, want %d: the stored history lost some sends",
				round, senders*each, left, size-senders*each)
		}
	}
}

// masked is a CLI as the registry shows it: its code digits (4) hidden, since a CLI is a code.
func masked(cli string) string { return cli[:len(cli)-4] + "****" }

// Entries may be added through the admin API beside a config pool's own: they are used at once, kept across
// restarts (the file's entries come back from the file), and removable; the file's entries are not.
func TestAddToConfigPool(t *testing.T) {
	f := newFixture(t, numberpool.Config{}, pool("demo", entry("+44207946XXXX")))
	added, err := f.reg.AddEntry(t.Context(), "demo", local([]string{"FR"}, "+33198765XXXX"))
	if err != nil {
		t.Fatalf("AddEntry to a config pool: %v", err)
	}
	if p := f.pick(t, recipient(1), "FR"); p.Entry != added.ID {
		t.Fatalf("a FR recipient got %s/%s, not the added entry %s", p.Pool, p.Entry, added.ID)
	}
	f.reopen(t)
	if p := f.pick(t, recipient(2), "FR"); p.Entry != added.ID {
		t.Fatalf("after a restart a FR recipient got %s/%s, not the added entry", p.Pool, p.Entry)
	}
	if err := f.reg.RemoveEntry(t.Context(), "demo", "e1"); !errors.Is(err, numberpool.ErrInUse) {
		t.Fatalf("RemoveEntry of the file's entry = %v, want ErrInUse", err)
	}
	if err := f.reg.RemoveEntry(t.Context(), "demo", added.ID); err != nil {
		t.Fatalf("RemoveEntry of the added entry: %v", err)
	}
	f.reopen(t)
	if p := f.pick(t, recipient(3), "FR"); p.Entry != "e1" {
		t.Fatalf("after removing the added entry and a restart, FR got %s", p.Entry)
	}
}

// A duration in JSON is a string like "24h"; null leaves the default, as for any optional field.
func TestDurationJSON(t *testing.T) {
	for body, want := range map[string]time.Duration{`{"cooldown":"90s"}`: 90 * time.Second, `{"cooldown":null}`: 0, `{}`: 0} {
		var p numberpool.Pool
		if err := json.Unmarshal([]byte(body), &p); err != nil || time.Duration(p.Cooldown) != want {
			t.Errorf("%s: cooldown %s, %v; want %s", body, time.Duration(p.Cooldown), err, want)
		}
	}
	for body, got := range map[string]string{`{"cooldown":""}`: `""`, `{"cooldown":90}`: "number", `{"cooldown":"soon"}`: `"soon"`} {
		var p numberpool.Pool
		var typeErr *json.UnmarshalTypeError
		err := json.Unmarshal([]byte(body), &p)
		if !errors.As(err, &typeErr) || typeErr.Field != "cooldown" || typeErr.Value != got || typeErr.Type != reflect.TypeFor[numberpool.Duration]() {
			t.Errorf("%s: %#v, want a type error naming the field cooldown, the Duration type and %s", body, err, got)
		}
	}
}

// Pools stored before countries were checked against phonenumbers' regions ("UK" passed the form check) still
// load, with a warning naming them, so the engine starts after an upgrade; changing such a pool wants GB.
func TestStoredPoolWithUnknownCountry(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, numberpool.Config{Apps: map[string][]string{"demo": {"demo", "live"}},
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, pool("demo", entry("+44207946XXXX")))
	f.close()
	uk := local([]string{"UK"}, "+44113496XXXX")
	var demo numberpool.Pool
	if err := json.Unmarshal(storedPool(t, f.db, "demo"), &demo); err != nil {
		t.Fatalf("stored demo: %v", err)
	}
	demo.Entries = append(demo.Entries, numberpool.Entry{ID: "added", Numbers: []string{"+44113497XXXX"}, Countries: []string{"UK"}, Weight: 1, Enabled: true})
	for _, p := range []numberpool.Pool{demo, pool("live", uk)} {
		v, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.PutPool(t.Context(), p.Name, v); err != nil {
			t.Fatal(err)
		}
	}
	f.reopen(t)
	for _, want := range []string{"pool=live entry=e1 country=UK", "pool=demo entry=added country=UK"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
	if _, err := f.reg.PutPool(t.Context(), pool("live", uk)); !errors.Is(err, numberpool.ErrInvalid) || !strings.Contains(err.Error(), "did you mean GB") {
		t.Errorf("PutPool with UK: %v, want %v suggesting GB", err, numberpool.ErrInvalid)
	}
	if _, err := f.reg.PutPool(t.Context(), pool("live", local([]string{"GB"}, "+44113496XXXX"))); err != nil {
		t.Fatalf("PutPool with GB: %v", err)
	}
	if p := f.pick(t, "+447400123456", "GB"); !strings.HasPrefix(p.CLI, "+44113496") {
		t.Errorf("GB recipient got %s, want the GB entry's +44113496…", p.CLI)
	}
}
