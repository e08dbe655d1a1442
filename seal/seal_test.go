package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := New(key, "label a")
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("a secret")
	sealed := a.Seal(plain, []byte("app\x00user"))
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value holds the plain text")
	}
	if again := a.Seal(plain, []byte("app\x00user")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
	got, err := a.Open(sealed, []byte("app\x00user"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	b, _ := New(key, "label b")
	other, _ := New(bytes.Repeat([]byte{8}, 32), "label a")
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other label":        func() ([]byte, error) { return b.Open(sealed, []byte("app\x00user")) },
		"other server key":   func() ([]byte, error) { return other.Open(sealed, []byte("app\x00user")) },
		"other record":       func() ([]byte, error) { return a.Open(sealed, []byte("app\x00mallory")) },
		"changed":            func() ([]byte, error) { return a.Open(flipped, []byte("app\x00user")) },
		"too short":          func() ([]byte, error) { return a.Open(sealed[:20], []byte("app\x00user")) },
		"no associated data": func() ([]byte, error) { return a.Open(sealed, nil) },
	} {
		if got, err := open(); !errors.Is(err, ErrOpen) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", name, got, err)
		}
	}
}
