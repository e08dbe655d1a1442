package sms_test

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"flashotp/sms"
)

func TestMeasure(t *testing.T) {
	a, ya, euro, smile := "a", "Я", "€", "😀"
	n := strings.Repeat
	tests := []struct {
		name  string
		text  string
		enc   sms.Encoding
		parts int
	}{
		{"empty", "", sms.GSM7, 0},
		{"a code", "Your Acme code is 123456. Do not share it.", sms.GSM7, 1},
		{"basic table accents", "Çà ÉÑ ¿¡ £$¥ ΔΦΓΛΩΠΨΣΘΞ ÆæßØøÅå @_§¤", sms.GSM7, 1},
		{"extension table", "{}[]~|^\\€\f", sms.GSM7, 1},
		{"160 septets", n(a, 160), sms.GSM7, 1},
		{"161 septets", n(a, 161), sms.GSM7, 2},
		{"306 septets", n(a, 306), sms.GSM7, 2},
		{"307 septets", n(a, 307), sms.GSM7, 3},
		{"80 escapes: 160 septets", n(euro, 80), sms.GSM7, 1},
		{"81 escapes: 162 septets", n(euro, 81), sms.GSM7, 2},
		{"159 and an escape: 161 septets", n(a, 159) + euro, sms.GSM7, 2},
		// 306 septets would fit two parts, but the escape at 153 may not be split: it opens the second part,
		// and one septet spills into a third.
		{"escape across a part boundary", n(a, 152) + euro + n(a, 152), sms.GSM7, 3},
		{"escape ending a part", n(a, 151) + euro + n(a, 153), sms.GSM7, 2},
		{"small c cedilla is not GSM", "ç", sms.UCS2, 1},
		{"backtick is not GSM", "`", sms.UCS2, 1},
		{"tab is not GSM", "code\t1234", sms.UCS2, 1},
		{"cyrillic", "Ваш код 123456", sms.UCS2, 1},
		{"hindi", "आपका कोड 123456 है", sms.UCS2, 1},
		{"one non-GSM character turns all to UCS-2", n(a, 100) + "ç", sms.UCS2, 2},
		{"70 units", n(ya, 70), sms.UCS2, 1},
		{"71 units", n(ya, 71), sms.UCS2, 2},
		{"134 units", n(ya, 134), sms.UCS2, 2},
		{"135 units", n(ya, 135), sms.UCS2, 3},
		{"a surrogate pair is two units", smile, sms.UCS2, 1},
		{"35 pairs: 70 units", n(smile, 35), sms.UCS2, 1},
		{"36 pairs: 72 units", n(smile, 36), sms.UCS2, 2},
		// 134 units would fit two parts, but the pair at unit 67 may not be split.
		{"pair across a part boundary", n(ya, 66) + smile + n(ya, 66), sms.UCS2, 3},
		{"pair ending a part", n(ya, 65) + smile + n(ya, 67), sms.UCS2, 2},
		{"not UTF-8 counts as U+FFFD", "\xff", sms.UCS2, 1},
		{"the longest text", n(a, sms.MaxText), sms.GSM7, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, parts := sms.Measure(tc.text)
			if enc != tc.enc || parts != tc.parts {
				t.Fatalf("Measure = %s, %d; want %s, %d", enc, parts, tc.enc, tc.parts)
			}
		})
	}
}

// The GSM 7-bit default alphabet, position by position (TS 23.038 6.2.1), written out apart from the
// package's table: every character is GSM7, each of its neighbours in Unicode that is not in the table is
// not.
func TestMeasureAlphabet(t *testing.T) {
	basic := []rune{
		0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5,
		0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, -1, 0xC6, 0xE6, 0xDF, 0xC9,
		0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
		0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
		0xA1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
		0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7,
		0xBF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
		0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
	}
	extension := []rune{0x0C, 0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC}
	in := map[rune]int{}
	for _, r := range basic {
		if r >= 0 {
			in[r] = 1
		}
	}
	for _, r := range extension {
		in[r] = 2
	}
	if len(in) != 127+10 {
		t.Fatalf("the test's alphabet has %d characters, want 137", len(in))
	}
	for r := rune(0); r < 0x2100; r++ {
		enc, parts := sms.Measure(strings.Repeat(string(r), 160/max(in[r], 1)))
		want := sms.UCS2
		if in[r] > 0 {
			want = sms.GSM7
		}
		if enc != want {
			t.Errorf("%U %q: %s, want %s", r, r, enc, want)
		}
		if want == sms.GSM7 && parts != 1 {
			t.Errorf("%U %q: 160 septets in %d parts", r, r, parts)
		}
	}
	// An extension character is two septets: 81 of them are 162.
	for _, r := range extension {
		if _, parts := sms.Measure(strings.Repeat(string(r), 81)); parts != 2 {
			t.Errorf("%U: 81 of them in %d parts, want 2", r, parts)
		}
	}
}

