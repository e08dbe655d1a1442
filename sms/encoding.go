// Package sms holds what the SMS channel knows whatever carries the message: how a text is encoded on the
// air and into how many parts it is cut (Measure), the limits of a text (CheckText) and a sender
// (CheckSender), and the sms section's settings. It imports no adapter: the SIP MESSAGE that carries the
// text today (sip) and the SMPP and HTTP gateways of a later issue all use it.
//
// Measure follows 3GPP TS 23.038 (GSM 03.38) and TS 23.040: the GSM 7-bit default alphabet when every
// character is in its basic table or its extension table (an extension character is an escape and a
// septet: two septets), else UCS-2, counted in UTF-16 code units (a character outside the BMP is a surrogate
// pair: two units). National language shift tables are not used: a handset that lacks them would show
// the wrong characters.
package sms

import (
	"encoding/binary"
	"unicode/utf16"
)

// Encoding is how a text is encoded in an SMS.
type Encoding string

// Encodings.
const (
	// GSM7 is the GSM 7-bit default alphabet: 160 septets in one SMS, 153 in each part of a longer one.
	GSM7 Encoding = "gsm7"
	// UCS2 is UTF-16: 70 code units in one SMS, 67 in each part of a longer one.
	UCS2 Encoding = "ucs2"
)

// The capacity of one SMS and of each part of a concatenated one (its user data header takes 6 octets).
const (
	GSM7Single = 160
	GSM7Part   = 153
	UCS2Single = 70
	UCS2Part   = 67
)

// gsmBasic is the GSM 7-bit default alphabet's basic table (TS 23.038 6.2.1), but for 0x1B, the escape to
// the extension table. 0x09 is the capital C with cedilla the table shows; a small one is not in it.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension holds the characters of the extension table (TS 23.038 6.2.1.1): each is sent as the escape
// and one septet.
const gsmExtension = "\f^{}\\[~]|€"

var basic, extension = runeSet(gsmBasic, '\x1b'), runeSet(gsmExtension, -1)

func runeSet(s string, except rune) map[rune]bool {
	m := make(map[rune]bool, len(s))
	for _, r := range s {
		if r != except {
			m[r] = true
		}
	}
	return m
}

// septets returns how many septets r takes in the GSM 7-bit default alphabet: 1 in the basic table, 2 in
// the extension table, 0 when it is in neither.
func septets(r rune) int {
	switch {
	case basic[r]:
		return 1
	case extension[r]:
		return 2
	}
	return 0
}

// utf16Units returns how many UTF-16 code units r takes: 2 outside the Basic Multilingual Plane.
func utf16Units(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// Measure returns the encoding text is sent in and how many SMS it takes: GSM7 when every character is in
// the GSM 7-bit alphabet, else UCS2. Up to 160 septets (70 UTF-16 units) is one SMS; a longer text is cut
// into parts of at most 153 septets (67 units), never between an escape and its septet nor between the two
// halves of a surrogate pair, so a part may hold one less. An empty text takes no SMS. Bytes that are not
// UTF-8 count as U+FFFD, as a carrier would show them (CheckText refuses them).
func Measure(text string) (Encoding, int) {
	enc, width, single, part := GSM7, septets, GSM7Single, GSM7Part
	for _, r := range text {
		if septets(r) == 0 {
			enc, width, single, part = UCS2, utf16Units, UCS2Single, UCS2Part
			break
		}
	}
	total := 0
	for _, r := range text {
		total += width(r)
	}
	switch {
	case total == 0:
		return enc, 0
	case total <= single:
		return enc, 1
	}
	parts, used := 1, 0
	for _, r := range text {
		w := width(r)
		if used+w > part {
			parts, used = parts+1, 0
		}
		used += w
	}
	return enc, parts
}

// gsmExtensionCodes are the septets of the extension table's characters, each sent after the escape 0x1B.
var gsmExtensionCodes = map[rune]byte{'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F, '[': 0x3C, '~': 0x3D,
	']': 0x3E, '|': 0x40, '€': 0x65}

// gsmBasicCodes maps each character of the basic table to its septet (its position in gsmBasic).
var gsmBasicCodes = func() map[rune]byte {
	m := make(map[rune]byte, 128)
	i := 0
	for _, r := range gsmBasic {
		if r != '\x1b' {
			m[r] = byte(i)
		}
		i++
	}
	return m
}()

// Split cuts text into the parts Measure counts, in the encoding Measure picks: one part when it fits one
// SMS, else parts of at most 153 septets (67 UTF-16 units), never cutting an extension character from its
// escape nor a surrogate pair. An empty text has no parts.
func Split(text string) (Encoding, []string) {
	enc, n := Measure(text)
	switch n {
	case 0:
		return enc, nil
	case 1:
		return enc, []string{text}
	}
	width, part := septets, GSM7Part
	if enc == UCS2 {
		width, part = utf16Units, UCS2Part
	}
	parts := make([]string, 0, n)
	start, used := 0, 0
	for i, r := range text {
		w := width(r)
		if used+w > part {
			parts, start, used = append(parts, text[start:i]), i, 0
		}
		used += w
	}
	return enc, append(parts, text[start:])
}

// EncodeGSM7 returns text in the GSM 7-bit default alphabet, one septet an octet (unpacked, as SMPP's
// data_coding 0 carries it), an extension character as the escape 0x1B and its septet. ok is false when a
// character is in neither table (Measure then says UCS2).
func EncodeGSM7(text string) (b []byte, ok bool) {
	b = make([]byte, 0, len(text))
	for _, r := range text {
		if c, found := gsmBasicCodes[r]; found {
			b = append(b, c)
		} else if c, found := gsmExtensionCodes[r]; found {
			b = append(b, 0x1B, c)
		} else {
			return nil, false
		}
	}
	return b, true
}

// EncodeUCS2 returns text as UTF-16 big-endian (SMPP's data_coding 8), a character outside the BMP as a
// surrogate pair.
func EncodeUCS2(text string) []byte {
	u := utf16.Encode([]rune(text))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}
