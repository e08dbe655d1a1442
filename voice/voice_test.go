package voice_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"flashotp/setting"
	"flashotp/voice"
)

func TestBuiltin(t *testing.T) {
	lib := voice.Builtin()
	if got, want := lib.Locales(), []string{"en", "de", "es", "fr", "hi", "pt"}; !slices.Equal(got, want) {
		t.Fatalf("locales %v, want %v", got, want)
	}
	var total int64
	err := filepath.Walk("prompts", func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return err
	})
	if err != nil || total == 0 || total > 512<<10 {
		t.Fatalf("built-in prompts take %d bytes (%v), want some, under 512 KiB", total, err)
	}
}

func TestMatch(t *testing.T) {
	lib := voice.Builtin()
	for in, want := range map[string]string{
		"en": "en", "en-GB": "en", "pt-BR": "pt", "pt": "pt", "es-MX": "es", "es-419": "es", "de-AT": "de",
		"fr-CA": "fr", "hi-IN": "hi", "ja": "en", "": "en", "not a tag!": "en", "zz": "en",
	} {
		if got := lib.Match(in); got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPromptRefusesBadCodes(t *testing.T) {
	for _, code := range []string{"", "12a4", "+1234", strings.Repeat("1", 17), "١٢٣٤"} {
		if _, err := voice.Builtin().Prompt("en", code); !errors.Is(err, voice.ErrBadCode) {
			t.Errorf("Prompt(%q): %v, want ErrBadCode", code, err)
		}
	}
}

// Every locale's prompt of every digit decodes back to its code, as it was made and after what the
// network does to it: the A-law round trip (PCMA), silence and noise before it, a lost packet, and the
// prompt played twice (a DTMF 1 replay).
func TestPromptDecodes(t *testing.T) {
	lib := voice.Builtin()
	rng := rand.New(rand.NewPCG(1, 2))
	alaw := func(p []byte) []byte { return g711.Alaw2Ulaw(g711.Ulaw2Alaw(p)) }
	noisy := func(p []byte) []byte {
		lead := make([]byte, 1300*8) // 1.3 s of faint noise
		for i := range lead {
			lead[i] = g711.EncodeUlawFrame(int16(rng.IntN(61) - 30))
		}
		return append(lead, p...)
	}
	lost := func(p []byte) []byte {
		q := slices.Clone(p)
		at := len(q) / 3 / 160 * 160
		for i := at; i < at+160; i++ {
			q[i] = voice.Silence // one 20 ms packet never came
		}
		return q
	}
	twice := func(p []byte) []byte { return append(slices.Clone(p), p...) }
	changes := map[string]func([]byte) []byte{
		"as made": func(p []byte) []byte { return p }, "pcma": alaw, "noise before": noisy, "lost packet": lost, "replayed": twice,
	}
	for _, loc := range lib.Locales() {
		codes := []string{"0123456789", "9876543210", "000000"}
		for range 2 {
			codes = append(codes, randomCode(rng, 4+rng.IntN(7)))
		}
		for _, code := range codes {
			prompt, err := lib.Prompt(loc, code)
			if err != nil {
				t.Fatal(err)
			}
			for name, change := range changes {
				got, err := lib.Decode(change(prompt))
				if err != nil || got != code {
					t.Errorf("%s %s, %s: decoded %q (%v)", loc, code, name, got, err)
				}
			}
		}
	}
}

// The PCMA call as the phone hears it: A-law decoded straight to linear.
func TestDecodePCM(t *testing.T) {
	lib := voice.Builtin()
	prompt, _ := lib.Prompt("de", "4711")
	raw := g711.DecodeAlaw(g711.Ulaw2Alaw(prompt))
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
	if got, err := lib.DecodePCM(pcm); got != "4711" {
		t.Fatalf("decoded %q (%v), want 4711", got, err)
	}
}

func TestDecodeHearsNothing(t *testing.T) {
	lib := voice.Builtin()
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 8000*3)
	for i := range noise {
		noise[i] = byte(rng.IntN(256))
	}
	silence := slices.Repeat([]byte{voice.Silence}, 8000)
	intro, _ := os.ReadFile("prompts/en/intro.ul")
	for name, audio := range map[string][]byte{"empty": nil, "silence": silence, "noise": noise, "intro only": intro} {
		if got, err := lib.Decode(audio); !errors.Is(err, voice.ErrNotHeard) {
			t.Errorf("%s: decoded %q (%v), want ErrNotHeard", name, got, err)
		}
	}
}

func TestDurations(t *testing.T) {
	lib := voice.Builtin()
	for _, loc := range lib.Locales() {
		p, _ := lib.Prompt(loc, "123456")
		d, most := voice.Duration(p), lib.MaxDuration(loc, 6)
		t.Logf("%s: a 6-digit prompt lasts %s (at most %s)", loc, d.Round(10*time.Millisecond), most.Round(10*time.Millisecond))
		if d < 5*time.Second || d > most || most > 25*time.Second {
			t.Errorf("%s: prompt %s, max %s", loc, d, most)
		}
	}
}

func randomCode(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

// copyLocale copies a built-in locale's clips into dir/name.
func copyLocale(t *testing.T, dir, from, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join("prompts", from))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("prompts", from, e.Name()))
		if err := os.WriteFile(filepath.Join(dir, name, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	copyLocale(t, dir, "pt", "pt-BR")
	copyLocale(t, dir, "fr", "fr")
	lib, err := voice.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := lib.Locales(); !slices.Equal(got, []string{"fr", "pt-BR"}) {
		t.Fatalf("locales %v", got)
	}
	if got := lib.Match("pt"); got != "pt-BR" {
		t.Errorf("Match(pt) = %q", got)
	}
	if got := lib.Match("ja"); got != "fr" {
		t.Errorf("Match(ja) = %q, want the first locale without en", got)
	}
	p, _ := lib.Prompt("pt-PT", "2580")
	if got, err := lib.Decode(p); got != "2580" {
		t.Errorf("decoded %q (%v)", got, err)
	}

	tests := []struct {
		name   string
		break_ func(dir string)
		want   string
	}{
		{"missing digit", func(d string) { os.Remove(filepath.Join(d, "en", "7.ul")) }, "en/7.ul"},
		{"wav", func(d string) {
			os.WriteFile(filepath.Join(d, "en", "intro.ul"), append([]byte("RIFF\x00\x00WAVEfmt "), make([]byte, 4000)...), 0o644)
		}, "WAV"},
		{"too short", func(d string) { os.WriteFile(filepath.Join(d, "en", "3.ul"), []byte{0, 1, 2}, 0o644) }, "en/3.ul: 375µs long"},
		{"too long", func(d string) { os.WriteFile(filepath.Join(d, "en", "3.ul"), make([]byte, 8000*4), 0o644) }, "4s long"},
		{"silent", func(d string) {
			os.WriteFile(filepath.Join(d, "en", "again.ul"), slices.Repeat([]byte{voice.Silence}, 4000), 0o644)
		}, "silent"},
		{"not a locale", func(d string) { copyLocale(t, d, "de", "german!") }, `"german!" is not a BCP 47 locale`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			copyLocale(t, d, "en", "en")
			tc.break_(d)
			if _, err := voice.LoadDir(d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadDir: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := voice.LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no locale") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := voice.LoadDir(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing dir loaded")
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := voice.DefaultSettings.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	good := t.TempDir()
	copyLocale(t, good, "en", "en")
	tests := []struct {
		change func(*voice.Settings)
		key    string
	}{
		{func(s *voice.Settings) { s.CallerID = "+442079460000" }, ""},
		{func(s *voice.Settings) { s.CallerID = "442079460000" }, "caller_id"},
		{func(s *voice.Settings) { s.CallerID = "+44\r\nX: y" }, "caller_id"},
		{func(s *voice.Settings) { s.AnswerTimeout = 500 * time.Millisecond }, "answer_timeout"},
		{func(s *voice.Settings) { s.AnswerTimeout = 3 * time.Minute }, "answer_timeout"},
		{func(s *voice.Settings) { s.Repeat = -1 }, "repeat"},
		{func(s *voice.Settings) { s.Repeat = 6 }, "repeat"},
		{func(s *voice.Settings) { s.PromptsDir = good }, ""},
		{func(s *voice.Settings) { s.PromptsDir = filepath.Join(good, "en") }, "prompts_dir"},
	}
	for _, tc := range tests {
		s := voice.DefaultSettings
		tc.change(&s)
		errs := setting.Split(s.Validate())
		var keys []string
		for _, err := range errs {
			var se *setting.Error
			if !errors.As(err, &se) {
				t.Fatalf("%+v: %v is not a *setting.Error", s, err)
			}
			keys = append(keys, se.Key)
		}
		if want := []string{tc.key}; tc.key == "" && len(keys) > 0 || tc.key != "" && !slices.Equal(keys, want) {
			t.Errorf("%+v: bad keys %v, want %q", s, keys, tc.key)
		}
	}
	if lib, err := (voice.Settings{PromptsDir: good}).Library(); err != nil || !slices.Equal(lib.Locales(), []string{"en"}) {
		t.Errorf("Library of prompts_dir: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	p, _ := voice.Builtin().Prompt("en", "42")
	f.Add(p[:8000])
	f.Add([]byte{0, 255, 0, 255})
	f.Fuzz(func(t *testing.T, audio []byte) {
		if len(audio) > 8000*4 {
			return
		}
		code, err := voice.Builtin().Decode(audio)
		if err == nil && (code == "" || strings.Trim(code, "0123456789") != "") {
			t.Fatalf("decoded %q", code)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	lib := voice.Builtin()
	p, _ := lib.Prompt("hi", "123456")
	for b.Loop() {
		if code, err := lib.Decode(p); code != "123456" {
			b.Fatalf("decoded %q (%v)", code, err)
		}
	}
}