// Whatever the text, the parts are as few as the units allow and no more than if every part were one unit
// short (a pair moved to the next part), and the encoding is UCS-2 exactly when a character is not GSM.
func FuzzMeasure(f *testing.F) {
	for _, s := range []string{"", "Your code is 123456", "€€€", "😀a😀", "Ваш код", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		enc, parts := sms.Measure(text)
		units, single, part := 0, sms.GSM7Single, sms.GSM7Part
		if enc == sms.UCS2 {
			single, part = sms.UCS2Single, sms.UCS2Part
			for _, r := range text {
				units += utf16.RuneLen(r)
			}
		} else {
			for _, r := range text {
				units++
				if strings.ContainsRune("\f^{}\\[~]|€", r) {
					units++
				}
			}
		}
		ceil := func(a, b int) int { return (a + b - 1) / b }
		switch {
		case units == 0 && parts != 0, units > 0 && units <= single && parts != 1:
			t.Fatalf("%q: %d units in %d parts", text, units, parts)
		case units > single && (parts < ceil(units, part) || parts > ceil(units, part-1)):
			t.Fatalf("%q: %d units in %d parts of %d", text, units, parts, part)
		}
		if enc == sms.GSM7 && !utf8.ValidString(text) {
			t.Fatalf("%q: not UTF-8, yet GSM7", text)
		}
	})
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		enc   sms.Encoding
		parts int
	}{
		{"empty", "", sms.GSM7, 0},
		{"one gsm", "Your code is 123456", sms.GSM7, 1},
		{"160 gsm", strings.Repeat("a", 160), sms.GSM7, 1},
		{"161 gsm", strings.Repeat("a", 161), sms.GSM7, 2},
		{"escape never cut", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), sms.GSM7, 2},
		{"ucs2 long", strings.Repeat("ж", 140), sms.UCS2, 3},
		{"surrogate never cut", strings.Repeat("ж", 66) + "😀" + strings.Repeat("ж", 10), sms.UCS2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, parts := sms.Split(tc.text)
			if enc != tc.enc || len(parts) != tc.parts {
				t.Fatalf("Split = %s, %d parts; want %s, %d", enc, len(parts), tc.enc, tc.parts)
			}
			if _, n := sms.Measure(tc.text); n != len(parts) {
				t.Errorf("Measure says %d parts, Split cut %d", n, len(parts))
			}
			if strings.Join(parts, "") != tc.text {
				t.Errorf("parts do not join into the text")
			}
			for i, p := range parts {
				if enc == sms.GSM7 {
					b, ok := sms.EncodeGSM7(p)
					if !ok || (len(parts) > 1 && len(b) > sms.GSM7Part) || b[len(b)-1] == 0x1B {
						t.Errorf("part %d: %d septets, ok %v, ends with an escape: %v", i, len(b), ok, b[len(b)-1] == 0x1B)
					}
				} else if b := sms.EncodeUCS2(p); len(parts) > 1 && len(b) > 2*sms.UCS2Part {
					t.Errorf("part %d: %d octets", i, len(b))
				}
			}
		})
	}
}

func TestEncodeGSM7(t *testing.T) {
	b, ok := sms.EncodeGSM7("@a€{\n")
	if want := []byte{0x00, 0x61, 0x1B, 0x65, 0x1B, 0x28, 0x0A}; !ok || string(b) != string(want) {
		t.Errorf("EncodeGSM7 = % x, %v; want % x", b, ok, want)
	}
	if _, ok := sms.EncodeGSM7("ж"); ok {
		t.Error("EncodeGSM7 took a Cyrillic letter")
	}
	if got := sms.EncodeUCS2("ж😀"); string(got) != "\x04\x36\xd8\x3d\xde\x00" {
		t.Errorf("EncodeUCS2 = % x", got)
	}
}
