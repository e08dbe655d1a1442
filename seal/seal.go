// Package seal keeps secrets the engine must read back (an app's webhook and API secrets, an authenticator's
// key) sealed with AES-256-GCM under a key derived from the server key, so that a copy of the database
// without the server key gives none of them. Each user of it derives its own key with its own label: a
// secret sealed for one purpose does not open for another.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// ErrOpen is returned by Open for a sealed value that is too short, was sealed under another key or label,
// or with other associated data, or was changed.
var ErrOpen = errors.New("sealed value does not open")

// Derive returns HMAC-SHA256(key, label): a 32-byte key for one purpose, derived from the server key.
func Derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Box seals and opens values under one derived key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box sealing under Derive(serverKey, label).
func New(serverKey []byte, label string) (*Box, error) {
	block, err := aes.NewCipher(Derive(serverKey, label))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal returns a random nonce followed by plain sealed with associated data ad (what the sealed value
// belongs to, e.g. its record's key, so that it does not open when moved to another record; nil for none).
func (b *Box) Seal(plain, ad []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (it crashes the program instead)
	return b.aead.Seal(nonce, nonce, plain, ad)
}

// Open returns the plain text of a value Seal made with the same associated data, or ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
